"""`smda backfill` on a store whose inputs are staged asks no provider for them: without
credentials it runs from the staged files, with no per-day error lines."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from ops_runtime import RUN
from staged_world import stage_world
from typer.testing import CliRunner

from smda.cli import app
from smda.ops import Runtime
from smda_twin.world import World

END = RUN + timedelta(days=2)


@pytest.fixture
def operator(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """An operator's shell on ``rt``'s data directory: no twin endpoints, no credentials."""
    for name in [k for k in os.environ if k.startswith(("SMDA_", "CDSAPI", "EARTHDATA"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, no ~/.cdsapirc
    monkeypatch.setenv("SMDA_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("SMDA_SPINUP_DAYS", "3")
    return rt


def _ledgers(rt: Runtime) -> dict[str, bytes]:
    root = rt.settings.data_dir / "ledger"
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _backfill(rt: Runtime) -> tuple[dict[str, object], str]:
    args = ["backfill", "--start", str(RUN), "--end", str(END), f"--region={rt.region}", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_a_staged_store_backfills_without_asking_any_provider(
    operator: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    before = _ledgers(operator)
    with caplog.at_level(logging.WARNING):
        doc, err = _backfill(operator)
    fetch = doc["fetch"]
    assert isinstance(fetch, dict) and fetch, doc
    assert all(set(counts) == {"skipped"} for counts in fetch.values()), fetch
    assert doc["days_computed"] == 3
    assert "cannot ask" not in err and not caplog.records, (err, caplog.text)
    assert _ledgers(operator) == before, "nothing was fetched or re-checked"


def test_a_provisional_staged_day_is_used_with_one_line_for_the_source_not_polled(
    operator: Runtime, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    day = RUN + timedelta(days=1)  # ERA5T when staged: it asks to be checked for final ERA5
    stage_world(operator.store, world, day, day, sources=("era5",), today=day, static=False)
    with caplog.at_level(logging.WARNING):
        doc, err = _backfill(operator)
    assert doc["days_computed"] == 3
    fetch = doc["fetch"]
    assert isinstance(fetch, dict) and "failed" not in json.dumps(fetch), fetch
    lines = [r.getMessage() for r in caplog.records if "cannot ask" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("era5: ") and "staged files are used" in lines[0]
    assert "cannot ask" not in err
