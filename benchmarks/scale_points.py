"""The child processes of :mod:`benchmarks.scale`: each measures one point in a fresh process
and returns its figures with its peak memory (VmHWM, interpreter and imports included)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import science, stage_global

WORK = science.CACHE / "scale"
DAY = science.DAY
"""The day of the staged-like inputs stepped and published."""
STAGE_DAY = stage_global.DAY
TRAIN_START = date(2015, 5, 1)
"""First day of the twin's training periods (SMAP sees the soil: no frozen spring)."""


def _window_day(npz: str, universe: str | None, window: str) -> tuple[Any, Any, np.ndarray]:
    """(state of D−1, :class:`smda.science.cycle.DayInputs`, land) of ``window`` cut from the
    universe's npz."""
    import pandas as pd
    import xarray as xr

    from smda.geo.grid import GLOBAL_025, BBox
    from smda.science.cycle import DayInputs

    uni = GLOBAL_025 if universe is None else GLOBAL_025.subset(BBox.parse(universe))
    win = GLOBAL_025.subset(BBox.parse(window))
    rows, cols = uni.index_of(win)
    with np.load(npz) as f:
        a = {k: np.ascontiguousarray(f[k][..., rows, cols]) for k in f.files}
    coords = {"lat": win.lats, "lon": win.lons}
    field = ("lat", "lon")
    static = xr.Dataset(
        {k[7:]: (field, v) for k, v in a.items() if k.startswith("static_")}, coords=coords
    )
    era5 = xr.Dataset({k[5:]: (field, v) for k, v in a.items() if k.startswith("era5_")}, coords)
    times = pd.date_range(DAY - timedelta(days=29), DAY, name="time")
    precip = xr.DataArray(a["precip"], dims=("time", *field), coords={"time": times, **coords})
    count = np.isfinite(a["smap"]).astype(np.uint16)
    smap = xr.Dataset({"soil_moisture": (field, a["smap"]), "count": (field, count)}, coords=coords)
    state = xr.DataArray(a["state"], dims=field, coords=coords)
    return state, DayInputs(DAY, era5, precip, static, smap), a["static_land"].astype(bool)


# -- the children -------------------------------------------------------------------------------
def _peak_mb() -> float:
    return science._peak_rss_mb()


def _child_idle() -> dict[str, float]:
    """Baseline: the interpreter with what the children import."""
    import lightgbm  # noqa: F401
    import xarray  # noqa: F401

    import smda.science.cycle
    import smda.storage.publish  # noqa: F401

    return {"peak_mb": _peak_mb()}


def _on_disk(real: Any, day: date, raw: list[Any]) -> Any:
    """``real`` as a provider that has already delivered ``raw`` for ``day``: polling and
    fetching cost nothing, staging is the real source's."""
    from smda.ingest.sources.base import Source

    class OnDisk(Source):
        name = real.name
        provider = "local"
        description = f"{real.name}: provider files on disk"
        remote = False

        def newest_available(self, ctx: Any) -> date:
            return day

        def fetch(self, task: Any, ctx: Any) -> dict[date, list[Any]]:
            return {day: raw}

        def stage(self, d: date, files: list[Any], ctx: Any) -> Any:
            return real.stage(d, files, ctx)

    return OnDisk()


def _child_stage(
    files: dict[str, list[str]], window: str, out: str, at_once: int | None = None
) -> dict[str, Any]:
    """Stage one day of every source in ``files`` onto ``window`` under ``out`` with the
    production ingest (:func:`smda.ingest.fetch.fetch_range`: ``at_once`` sources concurrently,
    default its own; atomic writes, the ledger), the provider's files being already on disk."""
    from smda.geo.grid import GLOBAL_025, BBox
    from smda.ingest.fetch import SOURCES_AT_ONCE, fetch_range
    from smda.ingest.sources import get_source
    from smda.ingest.sources.base import IngestContext
    from smda.storage.store import RawFile, Store, sha256_file

    grid = GLOBAL_025.subset(BBox.parse(window))
    ctx = IngestContext(
        store=Store(Path(out), grid), endpoints=None, today=STAGE_DAY + timedelta(5)
    )
    sources = []
    for name, paths in files.items():
        raw = [
            RawFile(Path(p), Path(p).name, Path(p).stat().st_size, sha256_file(Path(p)))
            for p in paths
        ]
        sources.append(_on_disk(get_source(name), STAGE_DAY, raw))
    done: dict[str, float] = {}
    t0 = time.perf_counter()
    report = fetch_range(
        sources,
        STAGE_DAY,
        STAGE_DAY,
        ctx,
        progress=lambda o: done.__setitem__(o.source, time.perf_counter() - t0),
        sources_at_once=at_once or SOURCES_AT_ONCE,
    )
    seconds = time.perf_counter() - t0
    if not report.ok or len(report.by_status("fetched")) != len(files):
        raise RuntimeError(f"staging failed: {report.outcomes}")
    staged = {n: str(ctx.store.staged_path(n, STAGE_DAY)) for n in files}
    return {"seconds": seconds, "sources": done, "staged": staged, "peak_mb": _peak_mb()}


