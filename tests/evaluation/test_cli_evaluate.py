"""``smda evaluate`` end to end: a staged store with a registered model, the twin's truth and
staged ISMN; any gridded series against the real Hawaii stations."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import typer
import xarray as xr
from evaluation_helpers import GAIN, ISMN, PERIOD, SPINUP, pytesmo_at_stations
from typer.testing import CliRunner

from smda.cli.evaluate import evaluate
from smda.config import Settings
from smda.ingest.context import make_context
from smda.ingest.fetch import fetch_range
from smda.ops.references import read_series, read_stations, staged_stations
from smda.science.bundle import ModelBundle
from smda.science.skill import SERIES, score_against_stations, score_against_truth
from smda.storage.registry import ModelRegistry
from smda.storage.store import Store
from smda_twin.world import World

REGION = "--region=-100,35,-99,36"
REPORTS = Path("reports") / "r0.25_216_320_4x4"

app = typer.Typer()
app.command("evaluate")(evaluate)


@app.callback()
def _main() -> None:
    """A local app with the evaluate command (smda.cli wires the same function)."""


def _invoke(data_dir: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("SMDA_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SMDA_REGION", raising=False)
    result = CliRunner().invoke(app, ["evaluate", *args])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


@pytest.fixture(scope="module")
def data_dir(store: Store, bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the staged store with the model registered and the twin's ISMN stations
    staged over the period (through `smda twin ismn` and the ismn source)."""
    from smda.cli import app as smda_app

    root = tmp_path_factory.mktemp("cli") / "data"
    shutil.copytree(store.root, root)
    ModelRegistry(root / "models" / store.region).register(bundle)
    archive = root.parent / "ismn.zip"
    start, end = (d.isoformat() for d in PERIOD)
    args = ["twin", "ismn", "--start", start, "--end", end, "--out", str(archive), REGION]
    result = CliRunner().invoke(smda_app, [*args, "--seed", "7", "--epoch", "2015-01-01"])
    assert result.exit_code == 0, result.output
    ctx = make_context(
        Settings(data_dir=root), region=store.grid.bounds, today=date(2025, 1, 1), ismn_path=archive
    )
    assert fetch_range(["ismn"], *PERIOD, ctx).ok
    return root


