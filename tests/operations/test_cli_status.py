"""`smda status`, `--json` and region keys on a tiny staged world with a model: the chain (first
and last day, gaps, provisional days), the model and the last run; ``region.json`` in each
region folder; a region key given to ``--region`` selects the same grid as its box."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from ops_runtime import LAST, RUN, TRAIN
from staged_world import stage_world
from typer.testing import CliRunner

from smda.cli import app
from smda.geo.grid import region_grid
from smda.ops import Runtime
from smda.storage.regions import REGION_FILE, grid_of_key, key_bbox, read_region_file
from smda_twin.world import World

HOLD = """
import sys, time
from smda.storage.locks import WriterLock
with WriterLock(sys.argv[1], "the state chain of r-test", timeout=0)("smda backfill"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def cli(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The environment of a user of ``rt``'s data directory (no provider is asked)."""
    for name in [k for k in os.environ if k.startswith("SMDA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SMDA_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("SMDA_SPINUP_DAYS", "3")
    return rt


def _json(args: list[str], code: int = 0) -> dict[str, Any]:
    """Run ``smda ARGS``; stdout must be one JSON document, with the exit code in it too."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["exit_code"] == code and doc["command"] == args[0]
    return doc


def _backfill(rt: Runtime, region: str, *extra: str) -> dict[str, Any]:
    period = ["--start", str(RUN), "--end", str(LAST)]
    return _json(["backfill", *period, "--no-fetch", "--json", f"--region={region}", *extra])


def _drop_day(rt: Runtime, day: date) -> None:
    for suffix in ("json", "nc"):
        Path(rt.chain.root, f"{day:%Y}", f"state_{day:%Y%m%d}.{suffix}").unlink()


def test_status_shows_the_chain_its_gaps_and_provisional_days_the_model_and_the_last_run(
    cli: Runtime, world: World
) -> None:
    rt = cli
    era5t = (RUN + timedelta(days=1), RUN + timedelta(days=2))  # ERA5T, as a recent day is
    stage_world(rt.store, world, *era5t, sources=("era5",), today=era5t[0], static=False)
    done = _backfill(rt, str(world.spec.region))
    assert done["status"] == "completed" and done["days_computed"] == 6
    assert [d["day"] for d in done["days"]] == [
        (RUN + timedelta(days=i)).isoformat() for i in range(6)
    ]
    assert done["region"]["key"] == rt.region
    gap = RUN + timedelta(days=3)
    _drop_day(rt, gap)

    doc = _json(["status", "--offline", "--json"])  # no --region, no SMDA_REGION: every region

    assert [r["key"] for r in doc["regions"]] == [rt.region]
    region = doc["regions"][0]
    chain = region["chain"]
    assert (chain["first_day"], chain["last_day"]) == (RUN.isoformat(), LAST.isoformat())
    assert chain["days"] == 5 and chain["gaps"] == [[gap.isoformat(), gap.isoformat()]]
    assert chain["provisional"] == {
        "days": 2,
        "ranges": [[era5t[0].isoformat(), era5t[1].isoformat()]],
        "by_input": {"era5": 2},
    }
    model = region["model"]
    assert model["version"] == rt.registry.current_version()
    assert model["training_period"] == {"start": TRAIN[0].isoformat(), "end": TRAIN[1].isoformat()}
    assert model["registered_at"] and model["promoted_at"]
    run = region["last_run"]
    assert run["job"] == "smda_backfill" and run["status"] == "completed"
    assert (run["exit_code"], run["days_run"]) == (0, 6)
    assert (run["first_day"], run["last_day"]) == (RUN.isoformat(), LAST.isoformat())
    box = key_bbox(rt.grid)
    assert region["bbox"] == {
        "west": box.west,
        "south": box.south,
        "east": box.east,
        "north": box.north,
    }
    assert region_grid(key_bbox(grid_of_key(rt.region))) == rt.grid
    assert {s["source"] for s in region["sources"]} == {"era5", "mswep", "smap"}

    human = CliRunner().invoke(app, ["status", "--offline"])
    assert human.exit_code == 0, human.output
    text = " ".join(human.stdout.split())
    assert f"region {rt.region}" in text
    assert f"{RUN} … {LAST}: 5 day(s)" in text and f"gaps: {gap}" in text
    assert f"provisional: 2 day(s) (era5 2): {era5t[0]}..{era5t[1]}" in text
    assert f"model {model['version']}" in text and f"{TRAIN[0]} … {TRAIN[1]}" in text
    assert "smda_backfill" in text and "completed" in text


def test_each_region_folder_gets_region_json_once(cli: Runtime, world: World) -> None:
    rt = cli
    _backfill(rt, str(world.spec.region))
    folders = [Path(rt.chain.root), rt.registry.root, rt.publisher.root]
    written = {}
    for folder in folders:
        info = read_region_file(folder)
        assert info is not None and info.key == rt.region and info.grid == rt.grid, folder
        doc = json.loads((folder / REGION_FILE).read_text())
        assert doc["grid_shape"] == {"lat": rt.grid.nrows, "lon": rt.grid.ncols}
        assert region_grid(key_bbox(info.grid)) == rt.grid and info.from_file
        written[folder] = (folder / REGION_FILE).read_bytes()

    _backfill(rt, str(world.spec.region), "--force")

    assert {f: (f / REGION_FILE).read_bytes() for f in folders} == written  # written once


def test_a_region_key_selects_the_same_grid_as_its_box(cli: Runtime, world: World) -> None:
    rt = cli
    by_box = _backfill(rt, str(world.spec.region))

    by_key = _backfill(rt, rt.region)  # the same chain: every day is already done

    assert by_key["region"] == by_box["region"] and by_key["region"]["key"] == rt.region
    assert by_key["days_computed"] == 0 and by_key["days_skipped"] == 6
    status = _json(["status", "--offline", "--json", f"--region={rt.region}"])
    assert status["regions"][0]["chain"]["days"] == 6


def test_a_data_dir_without_region_json_still_resolves_its_keys(cli: Runtime, world: World) -> None:
    rt = cli
    _backfill(rt, str(world.spec.region))
    for path in Path(rt.settings.data_dir).rglob(REGION_FILE):
        path.unlink()  # a data directory from before region.json

    status = _json(["status", "--offline", "--json", f"--region={rt.region}"])
    again = _backfill(rt, rt.region)

    assert status["regions"][0]["key"] == rt.region
    assert again["days_skipped"] == 6
    assert read_region_file(rt.chain.root) is not None  # the writer wrote it when missing


def _smda(rt: Runtime, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMDA_")}
    env.update(SMDA_DATA_DIR=str(rt.settings.data_dir), SMDA_LOCK_TIMEOUT="0", COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "smda", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_an_unknown_region_key_is_one_line_listing_the_known_ones(
    cli: Runtime, world: World
) -> None:
    rt = cli
    _backfill(rt, str(world.spec.region))

    done = _smda(rt, ["run", "--json", "--region=r0.25_1_2_3x4"])

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr
    assert "unknown region key 'r0.25_1_2_3x4'" in lines[0]
    assert f"{rt.region} = {key_bbox(rt.grid)}" in lines[0]
    doc = json.loads(done.stdout)
    assert doc == {"command": "run", "exit_code": 2, "error": lines[0].removeprefix("error: ")}


def test_json_says_busy_with_exit_73_when_another_process_writes_the_region(
    cli: Runtime, world: World
) -> None:
    rt = cli
    lock = rt.store.locks_dir / "chain.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        region = f"--region={world.spec.region}"
        args = ["backfill", "--start", str(RUN), "--end", str(RUN), region, "--no-fetch"]
        backfill = _smda(rt, [*args, "--json"])
        human = _smda(rt, args)
    finally:
        proc.kill()
        proc.wait()
    assert backfill.returncode == human.returncode == 73, backfill.stderr
    doc = json.loads(backfill.stdout)
    assert doc["command"] == "backfill" and doc["exit_code"] == 73 and doc["status"] == "busy"
    assert f"pid {proc.pid}" in doc["reason"] and doc["advice"]
    assert human.stdout == ""  # without --json nothing goes to stdout