def _child_step(npz: str, universe: str | None, window: str, bundle_dir: str, days: int) -> Any:
    """Step ``window`` ``days`` times after a warm-up step (compiled prediction)."""
    from smda.science.cycle import step
    from smda.storage.bundle_io import compiled_predictor, from_files

    t0 = time.perf_counter()
    state, inputs, _ = _window_day(npz, universe, window)
    bundle = from_files(bundle_dir)
    predict = compiled_predictor(bundle, WORK / "compiled")
    state = step(state, inputs, bundle, gain=0.3, predict=predict).analysis
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(days):
        state = step(state, inputs, bundle, gain=0.3, predict=predict).analysis
    seconds = time.perf_counter() - t0
    if not np.isfinite(state.values).any():
        raise RuntimeError(f"stepping {window} gave no finite analysis")
    return {"seconds": seconds, "load_s": load, "peak_mb": _peak_mb()}


def _products(state: Any, inputs: Any, land: np.ndarray) -> Any:
    """A state file's dataset (analysis, uncertainty, obs_count, flags) of ``state``."""
    import xarray as xr

    seen = np.isfinite(inputs.smap["soil_moisture"].values) & land
    field = ("lat", "lon")
    data = {
        "analysis": (field, state.values),
        "uncertainty": (field, np.where(land, 0.04, np.nan).astype(np.float32)),
        "obs_count": (field, seen.astype(np.uint16)),
        "flags": (field, (land.astype(np.uint8) | np.where(seen, 8, 0)).astype(np.uint8)),
    }
    return xr.Dataset(data, coords=state.coords)


def _child_publish(npz: str, universe: str | None, window: str, days: int) -> Any:
    """Publish ``days`` consecutive days of ``window`` into a product tree after one untimed
    warm-up publish of the day before (as the stepping child warms up: the first publish of a
    process also loads GDAL's drivers and matplotlib's fonts; its time is ``first_s``)."""
    from smda.storage.publish import Publisher

    state, inputs, land = _window_day(npz, universe, window)
    ds = _products(state, inputs, land)
    with tempfile.TemporaryDirectory() as root:
        publisher = Publisher(root)
        t0 = time.perf_counter()
        warm = DAY - timedelta(days=1)
        publisher.publish(warm, ds.assign_attrs(smda_day=warm.isoformat()), {"benchmark": 1})
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(days):
            day = DAY + timedelta(days=i)
            publisher.publish(day, ds.assign_attrs(smda_day=day.isoformat()), {"benchmark": 1})
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "first_s": first, "peak_mb": _peak_mb()}


