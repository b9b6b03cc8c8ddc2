"""The command-line interface: help for every command, configuration errors, bad input
rejected at the edge in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import smda
from smda.cli import app, run
from smda.config import load_settings
from smda.errors import ConfigError
from smda.geo.grid import REGION_FORM, BBox

runner = CliRunner()


def _commands(typer_app: object) -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*prefix, name])
        else:
            paths.append(prefix)

    walk(group, [])
    return paths


def test_every_command_has_help() -> None:
    commands = _commands(app)
    assert ["twin", "serve"] in commands and ["demo"] in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        doc_line = result.output.split("\n")
        assert len([line for line in doc_line if line.strip()]) > 3


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SMDA_DATA_DIR", "/srv/smda")
    monkeypatch.setenv("SMDA_REGION", "-105,30,-95,40")
    s = load_settings()
    assert str(s.data_dir) == "/srv/smda" and s.bbox is not None and s.bbox.north == 40


def test_smda_region_takes_a_region_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_REGION", "r0.25_200_300_40x40")
    assert load_settings().bbox == BBox(-105, 30, -95, 40)
    monkeypatch.setenv("SMDA_REGION", "r0.25_700_300_40x40")
    with pytest.raises(ConfigError, match="names no grid window"):
        load_settings()


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_REGION", "somewhere")
    with pytest.raises(ConfigError, match="SMDA_"):
        load_settings()


def test_bad_region_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["twin", "params", "--region", "1,2,3"])
    assert result.exit_code == 2


def test_config_shows_no_credentials_of_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_MSWEP_URL", "https://ana:s3cret-pw@mirror.example/{yyyy}{ddd}.nc")
    monkeypatch.setenv("SMDA_PUSHGATEWAY", "http://gw.example:9091/?token=abc123")

    result = CliRunner().invoke(app, ["config"])

    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output and "abc123" not in result.output
    shown = json.loads(result.output)
    assert shown["mswep_url"] == "https://ana:***@mirror.example/{yyyy}{ddd}.nc"
    assert shown["pushgateway"] == "http://gw.example:9091/?token=***"


def test_config_shows_the_dask_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    from smda.config import DASK_SCHEDULER_ENV

    monkeypatch.setenv(DASK_SCHEDULER_ENV, "tcp://10.0.0.5:8786")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dask_scheduler"] == "tcp://10.0.0.5:8786"


def _smda(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m smda ARGS`` as a user runs it (the console script's entry point,
    :func:`smda.cli.run`), on this checkout, in an 80-column terminal, without credentials."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("CDSAPI", "EARTHDATA", "SMDA_"))
    }
    root = str(Path(smda.__file__).parents[1])
    clean.update(
        PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]),
        SMDA_DATA_DIR=str(tmp_path / "data"),
        HOME=str(tmp_path),
        COLUMNS="80",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "smda", *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def smda_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[list[str]], tuple[int, str]]:
    """Call the console script's entry point (:func:`smda.cli.run`) in this process with
    ``smda ARGS`` as its command line: its exit code and everything it printed."""
    for name in [k for k in os.environ if k.startswith("SMDA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SMDA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)

    def call(args: list[str]) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["smda", *args])
        with pytest.raises(SystemExit) as exited:
            run()
        out = capsys.readouterr()
        code = exited.value.code
        return code if isinstance(code, int) else 1, out.out + out.err

    return call


def _one_line_error(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["run", "--region=-105,30,200,35"], "east=200 is outside [-180, 180]"),
        (["run", "--region=-105,30,-105,35"], "west and east are both -105"),
        (
            ["backfill", "--start", "2024-07-01", "--end", "2024-07-02", "--region=-105,30,-95,30"],
            "south=30 is not below north=30",
        ),
        (
            ["fetch", "era5", "--start", "2024-07-01", "--region=-105,30.01,-95,30.02"],
            "contains no 0.25° grid cell centre",
        ),
        (["fetch", "era5", "--start", "2024-07-01", "--region=1,2,3"], "is not four numbers"),
        (
            ["train", "--start", "2024-01-01", "--end", "2024-02-01", "--region=0,95,1,96"],
            "north=96",
        ),
    ],
)
def test_a_bad_region_is_one_line_and_exit_2(
    args: list[str], problem: str, smda_run: Callable[[list[str]], tuple[int, str]], tmp_path: Path
) -> None:
    code, output = smda_run(args)

    line = _one_line_error(output)
    assert code == 2
    assert "--region" in line and problem in line and REGION_FORM in line
    assert not (tmp_path / "data").exists()  # rejected before anything was opened or written


@pytest.mark.parametrize(
    "args", [["run"], ["backfill", "--start", "2024-07-01", "--end", "2024-07-02"]]
)
def test_a_bad_smda_region_is_one_line_and_exit_1(
    args: list[str],
    smda_run: Callable[[list[str]], tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMDA_REGION", "-105,30,200,35")
    code, output = smda_run(args)

    line = _one_line_error(output)
    assert code == 1
    assert "SMDA_REGION" in line and "east=200 is outside [-180, 180]" in line


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["backfill", "--start", "2024-07-05", "--end", "2024-07-01"], "is before --start"),
        (["backfill", "--start", "2024-07-xx", "--end", "2024-07-01"], "is not a date YYYY-MM-DD"),
        (["fetch", "era5", "--start", "2024-07-05", "--end", "2024-07-01"], "is before --start"),
        (["fetch", "era5", "--start", "July"], "is not a date YYYY-MM-DD"),
    ],
)
def test_bad_dates_are_one_line_and_exit_2(
    args: list[str], problem: str, smda_run: Callable[[list[str]], tuple[int, str]]
) -> None:
    code, output = smda_run(args)

    assert problem in _one_line_error(output)
    assert code == 2


def test_the_console_script_rejects_a_bad_region_in_one_line(tmp_path: Path) -> None:
    """The whole path a user takes, in a process of its own: no traceback, one line."""
    result = _smda(["run", "--region=-105,30,200,35"], tmp_path)
    line = _one_line_error(result.stdout + result.stderr)
    assert result.returncode == 2 and "east=200 is outside [-180, 180]" in line

    result = _smda(
        ["backfill", "--start", "2024-07-01", "--end", "2024-07-02"],
        tmp_path,
        SMDA_REGION="-105,30,-95,30",
    )
    line = _one_line_error(result.stdout + result.stderr)
    assert result.returncode == 1 and "SMDA_REGION" in line and "south=30 is not below" in line


def test_settings_errors_name_the_variable_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_REGION", "-105,30,-105,35")
    monkeypatch.setenv("SMDA_GAIN", "3")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert "SMDA_REGION: invalid region -105,30,-105,35: west and east are both -105" in message
    assert "SMDA_GAIN: " in message


def test_version_prints_the_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == smda.__version__
