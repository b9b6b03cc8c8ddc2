"""The tiled backfill (smda.ops.tiles) on an in-process Dask cluster: the one-process run's
bytes, resume tile by tile, idempotent re-runs. Real worker processes: tests/operations/
test_tiles_cluster.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from distributed import Client
from ops_runtime import LAST, RUN, digests, runtime_for

from smda.ops import Runtime
from smda.ops.days import backfill_days
from smda.ops.tiles import plan_tiles, run_tiles, tiled_backfill
from smda.storage.objects import Files
from smda_twin.world import World

DAYS = [RUN + timedelta(days=i) for i in range((LAST - RUN).days + 1)]
BLOCKS = len({d.toordinal() // 2 for d in DAYS})
"""Blocks of 2 days are aligned on the calendar."""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def one_process(template: Path, world: World, tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    root = tmp_path_factory.mktemp("one") / "data"
    shutil.copytree(template, root)
    rt = runtime_for(root, world)
    backfill_days(rt, RUN, LAST)
    return rt


def test_a_tiled_backfill_writes_the_one_process_runs_bytes(
    rt: Runtime, one_process: Runtime, client: Client
) -> None:
    done = tiled_backfill(rt, RUN, LAST, client, tile_cells=4, block_days=2)
    assert [r.day for r in done.runs] == DAYS
    assert (done.computed, done.reused) == (4 * BLOCKS, 0)  # 4 one-row tiles
    assert digests(rt) == digests(one_process)  # state, COG, STAC; no tile file left behind
    reference = backfill_days(one_process, RUN, LAST, force=True)
    for tiled, whole in zip(done.runs, reference, strict=True):
        assert tiled.n_obs == whole.n_obs
        assert tiled.feature_drift == pytest.approx(whole.feature_drift, rel=1e-9)


def test_a_rerun_recomputes_only_the_missing_tiles(
    rt: Runtime, one_process: Runtime, client: Client
) -> None:
    bundle = rt.registry.current()
    plan = plan_tiles(rt, DAYS, bundle, rt.registry.predictor(bundle), tile_cells=4, block_days=2)
    blocks = list(run_tiles(client, plan))  # as a run that died before committing anything
    files = Files.at(plan.job.work)
    assert len(files.glob("*.npz")) == 4 * BLOCKS
    lost = Path(blocks[2][1].path)
    files.unlink(lost)  # the tile a killed worker never wrote
    kept = {p: p.stat().st_mtime_ns for p in files.glob("*.npz")}
    done = tiled_backfill(rt, RUN, LAST, client, tile_cells=4, block_days=2)
    assert (done.computed, done.reused) == (1, 4 * BLOCKS - 1)
    assert digests(rt) == digests(one_process)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items() if p.exists())


def test_a_tiled_rerun_of_done_days_computes_nothing(
    rt: Runtime, one_process: Runtime, client: Client
) -> None:
    tiled_backfill(rt, RUN, LAST, client, tile_cells=4, block_days=2)
    again = tiled_backfill(rt, RUN, LAST, client, tile_cells=4, block_days=2)
    assert {r.status for r in again.runs} == {"skipped"}
    assert again.computed == 0
    assert digests(rt) == digests(one_process)


def test_a_rerun_from_inside_a_block_resumes_from_the_chain(
    rt: Runtime, one_process: Runtime, client: Client
) -> None:
    tiled_backfill(rt, RUN, LAST - timedelta(days=2), client, tile_cells=8, block_days=3)
    done = tiled_backfill(rt, RUN, LAST, client, tile_cells=8, block_days=3)
    assert [r.status for r in done.runs][:4] == ["skipped"] * 4
    assert digests(rt) == digests(one_process)
