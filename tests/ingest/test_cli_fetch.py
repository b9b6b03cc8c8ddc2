"""`smda fetch` and `smda status` as a user runs them against a served twin."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smda.cli import app
from smda_twin.faults import Fault
from smda_twin.service import Twin

runner = CliRunner()


@pytest.fixture
def env(twin: Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    endpoints = tmp_path / "endpoints.json"
    twin.endpoints().write(endpoints)
    monkeypatch.setenv("SMDA_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("SMDA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMDA_REGION", "-100,35,-99,36")
    return tmp_path / "data"


def test_fetch_then_status(env: Path) -> None:
    result = runner.invoke(app, ["fetch", "all", "--start", "2024-07-14", "--end", "2024-07-16"])
    assert result.exit_code == 0, result.output
    assert "fetched" in result.output and "not available" in result.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    for name in ("era5", "mswep", "smap"):
        assert name in status.output
    assert "2024-07-15" in status.output  # newest ERA5 at the twin and staged
    again = runner.invoke(app, ["fetch", "era5", "--start", "2024-07-14", "--end", "2024-07-15"])
    assert again.exit_code == 0 and "skipped" in again.output


def test_fetch_reports_failures_with_reasons_and_exit_code(twin: Twin, env: Path) -> None:
    twin.add_fault("cds", Fault("licence", path="execution", times=-1))
    result = runner.invoke(app, ["fetch", "era5", "--start", "2024-07-01"])
    assert result.exit_code == 1
    assert "licence" in result.output and "accept" in result.output


def test_fetch_rejects_bad_arguments(env: Path) -> None:
    assert runner.invoke(app, ["fetch", "rain", "--start", "2024-07-01"]).exit_code == 2
    assert (
        runner.invoke(
            app, ["fetch", "era5", "--start", "2024-07-05", "--end", "2024-07-01"]
        ).exit_code
        == 2
    )
    assert runner.invoke(app, ["fetch", "era5", "--start", "July"]).exit_code == 2


def test_fetch_and_status_json(env: Path) -> None:
    import json

    result = runner.invoke(
        app, ["fetch", "era5,smap", "--start", "2024-07-14", "--end", "2024-07-16", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # the table and progress went to stderr
    assert (doc["command"], doc["exit_code"]) == ("fetch", 0)
    assert (doc["start"], doc["end"], doc["sources"]) == (
        "2024-07-14",
        "2024-07-16",
        ["era5", "smap"],
    )
    era5 = doc["counts"]["era5"]
    assert era5["fetched"] + era5["not_available"] == 3 and era5["failed"] == 0
    assert doc["static"]["path"] and doc["static"]["error"] is None

    status = runner.invoke(app, ["status", "era5", "--json"])
    assert status.exit_code == 0, status.output
    region = json.loads(status.stdout)["regions"][0]
    source = region["sources"][0]
    assert source["source"] == "era5" and source["provider_newest"] == "2024-07-15"
    assert source["staged_last"] == "2024-07-15" and source["behind_days"] == 0
    assert region["chain"]["days"] == 0 and region["model"]["version"] is None


def test_a_failed_fetch_with_json_exits_1_with_its_reasons(twin: Twin, env: Path) -> None:
    import json

    twin.add_fault("cds", Fault("licence", path="execution", times=-1))
    result = runner.invoke(app, ["fetch", "era5", "--start", "2024-07-01", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and doc["counts"]["era5"]["failed"] == 1
    assert "licence" in doc["problems"][0]["reason"]