def _child_cycle(
    npz: str, universe: str | None, window: str, bundle_dir: str, days: int, overlap: bool
) -> Any:
    """Step and publish ``days`` consecutive days of ``window`` as a one-process backfill does
    (after a warm-up step): each publish in turn, or (``overlap``) on the backfill's
    :class:`smda.ops.overlap.PublishAhead` while the next day steps."""
    from smda.ops.overlap import PublishAhead
    from smda.science.cycle import step
    from smda.storage.bundle_io import compiled_predictor, from_files
    from smda.storage.publish import Publisher

    state, inputs, land = _window_day(npz, universe, window)
    bundle = from_files(bundle_dir)
    predict = compiled_predictor(bundle, WORK / "compiled")
    state = step(state, inputs, bundle, gain=0.3, predict=predict).analysis
    with tempfile.TemporaryDirectory() as root, PublishAhead[Any](lambda _: None) as ahead:
        publisher = Publisher(root)
        t0 = time.perf_counter()
        for i in range(days):
            day = DAY + timedelta(days=i)
            state = step(state, inputs, bundle, gain=0.3, predict=predict).analysis
            ds = _products(state, inputs, land).assign_attrs(smda_day=day.isoformat())
            if overlap:
                ahead.submit(functools.partial(publisher.publish, day, ds, {"benchmark": 1}))
            else:
                publisher.publish(day, ds, {"benchmark": 1})
        ahead.drain()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def _child_train(window: str, days: int, model_out: str | None) -> dict[str, Any]:
    """TC labels, features and one default LightGBM fit over ``days`` days of the twin."""
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import twin_inputs

    from smda.geo.grid import BBox
    from smda.ops.train_data import MERGE_DEFAULTS
    from smda.science.bundle import HyperParams
    from smda.science.features import FeatureSpec, antecedent_precipitation, build_features, lagged
    from smda.science.labels import merge_labels
    from smda.science.model import fit_booster
    from smda_twin.world import World, WorldSpec

    spec = FeatureSpec()
    world = World(WorldSpec(region=BBox.parse(window), epoch=TRAIN_START - timedelta(days=40)))
    start, end = TRAIN_START, TRAIN_START + timedelta(days=days)
    g0 = time.perf_counter()
    era5, precip, static = twin_inputs(world, start, end)
    products = [world.product_daily(n, start, end) for n in ("smap", "era5land", "gldas")]
    api = antecedent_precipitation(precip, spec.api_decay).sel(time=products[0]["time"])
    generated = time.perf_counter() - g0
    t0 = time.perf_counter()
    merged = merge_labels(
        products,
        names=["smap", "era5land", "gldas"],
        reference="smap",
        min_n=min(100, max(days // 2, 5)),
        instrument=api,
        **MERGE_DEFAULTS,
    )
    t1 = time.perf_counter()
    target = pd.date_range(start + timedelta(days=1), end, name="time")
    label = merged.label
    fm = build_features(
        spec, target, era5=era5, precip=precip, static=static, state=lagged(label, target)
    )
    y = label.sel(time=target).values.reshape(len(target), -1)[:, fm.cells].astype(np.float32)
    t2 = time.perf_counter()
    stop = np.random.default_rng(0).random(fm.n_cells) < 0.2
    hyper = HyperParams(num_threads=science.THREADS)
    booster = fit_booster(
        (fm.select(~stop), y[:, ~stop]), (fm.select(stop), y[:, stop]), hyper, dagger_rounds=0
    )
    t3 = time.perf_counter()
    if model_out:
        from smda.storage.atomic import atomic_write_bytes

        atomic_write_bytes(model_out, str(booster.model_to_string()).encode())
    return {
        "seconds": t3 - t0,
        "labels_s": t1 - t0,
        "features_s": t2 - t1,
        "fit_s": t3 - t2,
        "twin_s": generated,
        "cells": int(fm.n_cells),
        "rows": int(np.isfinite(y[:, ~stop]).sum()),
        "trees": int(booster.num_trees()),
        "peak_mb": _peak_mb(),
    }


def _child_floor(npz: str, universe: str | None, bundle_dir: str, staged: dict[str, str]) -> Any:
    """Read the day's staged inputs; traverse the trees once for every land cell."""
    import xarray as xr

    from smda.science.features import build_features
    from smda.storage.bundle_io import compiled_predictor, from_files

    def best(fn: Any) -> float:
        return science._best_of(fn, 3)

    reads = {}
    for name in ("era5", "smap", "mswep"):
        if name in staged:

            def read(p: str = staged[name]) -> None:
                with xr.open_dataset(p) as ds:
                    ds.load()

            reads[name] = best(read)
    state, day, _ = _window_day(npz, universe, _box_of(universe))
    bundle = from_files(bundle_dir)
    predict = compiled_predictor(bundle, WORK / "compiled")
    matrix = build_features(
        bundle.spec, day.day, era5=day.era5, precip=day.precip, static=day.static, state=state
    )
    rows = np.ascontiguousarray(matrix.values)
    traverse = best(lambda: predict(rows))
    native = best(lambda: bundle.booster.predict(rows, num_threads=science.THREADS))
    return {
        "reads": reads,
        "traverse_s": traverse,
        "native_s": native,
        "rows": len(rows),
        "trees": int(bundle.booster.num_trees()),
    }


def _box_of(universe: str | None) -> str:
    return universe or "-180,-90,180,90"


def _run(func: str, *args: Any) -> dict[str, Any]:
    """Run ``func(*args)`` of this module in a fresh process; its JSON result."""
    code = (
        "import json, sys; from benchmarks import scale_points; "
        f"print(json.dumps(scale_points.{func}(*json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(science.THREADS)}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"scale child {func}{args} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))
