"""`smda train` as a user runs it: on a staged store, with bad dates, with nothing staged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import typer
from staged_world import stage_world
from typer.testing import CliRunner

from smda.cli.train import train
from smda.storage.registry import ModelRegistry
from smda.storage.store import Store
from smda_twin.world import World

app = typer.Typer()
app.command("train")(train)


@app.callback()
def _main() -> None:
    """A local app wired as smda.cli wires the command."""


runner = CliRunner()
REGION = "-100,35,-99,36"
FAST = [
    "--min-n=20",
    "--folds=4",
    "--block-deg=0.5",
    "--learning-rate=0.1",
    "--num-leaves=7",
    "--min-data-in-leaf=20",
    "--max-rounds=40",
    "--dagger-rounds=0",
    "--threads=1",
]


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMDA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SMDA_REGION", REGION)
    monkeypatch.delenv("SMDA_ENDPOINTS", raising=False)
    return data_dir


def test_train_registers_and_describes(env: Path, world: World) -> None:
    store = Store(env, world.grid)
    stage_world(store, world, date(2015, 5, 1), date(2015, 6, 15))
    result = runner.invoke(
        app, ["train", "--start", "2015-05-01", "--end", "2015-06-15", *FAST, "--compare-random"]
    )
    assert result.exit_code == 0, result.output
    registry = ModelRegistry(env / "models" / store.region)
    version = registry.current_version()
    assert version is not None
    assert f"registered model {version} (current) in {registry.path(version)}" in result.output
    assert f"**Model {version}**" in result.output
    assert "| blocked, free-running |" in result.output and "| random, teacher-forced |" in (
        result.output
    )
    again = runner.invoke(app, ["train", "--start", "2015-05-01", "--end", "2015-06-15", *FAST])
    assert again.exit_code == 0, again.output  # the comparison scheme runs only when asked
    assert "| blocked, free-running |" in again.output
    assert "random" not in again.output.split("registered model")[0].split("| CV")[1]
    assert len(registry.versions()) == 2 and registry.current_version() != version


def test_bad_dates(env: Path) -> None:
    bad = runner.invoke(app, ["train", "--start", "July", "--end", "2015-06-15"])
    assert bad.exit_code == 2 and "is not a date YYYY-MM-DD" in bad.output
    backwards = runner.invoke(app, ["train", "--start", "2015-06-15", "--end", "2015-06-01"])
    assert backwards.exit_code == 2 and "must be after --start" in backwards.output


def test_nothing_staged(env: Path) -> None:
    result = runner.invoke(app, ["train", "--start", "2015-05-01", "--end", "2015-06-15", *FAST])
    assert result.exit_code == 1
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "error:" in text and "not staged" in text
    assert f"smda fetch era5 --start 2015-05-02 --end 2015-06-15 --region={REGION}" in text
    assert f"smda fetch gldas --start 2015-05-01 --end 2015-06-15 --region={REGION}" in text
    assert not (env / "models").exists()


def test_the_hyper_parameter_options_default_to_the_models_defaults() -> None:
    import inspect

    from smda.science.bundle import HyperParams

    options = inspect.signature(train).parameters
    default = HyperParams()
    fields = {
        "learning_rate": "learning_rate",
        "num_leaves": "num_leaves",
        "min_data_in_leaf": "min_data_in_leaf",
        "max_rounds": "max_rounds",
        "early_stopping_rounds": "early_stopping_rounds",
        "min_delta": "early_stopping_min_delta",
        "threads": "num_threads",
    }
    assert {o: options[o].default for o in fields} == {
        o: getattr(default, f) for o, f in fields.items()
    }
