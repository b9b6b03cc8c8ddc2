"""A global year of the twin, staged day by day, and the scaled training on it:
``python -m benchmarks global-year [--days=365] [--budget=2000000] [--tile-cells=20000]
[--stage-only]``.

1. **Staging** (once, resumable): the twin's served products of every land cell of the globe
   (0.25°, 1440 × 720 cells) for ``--days`` days from 2015-03-01, plus the 29 days of MSWEP
   before them that the features' history needs, are staged day by day into the store under
   ``$SMDA_BENCH_DIR/global-year`` with ``tests/staged_world.py`` (what ingest would write,
   without the provider files). The world walks forward and forgets the days behind it
   (:meth:`smda_twin.world.World.forget_before`), so its memory stays flat (5.3–6.3 GB
   resident, 7.6 GB at peak, over a year: ~5.3 s a day after the first, 35 min for 394). Days
   already staged are skipped: an interrupted run goes on where it stopped. The world spins
   its water balances up for 30 days before the first day of MSWEP history (the twin's
   default is 365): enough for a cost figure, and the spin-up is not what is measured.
2. **Training** (a fresh process): :func:`smda.ops.train.train_from_store` with the default
   protocol (:class:`smda.science.model.TrainConfig`: blocked CV, one DAgger round, up to 1000
   rounds at learning rate 0.05) at scale (:class:`smda.ops.train_scale.ScaleOptions`: labels
   merged in bands of rows, the cells sampled to ``--budget`` teacher-forced rows, features
   built in 7-day blocks, CDF tables fitted band by band over every labelled cell; bands of
   ``--tile-cells`` land cells, 20 000 by default as in ``smda train``) on a local
   cluster of one single-threaded worker process per core. Printed: the wall time of each step,
   the peak RSS (``VmHWM``) of the client and of each worker, their sum, each step's peak of
   each process (the peaks are reset where a step begins, :func:`benchmarks.procstat.reset_peak`),
   the rows kept, the cells and the CV skill.
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

from benchmarks.procstat import peak_mb, reset_peak, status_mb, take_peak_mb
from smda.geo.grid import BBox

SEED = 42
FIRST = date(2015, 3, 1)
HISTORY_DAYS = 30
SPINUP_DAYS = 30
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
ROOT = CACHE / "global-year"
USAGE = (
    "usage: python -m benchmarks global-year [--days=365] [--budget=2000000]"
    " [--tile-cells=20000] [--stage-only]"
)
TARGET_MB = 8192
GLOBE = BBox(-180.0, -90.0, 180.0, 90.0)


def stage(days: int, root: Path = ROOT, region: BBox = GLOBE) -> int:
    """Stage ``days`` days of ``region`` from :data:`FIRST` (and the MSWEP history) into the
    store at ``root``, skipping the days already there; returns how many days it staged."""
    from smda.storage.store import Store
    from smda_twin.world import World, WorldSpec

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import ALL_SOURCES, stage_static, stage_world

    first_mswep = FIRST - timedelta(days=HISTORY_DAYS - 1)
    spec = WorldSpec(
        seed=SEED,
        region=region,
        epoch=first_mswep - timedelta(days=1),
        spinup_days=SPINUP_DAYS,
    )
    world = World(spec)
    store = Store(root, world.grid)
    if not store.static_path("era5_static").exists():
        stage_static(store, world)
    done = {s: set(store.staged_days(s)) for s in ALL_SOURCES}
    last = FIRST + timedelta(days=days - 1)
    todo = [first_mswep + timedelta(days=i) for i in range((last - first_mswep).days + 1)]
    t_all, n_staged = time.perf_counter(), 0
    for day in todo:
        sources = [s for s in ALL_SOURCES if (s == "mswep" or day >= FIRST) and day not in done[s]]
        if not sources:
            continue
        world.forget_before(day)
        t0 = time.perf_counter()
        for source in sources:  # one source at a time: one day of hourly global ERA5 is 1.3 GB
            stage_world(store, world, day, day, sources=[source], history_days=1, static=False)
        n_staged += 1
        if n_staged == 1 or day.day == 1 or day == last:
            print(
                f"  staged {day} ({', '.join(sources)}) in {time.perf_counter() - t0:.1f} s;"
                f" {n_staged} days in {time.perf_counter() - t_all:.0f} s, RSS {status_mb('VmRSS'):.0f} MB"
                f" (peak {peak_mb():.0f})",
                flush=True,
            )
    return n_staged


def _train(days: int, budget: int, tile_cells: int) -> dict[str, Any]:
    """Train on the staged global year in this process; its figures (run in a child)."""
    from distributed import Client, LocalCluster

    from smda.geo.grid import GLOBAL_025
    from smda.ops.train import train_from_store
    from smda.ops.train_scale import ScaleOptions
    from smda.storage.store import Store

    store = Store(ROOT, GLOBAL_025)
    end = FIRST + timedelta(days=days - 1)
    base = peak_mb()
    workers = max(1, os.cpu_count() or 1)
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        peaks: list[tuple[float, dict[str, float]]] = []  # each step's: client, workers
        t_start = time.perf_counter()

        def close_step() -> None:
            on_workers = client.run(take_peak_mb)
            peaks.append((take_peak_mb(), on_workers))

        begun = False

        def progress(message: str) -> None:  # to stderr: stdout carries the figures
            nonlocal begun
            if begun:  # a step ends where the next one begins
                close_step()
            begun = True
            elapsed = time.perf_counter() - t_start
            print(f"    [{elapsed:6.0f} s in] {message}", file=sys.stderr, flush=True)

        work = Path(tempfile.mkdtemp(prefix="global-year-labels-", dir=CACHE))
        options = ScaleOptions(
            scheduler=cluster.scheduler_address,
            row_budget=budget,
            seed=1,
            tile_cells=tile_cells,
            work_dir=work,
        )
        client.run(reset_peak)
        reset_peak()
        t0 = time.perf_counter()
        outcome = train_from_store(store, FIRST, end, progress=progress, scale=options)
        wall = time.perf_counter() - t0
        close_step()
    by_worker = {w: max(step[w] for _, step in peaks) for w in peaks[0][1]}
    shutil.rmtree(work, ignore_errors=True)
    return {
        "wall": wall,
        "client_mb": max(base, *(c for c, _ in peaks)),
        "client_base_mb": base,
        "workers_mb": sorted(by_worker.values()),
        "sampling": outcome.tc["sampling"],
        "cells": outcome.cells,
        "days": outcome.days,
        "cv": outcome.cv,
        "trees": outcome.bundle.num_trees,
        "seconds": outcome.seconds,
        "step_peaks": {
            name: {"client": c, "workers": [w[k] for k in sorted(w)]}
            for name, (c, w) in zip(outcome.seconds, peaks, strict=True)
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    flags = {a for a in args if "=" not in a}
    opts = dict(a.removeprefix("--").split("=", 1) for a in args if "=" in a)
    if set(opts) - {"days", "budget", "tile-cells", "child"} or flags - {"--stage-only"}:
        raise SystemExit(f"unknown option(s) {args}; {USAGE}")
    days, budget = int(opts.get("days", 365)), int(opts.get("budget", 2_000_000))
    tile_cells = int(opts.get("tile-cells", 20_000))
    if "child" in opts:
        print(json.dumps(_train(days, budget, tile_cells)))
        return
    print(f"global-year — {days} global days from {FIRST}, staged day by day under {ROOT}")
    t0 = time.perf_counter()
    n = stage(days)
    print(f"  staged {n} days in {time.perf_counter() - t0:.0f} s (the others were there)")
    if "--stage-only" in flags:
        return
    print(
        f"  training at scale, row budget {budget:,}, bands of {tile_cells:,} land cells"
        f" ({os.cpu_count()} cores)",
        flush=True,
    )
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "global-year", f"--days={days}",
         f"--budget={budget}", f"--tile-cells={tile_cells}", "--child=1"],
        check=True, stdout=subprocess.PIPE, text=True, env=os.environ,
    )  # fmt: skip
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["client_mb"] + sum(r["workers_mb"])
    workers = " + ".join(f"{mb:.0f}" for mb in r["workers_mb"])
    s = r["sampling"]
    print(
        f"  trained in {r['wall']:.0f} s: {r['cells']} cells × {r['days']} days kept"
        f" ({s['rows']:,} rows of {s['labelled_cells'] * r['days']:,} labelled), {r['trees']}"
        f" trees\n  peak RSS: client {r['client_mb']:.0f} MB (after imports"
        f" {r['client_base_mb']:.0f}), workers {workers} MB; sum {total:.0f} MB"
        f" (target ≤ {TARGET_MB} MB: {'met' if total <= TARGET_MB else 'MISSED'})"
    )
    print(f"  steps (s): {json.dumps({k: round(v, 1) for k, v in r['seconds'].items()})}")
    print("  peak RSS of each step (MB): client | workers")
    for step, p in r["step_peaks"].items():
        print(
            f"    {step:9s} {p['client']:6.0f} | {' + '.join(f'{mb:.0f}' for mb in p['workers'])}"
        )
    print(f"  CV: {json.dumps(r['cv'])}")


if __name__ == "__main__":
    main()
