"""Memory of the scaled training against the region's size:
``python -m benchmarks train-memory [--sizes=20,40,80] [--days=60] [--budget=12000]``.

Twin regions of n × n cells (0.25°, from 30° N 105° W, seed 42) are staged for ``--days`` days
(plus 30 days of MSWEP history) with ``tests/staged_world.py`` under
``$SMDA_BENCH_DIR/train-memory`` (once). Each size then trains in a fresh process:
:func:`smda.ops.train.train_from_store` with :class:`smda.ops.train_scale.ScaleOptions` (the same
row budget on every region, bands of 400 cells, 7-day feature blocks) on a local cluster of one
single-threaded worker process per core. Printed per size: the peak RSS of the main (client)
process (``VmHWM``, workers excluded) and of each worker (their own), the wall time and the
rows kept; the largest region once more with 16 × the budget (the cost of a kept row); then a
projection of the client's memory to a global year, linear in the region's cell-days and the
kept rows, and the row budget that fits 8 GB.
The figures are only as quiet as the machine: the load average is printed beside them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.procstat import peak_mb

SEED = 42
START = date(2015, 3, 1)
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
USAGE = "usage: python -m benchmarks train-memory [--sizes=20,40,80] [--days=60] [--budget=12000]"
GLOBAL_CELLS, GLOBAL_DAYS, GLOBAL_GRID = 360_000, 365, 1440 * 720


def _store(n: int, days: int) -> Any:
    from smda.geo.grid import BBox
    from smda.storage.store import Store
    from smda_twin.world import World, WorldSpec

    box = BBox(-105.0, 30.0, -105.0 + n / 4, 30.0 + n / 4)
    world = World(WorldSpec(seed=SEED, region=box))
    root = CACHE / "train-memory" / f"{n}x{n}"
    store = Store(root, world.grid)
    marker = root / "staged.json"
    spec = {"seed": SEED, "n": n, "start": str(START), "days": days}
    if not (marker.exists() and json.loads(marker.read_text()) == spec):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from staged_world import stage_world

        t0 = time.perf_counter()
        stage_world(store, world, START, START + timedelta(days=days - 1), history_days=30)
        marker.write_text(json.dumps(spec))
        print(f"  staged {n}×{n} cells × {days} days ({time.perf_counter() - t0:.0f} s)")
    return store


def _train(n: int, days: int, budget: int) -> dict[str, Any]:
    """Train on the n × n region in this process; its figures (run in a child process)."""
    from distributed import Client, LocalCluster

    from smda.ops.train import train_from_store
    from smda.ops.train_scale import ScaleOptions
    from smda.science.bundle import HyperParams
    from smda.science.model import CVConfig, TrainConfig

    store = _store(n, days)
    end = START + timedelta(days=days - 1)
    hyper = HyperParams(learning_rate=0.1, max_rounds=60)
    config = TrainConfig(hyper=hyper, cv=CVConfig(n_folds=3, block_deg=1.0), dagger_rounds=0)
    base = peak_mb()
    workers = max(1, os.cpu_count() or 1)
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        work = Path(tempfile.mkdtemp(prefix="train-memory-", dir=CACHE))  # labels merged anew
        options = ScaleOptions(scheduler=cluster.scheduler_address, row_budget=budget, seed=1,
                               tile_cells=400, work_dir=work)  # fmt: skip
        t0 = time.perf_counter()
        outcome = train_from_store(store, START, end, config=config, min_n=30, scale=options)
        wall = time.perf_counter() - t0
        workers_mb = sorted(client.run(peak_mb).values())
    peak = peak_mb()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "cells": n * n,
        "days": days,
        "wall": wall,
        "client_mb": peak,
        "client_base_mb": base,
        "workers_mb": workers_mb,
        "rows": outcome.tc["sampling"]["rows"],
        "labelled": outcome.tc["sampling"]["labelled_cells"],
    }


def _child(n: int, days: int, budget: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "train-memory", f"--child={n}", f"--days={days}",
         f"--budget={budget}"],
        check=True, capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    r: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    workers = ", ".join(f"{mb:.0f}" for mb in r["workers_mb"])
    print(
        f"  {n:3d}×{n:<3d} {r['cells']:6d} cells, budget {budget:6d}: client peak"
        f" {r['client_mb']:5.0f} MB (after imports {r['client_base_mb']:.0f}), workers {workers}"
        f" MB; {r['rows']} rows kept of {r['labelled'] * (days - 1)}, {r['wall']:.1f} s"
        f" (load {os.getloadavg()[0]:.1f}, 2 cores shared)",
        flush=True,
    )
    return r


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    opts = dict(a.removeprefix("--").split("=", 1) for a in args if "=" in a)
    if set(opts) - {"sizes", "days", "budget", "child"} or any("=" not in a for a in args):
        raise SystemExit(f"unknown option(s) {args}; {USAGE}")
    days, budget = int(opts.get("days", 60)), int(opts.get("budget", 12_000))
    if "child" in opts:
        print(json.dumps(_train(int(opts["child"]), days, budget)))
        return
    sizes = [int(s) for s in opts.get("sizes", "20,40,80").split(",")]
    print(f"train-memory — scaled training on {days} days, the same row budget on every region")
    for n in sizes:
        _store(n, days)
    rows = [_child(n, days, budget) for n in sizes]
    more = _child(sizes[-1], days, 16 * budget)  # the cost of a kept row
    a, b = rows[0], rows[-1]
    per_cell = (b["client_mb"] - a["client_mb"]) / (b["cells"] - a["cells"])
    per_row = (more["client_mb"] - b["client_mb"]) / max(more["rows"] - b["rows"], 1)
    fixed = b["client_mb"] - per_row * b["rows"] - per_cell * b["cells"]
    print(
        f"  client: {per_cell * 1e3:.2f} MB per 1000 region cells ({days} days) at a fixed"
        f" budget, {per_row * 1e6:.0f} MB per million kept rows, {fixed:.0f} MB fixed"
    )
    total = GLOBAL_CELLS * GLOBAL_DAYS
    for how, region in (
        ("per grid cell (summaries without a time axis)", per_cell * GLOBAL_GRID),
        ("per grid cell-day (a label cube's growth)", per_cell * GLOBAL_GRID * GLOBAL_DAYS / days),
    ):
        rows_8gb = max((8192 - fixed - region) / per_row, 0.0) if per_row > 0 else float("inf")
        print(
            f"  projection to a global year ({GLOBAL_GRID} grid cells, {GLOBAL_CELLS} land, ×"
            f" {GLOBAL_DAYS} days), the region's part linear {how}: {fixed + region:.0f} MB"
            f" before the kept rows; 8 GB holds {rows_8gb / 1e6:.1f} M kept rows"
            f" ({rows_8gb / total:.1%} of the year's)"
        )


if __name__ == "__main__":
    main()
