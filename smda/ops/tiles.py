"""A backfill split into tiles that advance through the days independently (on Dask workers).

Every cell of the cycle depends only on its own yesterday: the features, the model's prediction
(one row per cell), the gain, the CDF rescaling of SMAP and the nudging are all per cell. So a
backfill can cut the region into tiles — bands of whole grid rows, about ``tile_cells`` cells
each — and let each tile step through a *block* of ``block_days`` days on its own, from the
analysis its previous block ended with. The main process then assembles each day from its
tiles and commits it exactly as :func:`smda.ops.days.run_day` does (the same state file, COG
and STAC item, byte for byte; :func:`smda.ops.days.commit_day`). The only region-wide figure of
a day, the feature drift (a monitoring metric, not in any file), is made from the tiles'
per-feature sums; it can differ from the one-process figure in the last bits of rounding.

What runs where: the main process holds the chain's writer lock, starts the chain (the state of
the day before the first, or a cold start), computes the provenance and commits the days; a
worker opens the staged store and the model registry of the data directory — the workers need
the same data directory (a shared filesystem) — and writes its tile files to the region's work
area ``<state>/_tiles/<run key>/`` (``SMDA_STATE_URL``, may be ``s3://``; the workers then need
the same credentials in their environment).

Resume: a tile file of a block is written atomically and records what it was stepped from (a
hash of the tile's starting state and of the block's provenance), so a task re-run by Dask
after a worker was lost, or by a re-run of the backfill, reuses every tile already done and
recomputes only the missing ones. Blocks are aligned on the calendar (day ordinal // block
size), so a re-run that resumes inside a block reuses the later blocks. A day is committed only
when all its tiles exist; the tile files are removed once the days they hold are committed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda import __version__
from smda.ops.days import (
    DayRun,
    commit_day,
    mend_chain,
    provenance,
    provenance_of,
    run_day,
    same_provenance,
    state_before,
)
from smda.ops.runtime import Runtime
from smda.ops.tile import FIELDS, TileJob, TileOutcome, advance_tile, digest, load_tile
from smda.science.bundle import ModelBundle, Predict
from smda.science.cycle import CycleResult
from smda.storage.chain import canonical_provenance
from smda.storage.inputs import check_inputs
from smda.storage.objects import Files

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DEFAULT_BLOCK_DAYS",
    "DEFAULT_TILE_CELLS",
    "TilePlan",
    "TiledBackfill",
    "Tiling",
    "plan_tiles",
    "run_tiles",
    "tiled_backfill",
]

LOG = logging.getLogger(__name__)

DEFAULT_TILE_CELLS = 10_000
"""Cells per tile (whole grid rows: at least one row)."""

DEFAULT_BLOCK_DAYS = 8
"""Days a tile advances per task (its results of the block are one file)."""


@dataclass(frozen=True)
class Tiling:
    """How a backfill is tiled (``smda backfill --dask-scheduler/--tile-cells/--block-days``)."""

    scheduler: str | None = None
    """The Dask scheduler's address (``tcp://host:8786``; None: a local cluster)."""
    tile_cells: int = DEFAULT_TILE_CELLS
    block_days: int = DEFAULT_BLOCK_DAYS


@dataclass(frozen=True)
class TilePlan:
    """The tiles and day blocks of a tiled backfill (:func:`plan_tiles`)."""

    job: TileJob
    rows: tuple[tuple[int, int], ...]
    """Each tile's grid rows ``[first, end)``."""
    blocks: tuple[tuple[date, ...], ...]
    """Consecutive days per block, in order."""
    block_keys: tuple[str, ...]
    """Per block: a digest of its days' provenance (inputs, model, gain, code)."""
    start: npt.NDArray[np.float32] = field(repr=False)
    """The state of the day before the first (lat, lon), m3 m-3."""


@dataclass
class TiledBackfill:
    """The days a tiled backfill ran, and how many tile blocks it computed or reused."""

    runs: list[DayRun]
    computed: int = 0
    reused: int = 0


