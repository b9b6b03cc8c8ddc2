"""Science benchmarks: training, global-day prediction and the global-day cycle step.

1. **Training** on the twin's demo region (10° × 10°, 1600 land cells, 2015-02…07) with
   ERA5-Land-like labels: rows × features × trees and seconds (one DAgger round, so the rows
   are the teacher-forced rows plus as many rollout rows). Two configurations:
   ``reference`` (learning rate 0.05, 63 leaves, 500 trees: the issue's reference model) and
   ``lean`` (learning rate 0.1, 31 leaves, early stopping). Both are scored on held-out
   2.5° tiles (teacher-forced and free-running, median over cells against the label).
2. **Prediction** for a global day: building the features of every twin land cell of the
   0.25° grid (~359 k, Antarctica and Greenland included), then predicting 250 000 of those
   rows (the size of the real product's land) natively on 2 threads for both models, side by
   side with compiled inference (``tl2cgen``) when it is installed.
3. **The cycle step** for a global day (features → predict → CDF match → nudge), in a fresh
   process that loads the staged-like inputs and the bundle from disk, with native and
   compiled (:func:`smda.storage.bundle_io.compiled_predictor`) prediction, and its peak resident
   memory (VmHWM).

Inputs are written once under ``$SMDA_BENCH_DIR/science`` (default: the system temp dir).
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

import numpy as np

DAY = date(2016, 7, 1)
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
WORK = CACHE / "science"
THREADS = 2
PREDICT_ROWS = 250_000
ERA5_VARS = ("t2m_mean", "t2m_min", "t2m_max", "d2m_mean", "ssrd_sum", "wind_mean", "sp_mean")


def _models() -> dict[str, tuple[Any, int | None]]:
    from smda.science.bundle import HyperParams

    return {
        "reference": (HyperParams(learning_rate=0.05, num_leaves=63, num_threads=THREADS), 500),
        "lean": (
            HyperParams(learning_rate=0.1, num_leaves=31, max_rounds=300, num_threads=THREADS),
            None,
        ),
    }


def _training_data() -> tuple[Any, np.ndarray]:
    """Teacher-forced features and labels on the demo region (see the module docstring)."""
    import pandas as pd

    from smda.science.features import FeatureSpec, build_features, lagged
    from smda_twin.world import DEMO_REGION, World, WorldSpec

    world = World(WorldSpec(region=DEMO_REGION, epoch=date(2015, 1, 1)))
    start, end = date(2015, 2, 1), date(2015, 7, 31)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import twin_inputs

    era5, precip, static = twin_inputs(world, start, end)  # the served products, as staged
    days = pd.date_range(start, end, name="time")
    label = world.product_daily("era5land", start - timedelta(days=1), end)
    fm = build_features(
        FeatureSpec(), days, era5=era5, precip=precip, static=static, state=lagged(label, days)
    )
    return fm, label.sel(time=days).values.reshape(len(days), -1)[:, fm.cells]


def _train() -> dict[str, dict[str, Any]]:
    """Fit both models on 3/5 of the 2.5° tiles, stop early on 1/5, score the last 1/5."""
    from smda.science.model import CVConfig, assign_folds, fit_booster, rollout

    fm, y = _training_data()
    folds = assign_folds(fm.lat, fm.lon, CVConfig(n_folds=5, block_deg=2.5))
    test, stop = folds == 0, folds == 1
    fit = ~(test | stop)
    held = fm.select(test)
    out = {}
    for name, (hyper, trees) in _models().items():
        t0 = time.perf_counter()
        booster = fit_booster(
            (fm.select(fit), y[:, fit]),
            None if trees else (fm.select(stop), y[:, stop]),
            hyper,
            dagger_rounds=1,
            rounds=trees,
        )
        seconds = time.perf_counter() - t0

        def predict(x: np.ndarray, b: Any = booster) -> np.ndarray:
            return np.asarray(b.predict(x), dtype=np.float32)

        tf = np.clip(predict(held.values).reshape(len(held.days), -1), 0, held.upper)
        fr = rollout(predict, held)
        out[name] = {
            "model": booster.model_to_string(),
            "seconds": seconds,
            "rows": 2 * int(np.isfinite(y[:, fit]).sum()),  # teacher-forced + DAgger rows
            "features": len(fm.names),
            "trees": booster.num_trees(),
            "leaves": hyper.num_leaves,
            "tf": _medians(tf, y[:, test]),
            "fr": _medians(fr, y[:, test]),
        }
    return out


def _medians(pred: np.ndarray, obs: np.ndarray) -> list[float]:
    """Median over cells of R and ubRMSD of (time, cells) series."""
    from smda.science.metrics import pearson_r, ubrmsd

    return [
        float(np.nanmedian(pearson_r(pred.T, obs.T)[0])),
        float(np.nanmedian(ubrmsd(pred.T, obs.T))),
    ]


def _global_inputs() -> Path:
    """Write one global day of staged-like inputs (npz) once; returns the file."""
    from smda.geo.grid import GLOBAL_025

    return _day_inputs(GLOBAL_025, WORK / "global_day.npz")


def _day_inputs(g: Any, path: Path) -> Path:
    """Write one day of staged-like inputs on the grid ``g`` (a window of the 0.25° grid, or
    all of it) to the npz ``path`` once; returns the file."""
    if path.exists():
        return path
    import xarray as xr

    from smda.geo.grid import BBox
    from smda.ingest.staging.era5 import era5_static
    from smda_twin.world import World, WorldSpec

    t0 = time.perf_counter()
    world = World(WorldSpec(region=BBox(-100, 35, -99, 36)))
    b = g.bounds
    lat = np.arange(b.north, b.south - 0.25, -0.25)
    lon = np.arange(b.west, b.east if g.is_global else b.east + 0.25, 0.25)
    inv = world.invariants(lat, lon)
    points = xr.Dataset(
        {k: (("latitude", "longitude"), v) for k, v in inv.items()},
        coords={"latitude": lat, "longitude": lon},
    )
    static = era5_static(points, g)
    arrays: dict[str, np.ndarray] = {f"static_{k}": static[k].values for k in static.data_vars}
    era5 = {k: np.empty(g.shape, np.float32) for k in ERA5_VARS}
    for r0 in range(0, g.nrows, 90):
        rows = slice(r0, r0 + 90)
        h = world.era5_series(
            DAY, 1, g.lats[rows], g.lons, ["t2m", "d2m", "u10", "v10", "sp", "ssrd"]
        )
        h = {k: v[0] for k, v in h.items()}
        era5["t2m_mean"][rows] = h["t2m"].mean(0)
        era5["t2m_min"][rows] = h["t2m"].min(0)
        era5["t2m_max"][rows] = h["t2m"].max(0)
        era5["d2m_mean"][rows] = h["d2m"].mean(0)
        era5["ssrd_sum"][rows] = h["ssrd"].sum(0)
        era5["wind_mean"][rows] = np.hypot(h["u10"], h["v10"]).mean(0)
        era5["sp_mean"][rows] = h["sp"].mean(0)
    arrays.update({f"era5_{k}": v for k, v in era5.items()})
    first = DAY.toordinal() - 29
    arrays["precip"] = world.rain["era5_tp"].at_points(first, 30, g.lats, g.lons)
    land = static["land"].values
    rng = np.random.default_rng(0)
    arrays["state"] = np.where(land, 0.1 + 0.3 * rng.random(g.shape), np.nan).astype(np.float32)
    seen = land & (rng.random(g.shape) < 0.35)  # about one SMAP swath-day of coverage
    arrays["smap"] = np.where(seen, 0.05 + 0.4 * rng.random(g.shape), np.nan).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: a crash leaves no half-written inputs
    print(f"prepared the day's inputs in {time.perf_counter() - t0:.0f} s: {path}", file=sys.stderr)
    return path


def _load_day(path: Path) -> Any:
    """The global day's :class:`smda.science.cycle.DayInputs` from the npz."""
    import pandas as pd
    import xarray as xr

    from smda.geo.grid import GLOBAL_025
    from smda.science.cycle import DayInputs

    g = GLOBAL_025
    coords = {"lat": g.lats, "lon": g.lons}
    with np.load(path) as npz:
        a = {k: npz[k] for k in npz.files}
    field = ("lat", "lon")
    static = xr.Dataset(
        {k[7:]: (field, v) for k, v in a.items() if k.startswith("static_")}, coords=coords
    )
    era5 = xr.Dataset({k[5:]: (field, v) for k, v in a.items() if k.startswith("era5_")}, coords)
    times = pd.date_range(DAY - timedelta(days=29), DAY, name="time")
    precip = xr.DataArray(a["precip"], dims=("time", *field), coords={"time": times, **coords})
    smap = xr.Dataset(
        {
            "soil_moisture": (field, a["smap"]),
            "count": (field, np.isfinite(a["smap"]).astype(np.uint16)),
        },
        coords=coords,
    )
    state = xr.DataArray(a["state"], dims=field, coords=coords)
    return state, DayInputs(DAY, era5, precip, static, smap)


