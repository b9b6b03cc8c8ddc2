"""Operations benchmarks: a global day from staged inputs to published COG + STAC, and backfills.

1. **A global day** (0.25°, 720 × 1440, every twin land cell) of :func:`smda.ops.run_day`
   from inputs staged the way ingest stages them (:meth:`smda.storage.store.Store.write_staged` with
   ledger records; the static fields at ``store.static_path("era5_static")``): ERA5 daily
   aggregates, MSWEP over the 30-day history window and SMAP of each day, made from the twin's
   global day of :func:`benchmarks.science._global_inputs` and varied a little per day. The
   model is the reference one (500 trees × 63 leaves, trained as in
   :mod:`benchmarks.science`), or with ``--model=FILE`` the trees of any LightGBM model file
   (e.g. the final model of ``smda train``'s default protocol that ``python -m benchmarks
   train`` writes), with CDF tables and a climatology for every global land cell,
   registered in the region's :class:`~smda.storage.registry.ModelRegistry`; its tl2cgen library is
   compiled once (the one-off time is reported apart: it is cached per bundle version).

   In a fresh process per repeat (empty state chain and products, ``spinup_days`` = 1): the
   first day is a cold start (the climatology of D−2 cycled through the spin-up day D−1), then
   :func:`smda.ops.backfill_days` steps :data:`N_DAYS` steady-state days (each from the
   analysis of the day before, read from the chain). Each day is split into the calls
   ``run_day`` makes (timed by wrapping them, :class:`_Parts`): input provenance, reading the
   inputs, the state of D−1, the cycle step, the state write (with the uncertainty), publishing
   (re-reading the state, COG + STAC), and the rest. The backfill publishes each day while the
   next one steps (:mod:`smda.ops.overlap`) and reads the next day's inputs while one steps
   (:mod:`smda.ops.readahead`: those reads are the ``inputs`` of the next day and its
   ``ahead`` column, made before its ``total`` began), so a day's parts overlap its neighbours'
   and the backfill's wall time per day, not the sum of the parts, is its cost. Peak resident memory is
   VmHWM.
   Targets: ≤ 5 s and ≤ 4 GB per global day; a backfill ≥ 10 global days per minute.
2. **Demo-region backfill** (the twin's 10° × 10° demo region, 1600 cells): ~60 days staged
   with ``tests/staged_world.py``, a tiny model trained with
   :func:`smda.ops.train_model`, then :func:`smda.ops.backfill_days` over
   :data:`DEMO_DAYS` steady-state days in a fresh process: days per minute.
3. **The floor** of a steady global day, measured in a fresh process beside the runs as ``python
   -m benchmarks scale`` measures its own (reading the day's staged ERA5, SMAP and MSWEP window;
   one tl2cgen traversal of the trees for every land cell): each global run's seconds per day
   are printed as a ratio to it.
4. **Profile** of the steady global days (cProfile, in a further fresh process): where the
   time goes, cumulative and own time.

Everything is written once under ``$SMDA_BENCH_DIR/operations`` (default: the system temp dir;
the staged days and models are reused, the state chain and products are rebuilt every run).
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import science

WORK = science.CACHE / "operations"
GLOBAL_DIR = WORK / "global"
DEMO_DIR = WORK / "demo"
THREADS = science.THREADS
REPEATS = 2
COLD_DAY = science.DAY
"""The first (cold-start) global day; its spin-up day is the day before."""
N_DAYS = 6
"""Steady-state global days after the cold-start day."""
SPINUP_DAYS = 1
GLOBAL_GAIN = 0.3
"""The nudging gain of the global days (the scale benchmark steps with the same)."""
DEMO_STAGED = (date(2015, 4, 1), date(2015, 5, 31))
"""Demo-region days staged (and MSWEP over the 29 days before)."""
DEMO_TRAIN = (date(2015, 4, 1), date(2015, 4, 30))
DEMO_DAYS = 30
DEMO_COLD = date(2015, 5, 1)
"""Cold-start day of the demo backfill, which then runs the next :data:`DEMO_DAYS` days."""
PARTS = ("model", "provenance", "inputs", "state D-1", "step", "write", "publish")
COLUMNS = (*PARTS, "other", "total", "cpu", "ahead")
STAGE_VERSION = 1
"""Bump to re-stage the global days (the layout written by :func:`_stage_global` changed)."""


# -- the global store ---------------------------------------------------------------------------
def _global_days() -> list[date]:
    """Spin-up day, cold-start day and the steady days."""
    return [COLD_DAY + timedelta(days=i) for i in range(-SPINUP_DAYS, N_DAYS + 1)]


def _reference_model() -> str:
    """The reference model's string (500 trees × 63 leaves, trained once on the demo region
    as in :mod:`benchmarks.science`, on every row; cached)."""
    path = WORK / "reference_model.txt"
    if path.exists():
        return path.read_text()
    from smda.science.model import fit_booster

    t0 = time.perf_counter()
    fm, y = science._training_data()
    hyper, trees = science._models()["reference"]
    booster = fit_booster((fm, y), None, hyper, dagger_rounds=1, rounds=trees)
    text = str(booster.model_to_string())
    WORK.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"trained the reference model in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return text


def _reference_bundle(land: np.ndarray, model: str | None = None) -> Any:
    """The reference bundle with CDF tables and a climatology for every land cell of
    ``land`` (as :func:`benchmarks.science._bundles` builds them); ``model``: another
    LightGBM model string in place of the reference model's."""
    from smda.geo.grid import GLOBAL_025
    from smda.science.bundle import Climatology, ModelBundle
    from smda.science.features import FeatureSpec, global_cell_ids
    from smda.science.nudging import DEFAULT_PROBS, CdfTables

    g = GLOBAL_025
    lat2, lon2 = np.meshgrid(g.lats, g.lons, indexing="ij")
    ids = np.sort(global_cell_ids(lat2[land], lon2[land]))
    probs = len(DEFAULT_PROBS)
    q = np.broadcast_to(np.linspace(0.02, 0.5, probs, dtype=np.float32), (ids.size, probs))
    cdf = CdfTables(ids, np.asarray(DEFAULT_PROBS), q.copy(), q.copy(), np.full(ids.size, 500))
    clim = Climatology(ids, np.full((12, ids.size), 0.25, np.float32))
    hyper = science._models()["reference"][0]
    text = model or _reference_model()
    return ModelBundle(text, FeatureSpec(), hyper, 1, {}, {}, clim, cdf)


