"""Memory of the scaled training against the region's size:
``python -m benchmarks train-memory [--sizes=20,40,80] [--days=60]``.

Twin regions of n × n cells (0.25°, from 30° N 105° W, seed 42) are staged for ``--days`` days
(plus 30 days of MSWEP history) with ``tests/staged_world.py`` under
``$SMDA_BENCH_DIR/train-memory`` (once). Each size then trains in a fresh process:
:func:`smda.ops.train.train_from_store` with :class:`smda.ops.train_scale.ScaleOptions` (a row
budget of 40 % of the rows, bands of 400 cells, 7-day feature blocks) on a local cluster of one
single-threaded worker process per core. Printed per size: the peak RSS of the main (client)
process (``VmHWM``, workers excluded) and of each worker (their own), the
wall time and the rows kept; then a linear projection of the client's memory to a global year.
The figures are only as quiet as the machine: the load average is printed beside them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SEED = 42
START = date(2015, 3, 1)
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
USAGE = "usage: python -m benchmarks train-memory [--sizes=20,40,80] [--days=60]"
BUDGET_FRACTION = 0.4
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


def _peak_mb() -> float:
    """This process's peak RSS (MB): ``VmHWM``, which, unlike ``ru_maxrss``, does not carry the
    peak of the process that started it across ``exec``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _train(n: int, days: int) -> dict[str, Any]:
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
    budget = int(BUDGET_FRACTION * n * n * (days - 1))
    base = _peak_mb()
    workers = max(1, os.cpu_count() or 1)
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        options = ScaleOptions(scheduler=cluster.scheduler_address, row_budget=budget, seed=1,
                               tile_cells=400)  # fmt: skip
        t0 = time.perf_counter()
        outcome = train_from_store(store, START, end, config=config, min_n=30, scale=options)
        wall = time.perf_counter() - t0
        workers_mb = sorted(client.run(_peak_mb).values())
    peak = _peak_mb()
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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    opts = dict(a.removeprefix("--").split("=", 1) for a in args if "=" in a)
    if set(opts) - {"sizes", "days", "child"} or any("=" not in a for a in args):
        raise SystemExit(f"unknown option(s) {args}; {USAGE}")
    days = int(opts.get("days", 60))
    if "child" in opts:
        print(json.dumps(_train(int(opts["child"]), days)))
        return
    sizes = [int(s) for s in opts.get("sizes", "20,40,80").split(",")]
    print(f"train-memory — scaled training, {days} days, row budget {BUDGET_FRACTION:.0%} of rows")
    rows = []
    for n in sizes:
        _store(n, days)
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks", "train-memory", f"--child={n}", f"--days={days}"],
            check=True, capture_output=True, text=True, env=os.environ,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        workers = ", ".join(f"{mb:.0f}" for mb in r["workers_mb"])
        print(
            f"  {n:3d}×{n:<3d} {r['cells']:6d} cells: client peak {r['client_mb']:6.0f} MB"
            f" (after imports {r['client_base_mb']:.0f}), workers {workers} MB,"
            f" {r['rows']} rows kept of {r['labelled'] * (days - 1)}, {r['wall']:.1f} s"
            f" (load {load:.1f}, 2 cores shared)",
            flush=True,
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        per_cell = (b["client_mb"] - a["client_mb"]) / (b["cells"] - a["cells"])
        per_row = (b["client_mb"] - a["client_mb"]) / max(b["rows"] - a["rows"], 1)
        print(
            f"  client growth {per_cell * 1e3:.2f} MB per 1000 cells of the region"
            f" ({days} days), or {per_row * 1e6:.0f} MB per million kept rows"
        )
        print(
            f"  projection, a global year ({GLOBAL_CELLS} land cells × {GLOBAL_DAYS} days,"
            f" {GLOBAL_GRID} grid cells), linear in cells × days from these points:"
            f" {a['client_mb'] + per_cell * (GLOBAL_CELLS - a['cells']) * GLOBAL_DAYS / days:.0f}"
            " MB of client at this budget fraction"
        )


if __name__ == "__main__":
    main()