def _bundles(models: dict[str, dict[str, Any]], inputs: Path) -> dict[str, Path]:
    """Bundles of both models with identity CDF tables for every global land cell."""
    from smda.geo.grid import GLOBAL_025
    from smda.science.bundle import Climatology, ModelBundle
    from smda.science.features import FeatureSpec, global_cell_ids
    from smda.science.nudging import DEFAULT_PROBS, CdfTables
    from smda.storage.bundle_io import to_files

    with np.load(inputs) as npz:
        land = npz["static_land"]
    g = GLOBAL_025
    lat2, lon2 = np.meshgrid(g.lats, g.lons, indexing="ij")
    ids = np.sort(global_cell_ids(lat2[land], lon2[land]))
    q = np.broadcast_to(
        np.linspace(0.02, 0.5, len(DEFAULT_PROBS), dtype=np.float32), (ids.size, len(DEFAULT_PROBS))
    )
    cdf = CdfTables(ids, np.asarray(DEFAULT_PROBS), q.copy(), q.copy(), np.full(ids.size, 500))
    clim = Climatology(ids, np.full((12, ids.size), 0.25, np.float32))
    paths = {}
    for name, m in models.items():
        hyper = _models()[name][0]
        bundle = ModelBundle(m["model"], FeatureSpec(), hyper, 1, {}, {}, clim, cdf)
        paths[name] = to_files(bundle, WORK / f"bundle_{name}")
    return paths


