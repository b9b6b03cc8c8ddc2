"""How cost grows with cells and days, beside the floor: ``python -m benchmarks scale [--quick]``.

Every measured point runs in a fresh child process; its peak memory is the child's VmHWM
(``/proc/self/status``: the resident high-water mark of that process alone, interpreter and
imports included — a child that only imports is measured as the baseline).

Parts (windows of the 0.25° grid around one centre, grown until they hold ~N twin land cells;
the largest is the whole *universe*: the globe, or a 10° × 10° box with ``--quick``):

- **staging**: the production ``stage`` path of one day of every source (read → decode →
  regrid onto the window → atomic write with provenance) from provider-format files the twin
  wrote (:mod:`benchmarks.stage_global`; with ``--quick`` regional ERA5 and ERA5-Land only).
  Days are independent files: the days axis is extrapolated linearly (stated in the output).
- **stepping**: :func:`smda.science.cycle.step` (features → compiled prediction → CDF match →
  nudging) of one day's staged-like inputs (:func:`benchmarks.science._day_inputs`), stepped
  ``d`` times from the evolving state after one untimed warm-up step.
- **training**: TC labels (:func:`smda.science.labels.merge_labels`, the production defaults,
  ``min_n`` = min(100, days / 2)), teacher-forced features and one LightGBM fit at the default
  hyper-parameters (early stopping on 20 % of the cells, no DAgger round) on the twin's
  products over ``d`` days; the twin's generation of them is not timed.
- **publishing**: :meth:`smda.storage.publish.Publisher.publish` (data COG, flags COG,
  quick-look, STAC item and collection) of ``d`` consecutive days after one untimed warm-up
  publish of the day before (the first publish of a process, which also loads GDAL's drivers
  and matplotlib's fonts, is printed beside it).

The day's model is the 500-tree reference model of :mod:`benchmarks.science` (``--quick``: the
quick run's fit) unless ``--model=FILE`` names a LightGBM model file, e.g. the final model of
``smda train``'s default protocol that ``python -m benchmarks train`` writes (the trees it
traverses, not their skill, set the cost of a day).

The **floor** of a universe day: reading the day's staged inputs (ERA5, SMAP, and MSWEP 30
times for its history window; warm page cache) and one traversal of the trees for every land
cell with the compiled (tl2cgen) predictor. Figures per day are printed as a ratio to the floor
scaled to their cells.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import science, stage_global
from benchmarks.scale_points import STAGE_DAY, WORK, _run

SOURCES = ("era5", "mswep", "smap", "era5land", "gldas")
PARTS = ("staging", "stepping", "training", "publishing")
BACKFILL_DAYS = 3653
TRAIN_DAYS = 1826
WORKERS = (1, 4, 16)


@dataclass(frozen=True)
class Config:
    """Sizes of one run: the universe (None: the globe), cell targets and days per part."""

    name: str
    universe: str | None
    cells: tuple[int, ...]
    step_days: tuple[int, ...]
    publish_days: tuple[int, ...]
    train_cells: tuple[int, ...]
    train_days: tuple[int, ...]
    train_fixed_days: int
    cycle_days: int
    """Consecutive days stepped and published as one process backfills them (the universe)."""
    cycle_repeats: int
    """Runs of each cycle mode; the best is reported."""

    @property
    def sources(self) -> tuple[str, ...]:
        return SOURCES if self.universe is None else ("era5", "era5land")


FULL = Config(
    "full",
    None,
    cells=(1_000, 10_000, 100_000, 0),  # 0: the whole universe
    step_days=(3, 30, 365),  # the first on every window: a global day is the mean of 3
    publish_days=(3, 10, 60),
    train_cells=(1_000, 4_000),
    train_days=(120, 365),  # a 30-day point costs ~2 min more (the fit is 1000 trees)
    train_fixed_days=120,
    cycle_days=10,
    cycle_repeats=2,
)
QUICK = Config(
    "quick",
    "0,42,6,48",
    cells=(100, 0),
    step_days=(1, 3),
    publish_days=(1, 2),
    train_cells=(100,),
    train_days=(10, 20),
    train_fixed_days=20,
    cycle_days=3,
    cycle_repeats=1,
)


# -- windows ------------------------------------------------------------------------------------
def _universe(config: Config) -> Any:
    from smda.geo.grid import GLOBAL_025, BBox

    return GLOBAL_025 if config.universe is None else GLOBAL_025.subset(BBox.parse(config.universe))


def _box(universe: Any, r0: int, r1: int, c0: int, c1: int) -> str:
    """The bbox text of rows r0:r1, columns c0:c1 of ``universe``."""
    b, res = universe.bounds, universe.res
    return (
        f"{b.west + c0 * res:g},{b.north - r1 * res:g},{b.west + c1 * res:g},{b.north - r0 * res:g}"
    )


def _windows(universe: Any, land: np.ndarray, targets: tuple[int, ...]) -> list[tuple[str, int]]:
    """(bbox, land cells) of the smallest square window around the centre (20° E, 15° N, or
    the universe's centre) holding ≥ each target of land cells; 0: the universe."""
    lat, lon = universe.lats, universe.lons
    rc = int(np.argmin(np.abs(lat - (15.0 if universe.is_global else lat.mean()))))
    cc = int(np.argmin(np.abs(lon - (20.0 if universe.is_global else lon.mean()))))
    out = []
    for target in targets:
        if target == 0 or target >= land.sum():
            out.append((_box(universe, 0, land.shape[0], 0, land.shape[1]), int(land.sum())))
            continue
        h = 1
        while True:
            r0, r1 = max(rc - h, 0), min(rc + h, land.shape[0])
            c0, c1 = max(cc - h, 0), min(cc + h, land.shape[1])
            n = int(land[r0:r1, c0:c1].sum())
            if n >= target:
                break
            h += max(1, h // 20)
        out.append((_box(universe, r0, r1, c0, c1), n))
    return out


# -- inputs -------------------------------------------------------------------------------------
def _provider_files(config: Config) -> dict[str, list[str]]:
    """Provider-format files of one day: the global ones of :mod:`benchmarks.stage_global`, or
    (quick) regional ERA5 and ERA5-Land files of the universe (cached)."""
    if config.universe is None:
        return stage_global._prepare()
    from smda.geo.grid import BBox
    from smda.storage.atomic import atomic_write_bytes
    from smda_twin.formats import era5 as era5_fmt
    from smda_twin.world import World, WorldSpec

    folder = WORK / f"files_{config.universe.replace(',', '_')}"
    index = folder / "files.json"
    if index.exists():
        return dict(json.loads(index.read_text()))
    b = _universe(config).bounds
    world = World(WorldSpec(region=BBox(-100, 35, -99, 36), epoch=STAGE_DAY - timedelta(days=2)))
    start = datetime(STAGE_DAY.year, STAGE_DAY.month, STAGE_DAY.day)
    times = np.array([np.datetime64(start + timedelta(hours=h), "s") for h in range(24)])
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for name, res, variables in (
        ("era5", 0.25, stage_global.FORCING),
        ("era5land", 0.1, ["swvl1"]),
    ):
        lat = np.round(np.arange(b.north, b.south - res / 2, -res), 2)
        lon = np.round(np.arange(b.west, b.east + res / 2, res), 2)
        path = folder / ("era5_region.zip" if name == "era5" else "era5land_region.nc")
        if name == "era5":
            fields = world.era5_hourly(STAGE_DAY, lat, lon, variables)
            write: Any = era5_fmt.write_era5_response
            extra: dict[str, Any] = {}
        else:
            fields = world.era5land_hourly(STAGE_DAY, lat, lon, variables)
            write, extra = era5_fmt.write_era5_netcdf, {"dataset": "reanalysis-era5-land"}
        write(
            path,
            fields=fields,
            valid_time=times,
            latitude=lat,
            longitude=lon,
            expver=["0005"] * 24,
            **extra,
        )
        files[name] = [str(path)]
    atomic_write_bytes(index, json.dumps(files).encode())
    return files


def _inputs(config: Config) -> Path:
    """The universe's staged-like day (npz), written once."""
    if config.universe is None:
        return science._global_inputs()
    return science._day_inputs(
        _universe(config), WORK / f"day_{config.universe.replace(',', '_')}.npz"
    )


def _bundle(model: str, config: Config, npz: Path, folder: Path) -> Path:
    """A bundle of ``model`` with CDF tables and a climatology for every land cell of the
    universe (as :func:`benchmarks.operations._reference_bundle` makes them)."""
    from smda.science.bundle import Climatology, HyperParams, ModelBundle
    from smda.science.features import FeatureSpec, global_cell_ids
    from smda.science.nudging import DEFAULT_PROBS, CdfTables
    from smda.storage.bundle_io import to_files

    g = _universe(config)
    with np.load(npz) as f:
        land = f["static_land"].astype(bool)
    lat2, lon2 = np.meshgrid(g.lats, g.lons, indexing="ij")
    ids = np.sort(global_cell_ids(lat2[land], lon2[land]))
    probs = len(DEFAULT_PROBS)
    q = np.broadcast_to(np.linspace(0.02, 0.5, probs, dtype=np.float32), (ids.size, probs))
    cdf = CdfTables(ids, np.asarray(DEFAULT_PROBS), q.copy(), q.copy(), np.full(ids.size, 500))
    clim = Climatology(ids, np.full((12, ids.size), 0.25, np.float32))
    hyper = HyperParams(num_threads=science.THREADS)
    return to_files(ModelBundle(model, FeatureSpec(), hyper, 1, {}, {}, clim, cdf), folder)


# -- measuring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One measured point: ``seconds`` for ``days`` days of ``cells`` land cells."""

    part: str
    cells: int
    days: int
    seconds: float
    peak_mb: float
    extra: dict[str, Any]

    @property
    def per_day(self) -> float:
        return self.seconds / self.days


def _say(text: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _train_points(config: Config, windows: list[tuple[str, int]]) -> list[Point]:
    """Training over the cells axis (fixed days) and the days axis (smallest window); the first
    fit's model is kept (the quick run steps with it)."""
    runs = [(box, config.train_fixed_days) for box, _ in windows]
    runs += [(windows[0][0], d) for d in config.train_days if d != config.train_fixed_days]
    points = []
    for i, (box, days) in enumerate(runs):
        _say(f"training {box} over {days} days")
        model = str(WORK / f"model_{config.name}.txt") if i == 0 else None
        r = _run("_child_train", box, days, model)
        points.append(Point("training", r["cells"], days, r["seconds"], r["peak_mb"], r))
    return points


def _axis(part: str, config: Config, windows: list[tuple[str, int]], days: tuple[int, ...]) -> Any:
    """(window, cells, days) of ``part``: every window for the first days, then the smallest
    window for the other days."""
    runs = [(box, n, days[0]) for box, n in windows]
    return runs + [(windows[0][0], windows[0][1], d) for d in days[1:]]


def measure(config: Config, model_file: Path | None = None) -> dict[str, Any]:
    """Every point of ``config``, the floor and the baseline child (stepping with the model in
    ``model_file`` when given)."""
    from benchmarks import operations

    WORK.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    universe = _universe(config)
    npz = _inputs(config)
    files = {k: v for k, v in _provider_files(config).items() if k in config.sources}
    with np.load(npz) as f:
        land = f["static_land"].astype(bool)
    windows = _windows(universe, land, config.cells)
    points = _train_points(config, _windows(universe, land, config.train_cells))
    if model_file is not None:
        model, origin = model_file.read_text(), str(model_file)
    elif config.universe is None:
        model, origin = operations._reference_model(), "the reference model"
    else:
        model, origin = (WORK / f"model_{config.name}.txt").read_text(), "the quick run's fit"
    bundle = _bundle(model, config, npz, WORK / f"bundle_{config.name}")
    idle = _run("_child_idle")
    with tempfile.TemporaryDirectory(dir=WORK) as out:
        staged: dict[str, str] = {}
        for i, (box, n) in enumerate(windows):
            _say(f"staging {len(files)} sources onto {box} ({n} land cells)")
            r = _run("_child_stage", files, box, f"{out}/{i}")
            points.append(Point("staging", n, 1, r["seconds"], r["peak_mb"], r))
            staged = r["staged"]
        box, n = windows[-1]
        _say(f"staging {len(files)} sources onto {box}, one source after the other")
        serial_stage = _run("_child_stage", files, box, f"{out}/serial", 1)
        _say("the floor: reading the staged day, one traversal of the trees")
        floor = _run("_child_floor", str(npz), config.universe, str(bundle), staged)
    for box, n, days in _axis("stepping", config, windows, config.step_days):
        _say(f"stepping {box} ({n} land cells) {days} days")
        r = _run("_child_step", str(npz), config.universe, box, str(bundle), days)
        points.append(Point("stepping", n, days, r["seconds"], r["peak_mb"], r))
    for box, n, days in _axis("publishing", config, windows, config.publish_days):
        _say(f"publishing {box} ({n} land cells) {days} days")
        r = _run("_child_publish", str(npz), config.universe, box, days)
        points.append(Point("publishing", n, days, r["seconds"], r["peak_mb"], r))
    box, n = windows[-1]
    cycles = {}
    for mode in ("serial", "overlapped"):
        _say(f"step + publish {box} ({n} land cells) {config.cycle_days} days, {mode}")
        runs = [
            _run(
                "_child_cycle",
                str(npz),
                config.universe,
                box,
                str(bundle),
                config.cycle_days,
                mode == "overlapped",
            )
            for _ in range(config.cycle_repeats)
        ]
        cycles[mode] = min(runs, key=lambda r: r["seconds"])
    return {
        "cycles": cycles,
        "serial_stage": serial_stage,
        "config": config,
        "model": origin,
        "cells": int(land.sum()),
        "points": points,
        "floor": floor,
        "idle_mb": idle["peak_mb"],
        "wall_s": time.perf_counter() - t_start,
    }


# -- fits and report ----------------------------------------------------------------------------
def _line(x: list[float], y: list[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (x, y) (one point: through 0)."""
    if len(set(x)) < 2:
        return 0.0, y[0] / x[0]
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(intercept), float(slope)


def _fits(points: list[Point], cells: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Per part: seconds per day and peak MB against cells (at the first days; training:
    against rows), and seconds against days (at the smallest window)."""
    out = {}
    for part in PARTS:
        pts = [p for p in points if p.part == part]
        if part == "training":
            x = [float(p.extra["rows"]) for p in pts]
            out[part] = {
                "s": _line(x, [p.seconds for p in pts]),
                "mb": _line(x, [p.peak_mb for p in pts]),
            }
            continue
        first = [p for p in pts if p.days == pts[0].days]
        x = [float(p.cells) for p in first]
        small = [p for p in pts if p.cells == pts[0].cells]
        out[part] = {
            "s": _line(x, [p.per_day for p in first]),
            "mb": _line(x, [p.peak_mb for p in first]),
            "days": _line([float(p.days) for p in small], [p.seconds for p in small]),
        }
    return out


def _floor_day(floor: dict[str, Any]) -> tuple[float, float]:
    """(seconds to read the day's staged inputs, seconds of one tree traversal)."""
    reads = floor["reads"]
    read = sum(v * (30 if k == "mswep" else 1) for k, v in reads.items())
    return read, float(floor["traverse_s"])


def _verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def report(m: dict[str, Any]) -> list[str]:
    """The printed report of a :func:`measure` result."""
    config: Config = m["config"]
    cells, points, floor = m["cells"], m["points"], m["floor"]
    where = "global" if config.universe is None else f"universe {config.universe}"
    read, traverse = _floor_day(floor)
    per_cell_floor = (read + traverse) / cells
    lines = [
        f"\nscale benchmark ({config.name}; {os.cpu_count()} cores, {science.THREADS} threads;"
        f" {where}: {cells} land cells; {m['wall_s']:.0f} s)",
        f"model stepped: {m['model']} ({floor['trees']} trees)",
        "peak MB: VmHWM of a fresh child per point (interpreter + imports included; a child"
        f" that only imports: {m['idle_mb']:.0f} MB)",
        f"floor of a {where} day: read staged inputs {read:.3f} s ("
        + ", ".join(
            f"{k} {v:.3f} s" + (" × 30" if k == "mswep" else "") for k, v in floor["reads"].items()
        )
        + f"; warm page cache) + tree traversal {traverse:.3f} s (tl2cgen, {floor['trees']}"
        f" trees, {floor['rows']} rows; native LightGBM {floor['native_s']:.3f} s)"
        f" = {read + traverse:.3f} s; ×floor below = s/day ÷ (floor × cells / {cells})",
        f"{'part':11} {'cells':>7} {'days':>5} {'seconds':>9} {'s/day':>8} {'peak MB':>8}"
        f" {'×floor':>7}  notes",
    ]
    for p in points:
        if p.part == "training":
            ratio = "—"
            note = (
                f"{p.extra['rows']} rows, {p.extra['trees']} trees: labels"
                f" {p.extra['labels_s']:.2f} s, features {p.extra['features_s']:.2f} s, fit"
                f" {p.extra['fit_s']:.2f} s (twin {p.extra['twin_s']:.0f} s, untimed)"
            )
        else:
            ratio = f"{p.per_day / (per_cell_floor * p.cells):7.1f}"
            done = p.extra.get("sources", {})
            note = ("done at " if done else "") + ", ".join(f"{k} {v:.2f}" for k, v in done.items())
            if "first_s" in p.extra:
                note = f"first publish of the process {p.extra['first_s']:.2f} s (untimed)"
        lines.append(
            f"{p.part:11} {p.cells:7d} {p.days:5d} {p.seconds:9.4g} {p.per_day:8.4g}"
            f" {p.peak_mb:8.0f} {ratio:>7}  {note}"
        )
    fits = _fits(points, cells)
    lines.append("fitted lines (least squares over the points above)")
    for part, f in fits.items():
        a, b = f["s"]
        m0, m1 = f["mb"]
        if part == "training":
            lines.append(
                f"  {part:11} s = {a:.2f} + {b * 1e6:.2f} per M rows; peak MB ="
                f" {m0:.0f} + {m1 * 1e6:.0f} per M rows"
            )
            continue
        da, db = f["days"]
        lines.append(
            f"  {part:11} s/day = {a:.3f} + {b * 1e5:.3f} per 100 k cells; peak MB ="
            f" {m0:.0f} + {m1 * 1e5:.0f} per 100 k cells; over days: s = {da:.2f}"
            f" + {db:.3f} × days"
        )
    lines.append(
        "  staging: every day is its own files, so days scale linearly (extrapolated,"
        " not measured: 365 days = 365 × s/day)"
    )
    lines += _targets(config, points, cells, read + traverse, m["cycles"])
    one = m["serial_stage"]
    lines.append(
        f"  the same staging one source after the other (sources_at_once=1): {one['seconds']:.2f} s,"
        f" peak {one['peak_mb']:.0f} MB"
    )
    lines += _projection(config, points, fits, cells)
    return lines


def _at(points: list[Point], part: str, cells: int) -> Point:
    return next(
        p
        for p in points
        if p.part == part
        and p.cells == cells
        and p.days == min(q.days for q in points if q.part == part and q.cells == cells)
    )


def _targets(
    config: Config, points: list[Point], cells: int, floor: float, cycles: dict[str, Any]
) -> list[str]:
    from smda.ingest.fetch import SOURCES_AT_ONCE

    stage, stepp, pub = (_at(points, part, cells) for part in ("staging", "stepping", "publishing"))
    day = stepp.per_day + pub.per_day
    serial, overlapped = (
        cycles[k]["seconds"] / config.cycle_days for k in ("serial", "overlapped")
    )
    runs = f"best of {config.cycle_repeats}, " if config.cycle_repeats > 1 else ""
    peak = max(stepp.peak_mb, pub.peak_mb)
    note = "" if config.universe is None else " (quick: the universe, not a global day)"
    return [
        f"targets (issue 14 point 4){note}",
        f"  staged day → COG + STAC (steady, the mean of {stepp.days} stepped and {pub.days}"
        f" published days): step {stepp.per_day:.2f} s + publish {pub.per_day:.2f} s ="
        f" {day:.2f} s (≤ 1.0 s: {_verdict(day <= 1.0)}; {day / floor:.1f} × floor {floor:.2f} s);"
        f" peak {peak:.0f} MB (≤ 2048: {_verdict(peak <= 2048)}); staged-input reading, the"
        " state write and provenance are not in it (python -m benchmarks operations has them)",
        f"  days per minute, {config.cycle_days} consecutive days stepped and published in one"
        f" process ({runs}as backfill_days): publish overlapped with the next step"
        f" {60 / overlapped:.1f} (≥ 60: {_verdict(60 / overlapped >= 60)}); one after the other"
        f" {60 / serial:.1f} ({serial:.2f} → {overlapped:.2f} s/day, peak"
        f" {cycles['overlapped']['peak_mb']:.0f} MB); from the parts above {60 / day:.1f}",
        f"  one day of all sources staged (fetch_range, {SOURCES_AT_ONCE} sources at once):"
        f" {stage.seconds:.2f} s, peak {stage.peak_mb:.0f} MB"
        f" (≤ 8 s: {_verdict(stage.seconds <= 8)}; {stage.seconds / floor:.1f} × floor)",
    ]


def _per_m_rows(per_row: float) -> str:
    """``per_row`` seconds as seconds per million rows."""
    return f"{per_row * 1e6:.2f} s per M rows"


def _projection(config: Config, points: list[Point], fits: dict[str, Any], cells: int) -> list[str]:
    stage, stepp, pub = (_at(points, part, cells) for part in ("staging", "stepping", "publishing"))
    a_step, b_step = fits["stepping"]["s"]
    m0, m1 = fits["stepping"]["mb"]
    startup = float(stepp.extra["load_s"])
    train = [p for p in points if p.part == "training"]
    rows_per_cell_day = max(p.extra["rows"] / (p.cells * p.days) for p in train)
    rows = cells * TRAIN_DAYS * rows_per_cell_day
    ta, tb = fits["training"]["s"]
    ma, mb = fits["training"]["mb"]
    largest = max(train, key=lambda p: p.extra["rows"])
    how = f"fitted: s = {ta:.1f} + {tb * 1e6:.2f} per M rows"
    if tb <= 0:  # the smaller fits were slower (load, or an unexplained per-fit cost)
        ta, tb = 0.0, largest.seconds / largest.extra["rows"]
        how += f" ≤ 0 per row (smaller fits were slower); used instead: proportional to the largest fit, {_per_m_rows(tb)}"
    lines = [
        f"projection ({cells} land cells; N workers, each like this machine: 2 cores)",
        "  assumptions: cost linear in cells and days along the fitted lines (negative intercepts"
        " taken as 0); staging and publishing split over days (days are independent), stepping"
        " over cell tiles (each day needs the day before, so the per-day intercept of stepping"
        " does not shrink with N); one start-up per worker (bundle + compiled predictor load,"
        f" {startup:.1f} s); inputs read from a shared store at this machine's rate, no"
        " contention; tile transfer and assembly not counted",
        f"  10-year backfill ({BACKFILL_DAYS} days): per day stage {stage.per_day:.2f} s +"
        f" step {a_step:.2f} + {b_step * cells:.2f} s/N + publish {pub.per_day:.2f} s",
    ]
    for n in WORKERS:
        per_day = (stage.per_day + pub.per_day + b_step * cells) / n + max(a_step, 0.0)
        hours = (BACKFILL_DAYS * per_day + startup) / 3600
        mem = max(stage.peak_mb, pub.peak_mb, max(m0, 0.0) + m1 * cells / n)
        lines.append(f"    N = {n:2d}: {hours:9.3g} h, ≤ {mem:.0f} MB per worker")
    lines += [
        f"  5-year training ({TRAIN_DAYS} days × {cells} cells × {rows_per_cell_day:.2f} rows per"
        f" cell-day = {rows / 1e6:.0f} M rows): labels + features + one fit ({how}),"
        f" from {largest.extra['rows']} rows at most ({largest.extra['trees']} trees)"
        " (an extrapolation over orders of magnitude); data-parallel LightGBM (lightgbm.dask)"
        " with rows split evenly, the same number of trees, no communication cost; the CV folds,"
        " DAgger rounds and comparison schemes of `smda train` multiply it",
    ]
    for n in WORKERS:
        hours = (max(ta, 0.0) + tb * rows / n) / 3600
        mem = max(ma, 0.0) + mb * rows / n
        lines.append(f"    N = {n:2d}: {hours:9.3g} h, {mem / 1024:7.1f} GB per worker")
    return lines


USAGE = "usage: python -m benchmarks scale [--quick] [--model=FILE]"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    model = science.model_option(args, USAGE, flags=("--quick",))
    config = QUICK if "--quick" in args else FULL
    print("\n".join(report(measure(config, model))))


if __name__ == "__main__":
    main()