def _settings(data_dir: Path) -> Any:
    """The global reference model is not trained by ``smda train``, so it carries no gain of its
    own: the global store runs with the fixed :data:`GLOBAL_GAIN` (as ``SMDA_GAIN`` would)."""
    from smda.config import Settings

    gain = GLOBAL_GAIN if data_dir == GLOBAL_DIR else None
    return Settings(data_dir=data_dir, spinup_days=SPINUP_DAYS, log_level="WARNING", gain=gain)


def _dataset(fields: dict[str, tuple[np.ndarray, str]], attrs: dict[str, Any]) -> Any:
    """A staged-like (lat, lon) dataset on the global grid."""
    import xarray as xr

    from smda.geo.grid import GLOBAL_025

    coords = {"lat": GLOBAL_025.lats, "lon": GLOBAL_025.lons}
    data = {k: (("lat", "lon"), v, {"units": u}) for k, (v, u) in fields.items()}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _staged_days(a: dict[str, np.ndarray]) -> Iterator[tuple[str, date, Any]]:
    """(source, day, dataset) of every staged global day: ERA5 and SMAP of the spin-up,
    cold and steady days, MSWEP also over the 29 days before the first of them. The twin's
    one global day is shifted east a few cells per day (weather moves) and SMAP gets a new
    swath pattern each day."""
    days = _global_days()
    units = {"ssrd_sum": "J m-2", "wind_mean": "m s-1", "sp_mean": "Pa"}
    land = a["static_land"].astype(bool)
    precip = a["precip"]
    for i in range(-29, len(days)):
        day = days[0] + timedelta(days=i)
        rain = np.roll(precip[i % len(precip)], 3 * (i // len(precip)), axis=1)
        yield "mswep", day, _dataset({"precipitation": (rain, "mm day-1")}, {})
        if i < 0:
            continue
        era5 = {
            name[5:]: (np.roll(v, 4 * i, axis=1), units.get(name[5:], "K"))
            for name, v in a.items()
            if name.startswith("era5_")
        }
        era5["tp_sum"] = (np.roll(0.9 * precip[-1], 5 * i, axis=1).astype(np.float32), "mm")
        yield "era5", day, _dataset(era5, {"expver": "0001", "provisional": 0})
        rng = np.random.default_rng(day.toordinal())
        am = land & (rng.random(land.shape) < 0.2)
        pm = land & (rng.random(land.shape) < 0.2)
        count = am.astype(np.uint16) + pm.astype(np.uint16)
        sm = np.where(count > 0, 0.05 + 0.4 * rng.random(land.shape), np.nan).astype(np.float32)
        smap: dict[str, tuple[np.ndarray, str]] = {
            "soil_moisture": (sm, "m3 m-3"),
            "count": (count, "1"),
            "count_am": (am.astype(np.uint16), "1"),
            "count_pm": (pm.astype(np.uint16), "1"),
        }
        yield "smap", day, _dataset(smap, {})


def _stage_global(model: str | None = None) -> float:
    """Stage the global days and the static fields (once) and make the reference bundle — with
    ``model`` in place of its trees when given — the current one; returns the seconds it took
    (0 when already done)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import _raw_files

    from smda.ops import open_runtime
    from smda.storage.atomic import atomic_path
    from smda.storage.iolock import HDF5_IO

    t0 = time.perf_counter()
    marker = GLOBAL_DIR / "staged.json"
    wanted = {"version": STAGE_VERSION, "days": [d.isoformat() for d in _global_days()]}
    rt = open_runtime(_settings(GLOBAL_DIR), today=COLD_DAY + timedelta(days=90))
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        with np.load(science._global_inputs()) as npz:
            bundle = _reference_bundle(npz["static_land"].astype(bool), model)
        if rt.registry.current_version() == bundle.version:
            return 0.0
        rt.registry.register(bundle)
        return time.perf_counter() - t0
    with np.load(science._global_inputs()) as npz:
        a = {k: npz[k] for k in npz.files}
    static = _dataset({k[7:]: (v, "1") for k, v in a.items() if k.startswith("static_")}, {})
    static["orography"].attrs["units"] = "m"
    static.attrs.update(smda_source_file="era5_invariants_global.nc", smda_source_sha256="0" * 64)
    static_path = rt.store.static_path("era5_static")
    static_path.parent.mkdir(parents=True, exist_ok=True)
    with HDF5_IO, atomic_path(static_path) as tmp:
        static.to_netcdf(tmp)
    with contextlib.ExitStack() as batches:
        for source in ("era5", "mswep", "smap"):
            batches.enter_context(rt.store.ledger(source).batch())
        for source, day, data in _staged_days(a):
            files = _raw_files(rt.store, source, day, data, 0, None)
            rt.store.write_staged(source, day, data, files, request={"benchmark": "operations"})
    marker.write_text(json.dumps(wanted))
    rt.registry.register(_reference_bundle(a["static_land"].astype(bool), model))
    return time.perf_counter() - t0


def _warm_predictor(data_dir: Path, region: str | None) -> tuple[float, bool]:
    """Compile (or load) the current model's predictor: (seconds of the one-off compilation,
    whether it was compiled now). The compile time is kept beside the library."""
    from smda.ops import open_runtime
    from smda.storage.registry import COMPILED

    rt = open_runtime(_settings(data_dir), region=region, today=COLD_DAY)
    bundle = rt.registry.current()
    lib = rt.registry.root / COMPILED / f"{bundle.version}-q.so"
    record = lib.with_suffix(".seconds")
    compiled = not lib.exists()
    t0 = time.perf_counter()
    rt.registry.predictor(bundle)
    if compiled and lib.exists():
        record.write_text(f"{time.perf_counter() - t0:.1f}")
    if not lib.exists():
        raise RuntimeError(f"tl2cgen did not compile {lib}: the runs would predict natively")
    return float(record.read_text()) if record.exists() else float("nan"), compiled


# -- timing run_day's parts ---------------------------------------------------------------------
class _Parts:
    """Seconds per part of each day, from wrappers around what ``run_day`` calls.

    Every ``_run_day`` or ``_compute_day`` (what ``run_day`` and ``backfill_days`` call for
    each day) opens the day's bucket; a timed call adds to the bucket that was open when it
    started, except the publish of day D, which runs on the backfill's background thread,
    possibly after D+1 opened: it counts toward the day it publishes; and the inputs of D+1,
    read on the backfill's read-ahead thread while D steps (before D+1 opens): they count
    toward D+1 as ``inputs`` and as ``ahead``, the part of its parts spent before its own
    start (outside its ``total``, so ``other`` leaves it out). A call made inside
    another timed call of the same thread (``day_inputs`` of a cold start's spin-up inside
    ``state_before``) counts toward the outer one only. ``cpu`` is the process's CPU time from
    the day's start to its report (every thread: with the overlap it includes the next day's
    start).
    """

    def __init__(self) -> None:
        self._bucket: dict[str, float] = defaultdict(float)
        self._by_day: dict[date, tuple[dict[str, float], float]] = {}
        self._early: dict[date, dict[str, float]] = {}  # read ahead, before the day opened
        self._ahead: dict[date, float] = defaultdict(float)
        self._local = threading.local()

    def wrap(
        self, part: str, fn: Callable[..., Any], *, by_day: bool = False, ahead: bool = False
    ) -> Callable[..., Any]:
        """``fn`` timed as ``part`` of the open day (``by_day``: of the day that is its first
        argument, for calls that may run after the next day opened; ``ahead``: of the day that
        is its second argument, a read ahead made before that day opens)."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._local, "depth", 0)
            if depth:
                return fn(*args, **kwargs)
            own = self._by_day.get(args[0]) if by_day and args else None
            bucket = self._bucket if own is None else own[0]
            if ahead:
                bucket = self._early.setdefault(args[1], defaultdict(float))
            self._local.depth = depth + 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                bucket[part] += elapsed
                if ahead:
                    self._ahead[args[1]] += elapsed
                self._local.depth = depth

        return timed

    def new_day(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(rt, day, ...)`` opening ``day``'s bucket first (unless it is the open one)."""

        @functools.wraps(fn)
        def day(rt: Any, the_day: date, *args: Any, **kwargs: Any) -> Any:
            if self._by_day.get(the_day, (None,))[0] is not self._bucket:  # not open yet
                early = self._early.pop(the_day, None)  # empty while its read is in flight
                self._bucket = early if early is not None else defaultdict(float)
                self._by_day[the_day] = (self._bucket, time.process_time())
            return fn(rt, the_day, *args, **kwargs)

        return day

    def take(self, day: date, total: float) -> dict[str, float]:
        """``day``'s parts, ``other`` (the rest of ``total``), ``total``, ``cpu`` and
        ``ahead`` (its inputs read ahead, before ``total`` began)."""
        bucket, cpu0 = self._by_day[day]
        out = {p: bucket.get(p, 0.0) for p in PARTS}
        out["ahead"] = self._ahead.get(day, 0.0)
        out["other"] = total - sum(out[p] for p in PARTS) + out["ahead"]
        out["total"] = total
        out["cpu"] = time.process_time() - cpu0
        return out


MODULE_PARTS = {
    "input_versions": "provenance",
    "day_inputs": "inputs",
    "state_before": "state D-1",
    "step": "step",
    "analysis_sd": "write",
}
"""What :mod:`smda.ops.days` calls for a day, by the part it is timed as."""


def _instrument(rt: Any, patch: Callable[[Any, str, Any], None] = setattr) -> _Parts:
    """Wrap the functions and methods ``smda.ops.days.run_day`` calls with ``patch`` (by
    default for good: the benchmark child is a process of its own)."""
    from smda.ops import days as ops
    from smda.ops import readahead

    parts = _Parts()
    for name, part in MODULE_PARTS.items():
        patch(ops, name, parts.wrap(part, getattr(ops, name)))
    patch(readahead, "day_inputs", parts.wrap("inputs", readahead.day_inputs, ahead=True))
    methods = [
        (rt.registry, "current", "model", False),
        (rt.chain, "write", "write", False),
        (rt.chain, "read", "publish", True),  # the day's publish re-reads the state
        (rt.publisher, "publish", "publish", True),
    ]
    for obj, name, part, by_day in methods:
        patch(obj, name, parts.wrap(part, getattr(obj, name), by_day=by_day))
    for name in ("_run_day", "_compute_day"):  # run_day loads the model before computing
        patch(ops, name, parts.new_day(getattr(ops, name)))
    return parts


def _peak_rss_mb() -> float:
    return science._peak_rss_mb()


def _backfill_child(
    data_dir: str, region: str | None, cold: str, n_days: int, profile: str | None
) -> dict[str, Any]:
    """Child process: open the runtime, load the bundle and predictor, run the cold-start day
    with ``run_day``, then ``backfill_days`` over the next ``n_days`` days (profiled into
    ``profile`` when given); report every day's parts, the backfill's wall time and VmHWM."""
    from smda.geo.grid import BBox
    from smda.ops import DayRun, backfill_days, open_runtime, run_day

    t0 = time.perf_counter()
    rt = open_runtime(
        _settings(Path(data_dir)), region=BBox.parse(region) if region else None, today=date.max
    )
    bundle = rt.registry.current()
    t1 = time.perf_counter()
    rt.registry.predictor(bundle)
    t2 = time.perf_counter()
    parts = _instrument(rt)
    first = date.fromisoformat(cold)
    s0 = time.perf_counter()
    load = os.getloadavg()[0]
    cold_run = run_day(rt, first)
    days = [{"day": cold, "status": cold_run.status, **parts.take(first, time.perf_counter() - s0)}]

    def progress(run: DayRun) -> None:
        days.append(
            {"day": run.day.isoformat(), "status": run.status, **parts.take(run.day, run.seconds)}
        )

    profiler = cProfile.Profile() if profile is not None else None
    b0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    runs = backfill_days(
        rt, first + timedelta(days=1), first + timedelta(days=n_days), progress=progress
    )
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    wall = time.perf_counter() - b0
    assert all(r.status == "analysis" for r in runs), [r.status for r in runs]
    return {
        "bundle_s": t1 - t0,
        "predictor_s": t2 - t1,
        "days": days,
        "backfill_s": wall,
        "n_days": len(runs),
        "cells": int(np.asarray(rt.chain.read(runs[-1].day)["flags"].values).astype(bool).sum()),
        "peak_mb": _peak_rss_mb(),
        "load": [load, os.getloadavg()[0]],
    }


def _floor_child(data_dir: str, region: str | None, day: str) -> dict[str, float]:
    """Child process: the floor of a global day of this store, as ``python -m benchmarks
    scale`` defines it: reading the day's staged ERA5, SMAP and MSWEP window (warm page cache)
    and one traversal of the trees for every land cell (tl2cgen); the best of 3 each."""
    import xarray as xr

    from smda.ops import open_runtime
    from smda.science.cycle import climatology_state
    from smda.science.features import build_features
    from smda.storage.inputs import day_inputs

    the_day = date.fromisoformat(day)
    rt = open_runtime(_settings(Path(data_dir)), region=region, today=COLD_DAY)
    bundle = rt.registry.current()
    predict, history = rt.registry.predictor(bundle), bundle.spec.history_days
    paths = [rt.store.staged_path(source, the_day) for source in ("era5", "smap")]
    paths += [rt.store.staged_path("mswep", the_day - timedelta(days=i)) for i in range(history)]

    def read() -> None:
        for path in paths:
            with xr.open_dataset(path) as ds:
                ds.load()

    day_in = day_inputs(rt.store, the_day, history)
    state = climatology_state(bundle, day_in.static, the_day - timedelta(days=1))
    matrix = build_features(
        bundle.spec,
        the_day,
        era5=day_in.era5,
        precip=day_in.precip,
        static=day_in.static,
        state=state,
    )
    rows = np.ascontiguousarray(matrix.values)
    return {
        "read_s": science._best_of(read),
        "traverse_s": science._best_of(lambda: predict(rows)),
    }


def _child(data_dir: Path, region: str | None, cold: date, n: int, profile: Path | None) -> Any:
    """Run :func:`_backfill_child` in a fresh process on an empty chain and product tree."""
    for sub in ("state", "products"):
        shutil.rmtree(data_dir / sub, ignore_errors=True)
    args = f"{str(data_dir)!r}, {region!r}, {cold.isoformat()!r}, {n}, {profile and str(profile)!r}"
    return _in_child("_backfill_child", args)


def _in_child(func: str, args: str) -> Any:
    """``func(args)`` of this module in a fresh process; its JSON result."""
    code = (
        f"import json; from benchmarks.operations import {func}; print(json.dumps({func}({args})))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode:
        raise RuntimeError(f"benchmark child failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the demo region ----------------------------------------------------------------------------
def _demo_region() -> str:
    from smda_twin.world import DEMO_REGION

    b = DEMO_REGION
    return f"{b.west:g},{b.south:g},{b.east:g},{b.north:g}"


def _stage_demo() -> float:
    """Stage the demo region and train and register its tiny model (once); seconds taken."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import stage_world, tiny_world

    from smda.geo.grid import BBox
    from smda.ops import open_runtime, train_model
    from smda.science.bundle import HyperParams
    from smda.science.model import CVConfig, TrainConfig

    rt = open_runtime(_settings(DEMO_DIR), region=BBox.parse(_demo_region()), today=date.max)
    if rt.registry.current_version() is not None:
        return 0.0
    t0 = time.perf_counter()
    world = tiny_world(region=BBox.parse(_demo_region()))
    stage_world(rt.store, world, *DEMO_STAGED)
    hyper = HyperParams(
        learning_rate=0.1,
        num_leaves=15,
        min_data_in_leaf=20,
        max_rounds=100,
        early_stopping_rounds=10,
        num_threads=THREADS,
    )
    config = TrainConfig(hyper=hyper, cv=CVConfig(n_folds=4, block_deg=2.5), compare=())
    train_model(rt, *DEMO_TRAIN, config=config, min_n=20, cdf_min_samples=10)
    return time.perf_counter() - t0


# -- report -------------------------------------------------------------------------------------
def _profile_lines(path: Path, n: int = 22) -> list[str]:
    """The top functions of a cProfile dump by cumulative and by own time."""
    stats: Any = pstats.Stats(str(path))
    total = stats.total_tt
    rows = [
        (f"{Path(file).parent.name}/{Path(file).name}:{func}", nc, tt, ct)
        for (file, _line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items()
        if Path(file).resolve() != Path(__file__).resolve()  # the timing wrappers
    ]
    lines = [f"  {'cumulative s':>12} {'own s':>7} {'calls':>7}  function (total {total:.1f} s)"]
    for name, nc, tt, ct in sorted(rows, key=lambda r: -r[3])[:n]:
        lines.append(f"  {ct:12.2f} {tt:7.2f} {nc:7d}  {name}")
    lines.append(f"  {'own s':>12} {'':7} {'calls':>7}  by own time")
    for name, nc, tt, _ in sorted(rows, key=lambda r: -r[2])[:n]:
        lines.append(f"  {tt:12.2f} {'':7} {nc:7d}  {name}")
    return lines


def _print_days(run: dict[str, Any], every_day: bool) -> None:
    print(f"{'day':10} {'status':9}" + "".join(f" {c:>9}" for c in COLUMNS))
    for d in run["days"] if every_day else run["days"][:1]:
        print(f"{d['day']:10} {d['status'][:9]:9}" + "".join(f" {d[c]:9.2f}" for c in COLUMNS))
    steady = run["days"][1:]
    for label, stat in (("steady mean", np.mean), ("steady best", np.min)):
        row = "".join(f" {float(stat([d[c] for d in steady])):9.2f}" for c in COLUMNS)
        print(f"{label:20}{row}")


def _print_run(
    label: str, run: dict[str, Any], *, every_day: bool = True, floor: float | None = None
) -> None:
    per_day = run["backfill_s"] / run["n_days"]
    ratio = f" ({per_day / floor:.2f} × floor)" if floor else ""
    print(
        f"\n{label}: bundle load {run['bundle_s']:.2f} s, predictor load {run['predictor_s']:.2f}"
        f" s; backfill of {run['n_days']} steady days {run['backfill_s']:.1f} s = {per_day:.2f}"
        f" s/day{ratio} = {60 / per_day:.1f} days/min; peak RSS {run['peak_mb']:.0f} MB; load average"
        f" {run['load'][0]:.1f} → {run['load'][1]:.1f}"
    )
    _print_days(run, every_day)


USAGE = "usage: python -m benchmarks operations [--model=FILE]"


def _describe(model: str) -> str:
    """``500 trees × 63 leaves`` of a LightGBM model string."""
    import lightgbm as lgb

    dump = lgb.Booster(model_str=model).dump_model(num_iteration=1)
    return f"{model.count('Tree=')} trees × {dump['tree_info'][0]['num_leaves']} leaves"


def main(argv: list[str] | None = None) -> None:
    model_file = science.model_option(sys.argv[1:] if argv is None else argv, USAGE)
    model = model_file.read_text() if model_file is not None else None
    WORK.mkdir(parents=True, exist_ok=True)
    staged_s = _stage_global(model)
    compile_s, compiled = _warm_predictor(GLOBAL_DIR, None)
    runs = [_child(GLOBAL_DIR, None, COLD_DAY, N_DAYS, None) for _ in range(REPEATS)]
    steady = COLD_DAY + timedelta(days=N_DAYS // 2)
    floor = _in_child("_floor_child", f"{str(GLOBAL_DIR)!r}, None, {steady.isoformat()!r}")
    demo_staged_s = _stage_demo()
    demo = _demo_region()
    demo_compile_s, demo_compiled = _warm_predictor(DEMO_DIR, demo)
    demo_runs = [_child(DEMO_DIR, demo, DEMO_COLD, DEMO_DAYS, None) for _ in range(REPEATS)]
    profile = WORK / "global_days.prof"
    _child(GLOBAL_DIR, None, COLD_DAY, N_DAYS, profile)

    print(f"\noperations benchmarks ({os.cpu_count()} cores, {THREADS} threads)")
    print(
        f"global day (0.25°, 720 × 1440, {runs[0]['cells']} land cells), "
        + (f"model {model_file}" if model_file else "reference model")
        + f" ({_describe(model or _reference_model())}, tl2cgen); spin-up 1 day, the first day"
        " is a cold start"
    )
    print(
        f"one-off: staged {len(_global_days())} days (+29 of MSWEP) "
        + (f"in {staged_s:.0f} s" if staged_s else "(cached)")
        + f"; predictor compiled {'now' if compiled else 'once (cached)'} in {compile_s:.0f} s"
    )
    print(
        "targets: ≤ 5 s and ≤ 4096 MB per global day; backfill ≥ 10 global days/min; near the"
        " floor (issue 14): ≤ 1.0 s and ≤ 2048 MB a steady global day, ≥ 60 global days/min"
    )
    floor_s = floor["read_s"] + floor["traverse_s"]
    print(
        f"floor of a global day ({steady}): read its staged ERA5, SMAP and MSWEP window"
        f" {floor['read_s']:.3f} s (warm page cache) + one tl2cgen traversal"
        f" {floor['traverse_s']:.3f} s = {floor_s:.3f} s"
    )
    for i, run in enumerate(runs, 1):
        _print_run(f"global run {i}", run, floor=floor_s)
    print(
        f"\ndemo region {demo} ({demo_runs[0]['cells']} land cells), tiny model "
        + (f"(staged + trained in {demo_staged_s:.0f} s)" if demo_staged_s else "(cached)")
        + f"; predictor compiled {'now' if demo_compiled else 'once (cached)'} in"
        f" {demo_compile_s:.0f} s"
    )
    for i, run in enumerate(demo_runs, 1):
        _print_run(f"demo run {i}", run, every_day=False)
    print(f"\nprofile of the {N_DAYS} steady global days (cProfile: {profile})")
    print("\n".join(_profile_lines(profile)))


if __name__ == "__main__":
    main()