def _step_child(inputs: str, bundle_dir: str, compiled: bool) -> dict[str, float]:
    """Child process: load the inputs and the bundle (and the compiled library), run the
    cycle step three times, report the median and the peak memory."""
    from smda.science.cycle import step
    from smda.storage.bundle_io import compiled_predictor, from_files

    t0 = time.perf_counter()
    state, day = _load_day(Path(inputs))
    bundle = from_files(bundle_dir)
    predict = compiled_predictor(bundle, WORK / "compiled") if compiled else bundle.predict
    _ = bundle.booster
    t1 = time.perf_counter()
    times = []
    for _ in range(3):
        s0 = time.perf_counter()
        result = step(state, day, bundle, gain=0.3, predict=predict)
        times.append(time.perf_counter() - s0)
    assert np.isfinite(result.analysis.values).sum() > 0
    return {"load_s": t1 - t0, "step_s": float(np.median(times)), "peak_mb": _peak_rss_mb()}


def model_option(argv: list[str], usage: str, flags: tuple[str, ...] = ()) -> Path | None:
    """The ``--model=FILE`` of a benchmark's ``argv`` (the last one; None without it), the
    other options being ``flags``.

    Raises
    ------
    SystemExit
        On any other option, or when FILE is not a file.
    """
    unknown = [a for a in argv if a not in flags and not a.startswith("--model=")]
    if unknown:
        raise SystemExit(f"unknown option(s) {unknown}; {usage}")
    given = [Path(a.removeprefix("--model=")) for a in argv if a.startswith("--model=")]
    model = given[-1] if given else None
    if model is not None and not model.is_file():
        raise SystemExit(f"--model={model}: no such file; give a LightGBM model text file")
    return model


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _compiled(bundles: dict[str, Path]) -> dict[str, Any]:
    """Compiled predictors (tl2cgen, quantised) of the bundles, or {} without tl2cgen."""
    from smda.storage.bundle_io import compiled_predictor, from_files

    try:
        import tl2cgen  # noqa: F401
    except ImportError:
        return {}
    out = {}
    for name, path in bundles.items():
        t0 = time.perf_counter()
        out[name] = compiled_predictor(from_files(path), WORK / "compiled")
        print(f"compiled {name} in {time.perf_counter() - t0:.0f} s (cached)", file=sys.stderr)
    return out