def plan_tiles(
    rt: Runtime,
    days: list[date],
    bundle: ModelBundle,
    predict: Predict,
    *,
    tile_cells: int = DEFAULT_TILE_CELLS,
    block_days: int = DEFAULT_BLOCK_DAYS,
) -> TilePlan:
    """The tiles (bands of ``max(1, tile_cells // ncols)`` rows) and calendar-aligned blocks of
    ``block_days`` days for stepping ``days`` (consecutive) from the chain's state of the day
    before the first (or a cold start, computed here).

    Raises
    ------
    ValueError
        If ``tile_cells`` or ``block_days`` is below 1.
    """
    if tile_cells < 1 or block_days < 1:
        raise ValueError(f"tile_cells and block_days must be ≥ 1, got {tile_cells}, {block_days}")
    nrows, ncols = rt.grid.shape
    step_rows = max(1, tile_cells // ncols)
    rows = tuple((r, min(r + step_rows, nrows)) for r in range(0, nrows, step_rows))
    blocks: list[list[date]] = []
    for day in days:
        if not blocks or day.toordinal() // block_days != blocks[-1][0].toordinal() // block_days:
            blocks.append([])
        blocks[-1].append(day)
    keys = tuple(
        digest(*(canonical_provenance(provenance(rt, d, bundle)) for d in block))
        for block in blocks
    )
    start = state_before(rt, days[0], bundle, predict)
    run_key = digest(bundle.version, str(rt.gain), __version__, repr(rows), str(block_days))
    job = TileJob(
        store_root=str(rt.store.root),
        grid=rt.grid,
        models=str(rt.registry.root),
        version=bundle.version,
        gain=rt.gain,
        work=f"{rt.chain.url}/_tiles/{run_key[:16]}",
    )
    values = np.asarray(start.transpose("lat", "lon").values, dtype=np.float32)
    return TilePlan(job, rows, tuple(tuple(b) for b in blocks), keys, values)


def run_tiles(client: Client, plan: TilePlan, *, ahead: int = 2) -> Iterator[list[TileOutcome]]:
    """Run every tile's blocks on ``client`` — a tile's next block is submitted when its block
    is done, with the outcome (not a Dask dependency: a lost worker only costs its running
    task), at most ``ahead`` blocks beyond the oldest block not yet complete — and yield the
    outcomes of each block, in order, once all its tiles are done."""
    from distributed import as_completed

    ntiles = len(plan.rows)

    def submit(t: int, b: int, start: npt.NDArray[np.float32] | TileOutcome) -> Any:
        block, key = plan.blocks[b], plan.block_keys[b]
        return client.submit(
            advance_tile, plan.job, t, plan.rows[t], block, key, start, b, pure=False
        )

    first = [submit(t, 0, plan.start[slice(*r)]) for t, r in enumerate(plan.rows)]
    pending = as_completed(first)  # type: ignore[no-untyped-call]
    done: dict[int, dict[int, TileOutcome]] = {}
    waiting: dict[int, TileOutcome] = {}
    oldest = 0
    for future in pending:
        outcome: TileOutcome = future.result()
        done.setdefault(outcome.block, {})[outcome.tile] = outcome
        waiting[outcome.tile] = outcome
        while len(done.get(oldest, {})) == ntiles:
            ready = done.pop(oldest)
            yield [ready[t] for t in range(ntiles)]
            oldest += 1
        for t, last in list(waiting.items()):
            if last.block + 1 < len(plan.blocks) and last.block + 1 <= oldest + ahead:
                pending.add(submit(t, last.block + 1, waiting.pop(t)))  # type: ignore[no-untyped-call]


def _assemble(
    plan: TilePlan, outcomes: list[TileOutcome], bundle: ModelBundle
) -> Iterator[CycleResult]:
    """The days of a block assembled from its tiles' files (rows in order)."""
    files = Files.at(plan.job.work)
    tiles = [load_tile(files, Path(o.path)) for o in sorted(outcomes, key=lambda o: o.tile)]
    grid = plan.job.grid
    coords = {"lat": grid.lats, "lon": grid.lons}
    for i, day in enumerate(plan.blocks[outcomes[0].block]):
        attrs = json.loads(str(tiles[0]["attrs"]))[i]
        fields = {
            name: xr.DataArray(
                np.concatenate([t[name][i] for t in tiles]),
                dims=("lat", "lon"),
                coords=coords,
                name=name,
                attrs=attrs[name],
            )
            for name in FIELDS
        }
        sums = np.sum([t["sums"][i] for t in tiles], axis=0)
        counts = np.sum([t["counts"][i] for t in tiles], axis=0)
        stats = bundle.feature_stats
        drift = stats.drift_of_sums(sums, counts) if stats else math.nan
        yield CycleResult(day=day, feature_drift=drift, **fields)


def _first_to_compute(
    rt: Runtime,
    days: list[date],
    bundle: ModelBundle,
    *,
    force: bool,
    one: Callable[[date], DayRun],
) -> int:
    """Index of the first day of ``days`` not yet in the chain with the same provenance; the
    days before it are run by ``one`` (skipped, republished if needed)."""
    for i, day in enumerate(days):
        if force or not (
            rt.chain.has(day) and same_provenance(rt, day, provenance_of(rt, day, bundle), bundle)
        ):
            return i
        one(day)
    return len(days)


def tiled_backfill(
    rt: Runtime,
    start: date,
    end: date,
    client: Client,
    *,
    tile_cells: int = DEFAULT_TILE_CELLS,
    block_days: int = DEFAULT_BLOCK_DAYS,
    force: bool = False,
    progress: Callable[[DayRun], None] | None = None,
) -> TiledBackfill:
    """:func:`smda.ops.days.backfill_days` with the stepping split into tiles run on
    ``client``'s workers (module docstring): the same files, byte for byte.

    Raises what :func:`~smda.ops.days.backfill_days` raises; a worker's error is raised here.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    with rt.chain_writer():
        bundle = rt.registry.current()
        predict = rt.registry.predictor(bundle)
        out = TiledBackfill([])

        def one(day: date) -> DayRun:
            run = run_day(rt, day, bundle=bundle, predict=predict)
            out.runs.append(run)
            if progress is not None:
                progress(run)
            return run

        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        if force:  # every input first: a forced run must not withdraw days it cannot redo
            later = [d for d in rt.chain.days() if d > end]
            check_inputs(rt.store, [*days, *later], bundle.spec.history_days)
        days = days[_first_to_compute(rt, days, bundle, force=force, one=one) :]
        if days:
            _advance(rt, days, bundle, predict, client, out, progress, tile_cells, block_days)
        if out.runs:
            mend_chain(rt, out.runs, end, one)
        return out


def _advance(
    rt: Runtime,
    days: list[date],
    bundle: ModelBundle,
    predict: Predict,
    client: Client,
    out: TiledBackfill,
    progress: Callable[[DayRun], None] | None,
    tile_cells: int,
    block_days: int,
) -> None:
    plan = plan_tiles(rt, days, bundle, predict, tile_cells=tile_cells, block_days=block_days)
    LOG.info(
        "tiled backfill of %s…%s: %d tile(s) × %d block(s), work area %s",
        days[0],
        days[-1],
        len(plan.rows),
        len(plan.blocks),
        plan.job.work,
    )
    files = Files.at(plan.job.work)
    previous: list[TileOutcome] = []
    for outcomes in run_tiles(client, plan):
        computed = sum(o.computed for o in outcomes)
        out.computed += computed
        out.reused += len(outcomes) - computed
        block = plan.blocks[outcomes[0].block]
        LOG.info(
            "%s…%s: %d tile(s) computed, %d reused",
            block[0],
            block[-1],
            computed,
            len(outcomes) - computed,
        )
        for result in _assemble(plan, outcomes, bundle):
            t0 = time.perf_counter()
            run = commit_day(rt, result, bundle, provenance_of(rt, result.day, bundle), started=t0)
            out.runs.append(run)
            if progress is not None:
                progress(run)
        for o in previous:  # the block before is committed and no longer a task's start
            files.unlink(Path(o.path))
        previous = outcomes
    for path in files.glob("*.npz"):
        files.unlink(path)