def test_evaluate_runs_the_model_and_scores_it(
    data_dir: Path,
    experiments: xr.Dataset,
    world: World,
    store: Store,
    bundle: ModelBundle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start, end = (d.isoformat() for d in PERIOD)
    code, output = _invoke(
        data_dir,
        monkeypatch,
        *("--start", start, "--end", end, REGION, "--truth", "twin", "--seed", "7"),
        *("--gain", str(GAIN), "--spinup-days", str(SPINUP)),
    )
    assert code == 0, output
    for words in ("against the truth", "against ISMN stations", "analysis beats open_loop"):
        assert words in output
    md = data_dir / REPORTS / f"evaluation_{start}_{end}.md"
    assert f"report:{md}" in output.replace(" ", "")  # the path printed (wrapped or not)
    report = json.loads(md.with_suffix(".json").read_text())
    assert report["meta"]["model_version"] == bundle.version
    # the cycled series it scored, stored beside the report (nothing of the truth in it)
    nc = md.with_suffix(".nc")
    assert f"series:{nc}" in output.replace(" ", "")
    with xr.open_dataset(nc) as stored:
        assert list(stored.data_vars) == ["analysis", "open_loop", "forecast"]
        assert stored.attrs["model_version"] == bundle.version
        for name in stored.data_vars:
            xr.testing.assert_equal(stored[name].drop_attrs(), experiments[name].drop_attrs())
    assert report["meta"]["gain"] == str(GAIN) and report["meta"]["spinup_days"] == SPINUP
    # the same figures as the library on the same experiments
    truth = score_against_truth(experiments, world.truth(*PERIOD))
    stations = staged_stations(Store(data_dir, store.grid), *PERIOD)
    assert stations is not None and stations.sizes["station"] == len(world.stations())
    at_stations = score_against_stations(experiments, stations)
    for name, expected in (("truth", truth), ("stations", at_stations)):
        table = report["tables"][name]
        assert list(table) == list(SERIES), name
        for series in SERIES:
            for column, value in expected.loc[series].items():
                got = table[series][column]
                assert (got is None and np.isnan(value)) or got == pytest.approx(value), (
                    name,
                    series,
                    column,
                )
    assert at_stations.loc["analysis", "n_stations"] > 0


def test_evaluate_any_series_against_a_truth_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`smda twin truth` writes the truth; scored against itself it is perfect."""
    from smda.cli import app as smda_app

    truth = tmp_path / "truth.nc"
    args = ["twin", "truth", "--start", "2015-05-01", "--end", "2015-06-15", "--out", str(truth)]
    result = CliRunner().invoke(smda_app, [*args, REGION, "--seed", "7"])
    assert result.exit_code == 0, result.output
    code, output = _invoke(
        tmp_path / "data",
        monkeypatch,
        *("--series", str(truth), "--truth", str(truth), "--start", "2015-05-10"),
    )
    assert code == 0, output
    report = json.loads(
        (tmp_path / "data" / REPORTS / "evaluation_2015-05-10_2015-06-15.json").read_text()
    )
    row = report["tables"]["truth"]["soil_moisture"]
    assert row["r"] == pytest.approx(1.0) and row["ubrmsd"] == pytest.approx(0.0, abs=1e-7)
    assert row["n_days"] == 37 and row["n_cells"] == 16


def test_evaluate_a_real_gridded_series_against_real_stations(
    real_data: Path, hawaii_series: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Hawaii products (gridded) against the real ISMN download, as pytesmo scores
    the matched pairs."""
    ismn = real_data / ISMN
    code, output = _invoke(
        tmp_path,
        monkeypatch,
        *("--series", str(hawaii_series), "--stations", str(ismn), "--max-depth", "0.25"),
    )
    assert code == 0, output
    assert "against ISMN stations" in output and "gldas" in output
    path = tmp_path / "reports" / "r0.25_280_96_4x4" / "evaluation_2017-01-01_2018-12-31.json"
    report = json.loads(path.read_text())
    assert "truth" not in report["tables"]
    series = read_series(hawaii_series)
    stations = read_stations(ismn, max_depth=0.25)
    for name in ("gldas", "era5land", "smap"):
        expected = pytesmo_at_stations(series[name], stations)
        row = report["tables"]["stations"][name]
        assert row["n_stations"] == 3
        for metric in ("r", "ubrmsd", "bias", "rmsd"):
            assert row[metric] == pytest.approx(expected[metric].median(), rel=1e-9)


def test_evaluate_says_what_is_missing(
    tmp_path: Path, hawaii_series: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--start", "2015-05-01", "--end", "2015-05-31", REGION, "--truth", "twin")
    code, output = _invoke(tmp_path / "empty", monkeypatch, *args)
    assert code == 1 and "smda train" in output  # no model registered for the region
    code, output = _invoke(tmp_path / "empty", monkeypatch, "--series", str(hawaii_series))
    assert code == 1 and "nothing to score against" in output
    code, output = _invoke(tmp_path / "empty", monkeypatch, REGION, "--truth", "twin")
    assert code == 2 and "--start" in output
    code, output = _invoke(tmp_path, monkeypatch, "--series", str(tmp_path / "no.nc"))
    assert code == 1 and "does not exist" in output


def test_evaluate_json_is_the_report_and_an_error_is_a_json_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smda.cli import app as smda_app

    truth = tmp_path / "truth.nc"
    args = ["twin", "truth", "--start", "2015-05-01", "--end", "2015-05-31", "--out", str(truth)]
    assert CliRunner().invoke(smda_app, [*args, REGION, "--seed", "7"]).exit_code == 0
    monkeypatch.setenv("SMDA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SMDA_REGION", raising=False)
    score = ["evaluate", "--series", str(truth), "--truth", str(truth), "--json"]

    result = CliRunner().invoke(smda_app, [*score, "--start", "2015-05-01"])
    late = CliRunner().invoke(smda_app, [*score, "--start", "2016-01-01", "--end", "2016-01-31"])

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # the tables went to stderr, not stdout
    assert (doc["command"], doc["exit_code"]) == ("evaluate", 0)
    written = json.loads(Path(doc["report"]["json"]).read_text())
    assert {k: doc[k] for k in written} == written and Path(doc["report"]["markdown"]).exists()
    assert doc["tables"]["truth"]["soil_moisture"]["n_days"] == 31
    assert (Path(doc["report"]["json"]).parent / "region.json").exists()
    assert "series" not in doc["report"]  # scoring a file stores no series
    assert not list(Path(doc["report"]["json"]).parent.glob("*.nc"))
    assert late.exit_code == 1
    error = json.loads(late.stdout)
    assert error["exit_code"] == 1 and "has no day in 2016-01-01..2016-01-31" in error["error"]


def test_evaluate_json_names_the_stored_series(
    data_dir: Path, bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMDA_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SMDA_REGION", raising=False)
    args = ["--start", "2015-05-01", "--end", "2015-05-31", REGION, "--truth", "twin"]
    options = ["--seed", "7", "--gain", str(GAIN), "--spinup-days", "0", "--json"]
    result = CliRunner().invoke(app, ["evaluate", *args, *options])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    series = data_dir / REPORTS / "evaluation_2015-05-01_2015-05-31.nc"
    assert doc["report"]["series"] == str(series)
    with xr.open_dataset(series) as stored:
        assert stored.sizes["time"] == 31 and stored.attrs["spinup_days"] == 0