def _predict_times(
    models: dict[str, dict[str, Any]], compiled: dict[str, Any], inputs: Path
) -> dict[str, float]:
    """Seconds to build the global day's features, and to predict 250 000 of its rows
    (a random sample: the twin has more land cells than the ~250 k of the real product),
    natively and compiled."""
    import lightgbm as lgb

    from smda.science.features import FeatureSpec, build_features

    state, day = _load_day(inputs)
    t0 = time.perf_counter()
    matrix = build_features(
        FeatureSpec(), day.day, era5=day.era5, precip=day.precip, static=day.static, state=state
    )
    out: dict[str, float] = {"features (all cells)": time.perf_counter() - t0}
    pick = np.sort(np.random.default_rng(0).choice(matrix.n_cells, PREDICT_ROWS, replace=False))
    rows = np.ascontiguousarray(matrix.values[pick])
    for name, m in models.items():
        booster = lgb.Booster(model_str=m["model"])
        out[f"{name} native"] = _best_of(lambda b=booster: b.predict(rows, num_threads=THREADS))
        if name in compiled:
            out[f"{name} tl2cgen"] = _best_of(lambda p=compiled[name]: p(rows))
    return out


def _best_of(fn: Any, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _steps(inputs: Path, bundles: dict[str, Path], compiled: dict[str, Any]) -> dict[str, Any]:
    """The cycle step of each bundle (native, and compiled when available) in a child."""
    runs = [(name, False) for name in bundles] + [(name, True) for name in compiled]
    steps = {}
    for name, use_compiled in runs:
        code = (
            "import json; from benchmarks.science import _step_child; print(json.dumps("
            f"_step_child({str(inputs)!r}, {str(bundles[name])!r}, {use_compiled})))"
        )
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        label = f"{name} {'tl2cgen' if use_compiled else 'native'}"
        steps[label] = json.loads(result.stdout.strip().splitlines()[-1])
    return steps


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    models = _train()
    inputs = _global_inputs()
    bundles = _bundles(models, inputs)
    compiled = _compiled(bundles)
    predict = _predict_times(models, compiled, inputs)
    steps = _steps(inputs, bundles, compiled)

    print(f"\nscience benchmarks ({os.cpu_count()} cores, {THREADS} threads)")
    print("training (demo region, 1 DAgger round; held-out 2.5° tiles, median over cells vs label)")
    print(
        f"{'model':10} {'rows':>9} {'feat':>5} {'trees':>6} {'leaves':>6} {'train s':>8}"
        f"  {'TF R':>6} {'TF ubRMSD':>9}  {'FR R':>6} {'FR ubRMSD':>9}"
    )
    for name, m in models.items():
        print(
            f"{name:10} {m['rows']:9d} {m['features']:5d} {m['trees']:6d} {m['leaves']:6d}"
            f" {m['seconds']:8.1f}  {m['tf'][0]:6.3f} {m['tf'][1]:9.4f}  {m['fr'][0]:6.3f}"
            f" {m['fr'][1]:9.4f}"
        )
    print(f"\nglobal day: features, and prediction of {PREDICT_ROWS} rows (target ≤ 2 s)")
    for name, seconds in predict.items():
        print(f"  {name:22} {seconds:6.2f} s")
    if not compiled:
        print("  (tl2cgen not installed: compiled inference not measured)")
    with np.load(inputs) as npz:
        cells = int(npz["static_land"].sum())
    print(f"\nglobal-day cycle step, all {cells} twin land cells (fresh process; target ≤ 4 s)")
    print(f"{'model':18} {'load s':>7} {'step s':>7} {'peak MB':>8}")
    for name, st in steps.items():
        print(f"{name:18} {st['load_s']:7.2f} {st['step_s']:7.2f} {st['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
