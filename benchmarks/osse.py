"""The OSSE: two years of ML-DA on the twin's demo region scored against the known truth.

The paper's headline table in miniature (SCIENCE.md §5), on the offline twin's world
(seed 42, demo region 30–40° N, 105–95° W, 40 × 40 land cells of 0.25°):

1. **Stage** the world's products straight into a store (``tests/staged_world.py``: ERA5
   daily aggregates, MSWEP, SMAP, ERA5-Land, GLDAS, static fields) for 2015–2017, without the
   HTTP replicas (ingest through them is tested in ``tests/ingest``). Cached under
   ``$SMDA_BENCH_DIR/osse`` (default: the system temp dir) and reused.
2. **Train** with :func:`smda.training.train_from_store` on 2015 (TC-merged SMAP/ERA5-Land/GLDAS
   labels on SMAP's scale, blocked 4-fold CV over 2.5° tiles, one DAgger round, SMAP CDF tables
   against the free-running model); the model is registered (and reused by later runs).
3. **Evaluate** 2016–2017 (:func:`smda.evaluation.run_experiments`, 30 days of spin-up): the
   analysis with the default gain (``SMDA_GAIN``), the open loop, the forecast, SMAP,
   ERA5-Land, GLDAS and climatology; and the analysis with a per-cell gain from triple
   collocation (``analysis_tc_gain``, :func:`_tc_gain`: products only, no truth). Scored
   against the truth (median over cells) and the twin's 12 ISMN-like stations (median over
   stations); the OSSE checks; the report (markdown + JSON) under ``<store>/reports/<region>/``.

Run: ``python -m benchmarks osse`` (:func:`main`) prints the tables, the checks and the time of
each step. :func:`sweep` cycles one year with several constant gains side by side and scores
each against the truth (the gain's sensitivity; ``python -c "from benchmarks import osse;
osse.sweep()"``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
WORK = CACHE / "osse"
SEED = 42
STAGE = (date(2015, 1, 1), date(2017, 12, 31))
TRAIN = (date(2015, 1, 1), date(2015, 12, 31))
PERIOD = (date(2016, 1, 1), date(2017, 12, 31))
SPINUP_DAYS = 30
CHUNK_DAYS = 92  # staged a quarter at a time (bounded memory)
THREADS = 2


def _world() -> Any:
    from smda.twin.world import DEMO_REGION, World, WorldSpec

    return World(WorldSpec(seed=SEED, region=DEMO_REGION))


def _stage(store: Any, world: Any) -> float:
    """Stage STAGE into ``store`` unless a marker says it is done; seconds spent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import stage_world

    marker = store.root / "osse_staged.json"
    spec = {"seed": SEED, "start": STAGE[0].isoformat(), "end": STAGE[1].isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return 0.0
    t0 = time.perf_counter()
    first = STAGE[0]
    while first <= STAGE[1]:
        last = min(first + timedelta(days=CHUNK_DAYS - 1), STAGE[1])
        history = 30 if first == STAGE[0] else 1  # MSWEP's antecedent window once
        stage_world(store, world, first, last, history_days=history, static=first == STAGE[0])
        print(f"  staged {first} … {last} ({time.perf_counter() - t0:.0f} s)", flush=True)
        first = last + timedelta(days=1)
    marker.write_text(json.dumps(spec))
    return time.perf_counter() - t0


def _train(store: Any) -> tuple[Any, float, str]:
    """The registered model trained on TRAIN (trained and registered if absent)."""
    from smda.bundle import HyperParams
    from smda.errors import NoModel
    from smda.model import CVConfig, TrainConfig
    from smda.registry import ModelRegistry
    from smda.training import describe, train_from_store

    registry = ModelRegistry(store.root / "models" / store.region)
    try:
        bundle = registry.current()
        if bundle.tc_stats.get("period") == {
            "start": TRAIN[0].isoformat(),
            "end": TRAIN[1].isoformat(),
        }:
            return bundle, 0.0, "(reused the registered model)"
    except NoModel:
        pass
    config = TrainConfig(
        hyper=HyperParams(learning_rate=0.1, num_leaves=31, max_rounds=300, num_threads=THREADS),
        cv=CVConfig(n_folds=4, block_deg=2.5),
        compare=(),
    )
    t0 = time.perf_counter()
    outcome = train_from_store(store, *TRAIN, config=config)
    seconds = time.perf_counter() - t0
    registry.register(outcome.bundle)
    return outcome.bundle, seconds, describe(outcome)


def _tc_gain(series: Any) -> tuple[Any, str]:
    """Per-cell gain G = σ²_f / (σ²_f + σ²_o) from TC of (forecast, SMAP, ERA5-Land).

    σ²_f is the forecast's error variance, σ²_o SMAP's in the forecast's units (its TC error
    SD scaled to the forecast): SMAP* after CDF matching. Products only — no truth. Cells
    where TC is invalid take the median gain of the valid cells. The forecast must be out of
    sample: over the training year the model's errors share the label products' errors (it
    memorises the labels: lat, lon and day of year identify a cell-day), TC's error
    variances of the model come out negative and the gain degenerates to 0.
    """
    import xarray as xr

    from smda.nudging import tc_gain
    from smda.tc import triple_collocation

    def cells(name: str) -> np.ndarray:
        return np.asarray(series[name].transpose("lat", "lon", "time").values, dtype=np.float64)

    tc = triple_collocation(cells("forecast"), cells("smap"), cells("era5land"), min_n=100)
    forecast_var = np.where(tc.valid, tc.err_var[0], np.nan)
    obs_var = np.where(tc.valid, tc.err_std_scaled[1] ** 2, np.nan)
    gain = tc_gain(forecast_var, obs_var)
    fill = float(np.median(gain[tc.valid])) if tc.valid.any() else 0.0
    gain = np.where(tc.valid, gain, fill)
    text = (
        f"TC of (forecast, SMAP, ERA5-Land) over {PERIOD[0]}…{PERIOD[1]}: valid in "
        f"{tc.valid.mean():.0%} of cells (the rest take the median {fill:.3f}); median σ_f "
        f"{np.nanmedian(np.sqrt(forecast_var)):.4f}, σ_o {np.nanmedian(np.sqrt(obs_var)):.4f} m3 m-3"
    )
    field = xr.DataArray(gain, dims=("lat", "lon"), coords={"lat": series.lat, "lon": series.lon})
    return field, text


def _stations(world: Any) -> Any:
    sites = world.stations()
    ismn = world.ismn_daily(*PERIOD)
    return ismn.assign_coords(
        lat=("station", [s.lat for s in sites]), lon=("station", [s.lon for s in sites])
    )


def _print_table(name: str, table: Any) -> None:
    print(f"\n{name}")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def main() -> None:
    from smda.config import load_settings
    from smda.evaluation import (
        describe_gain,
        report_directory,
        run_experiments,
        score_tables,
        write_report,
    )
    from smda.skill import osse_checks
    from smda.store import Store

    logging.basicConfig(level=logging.INFO, format="  %(asctime)s %(name)s: %(message)s")
    logging.getLogger("smda.inputs").setLevel(logging.WARNING)
    gain = load_settings().gain
    world = _world()
    store = Store(WORK / "data", world.grid)
    print(f"OSSE on the twin (seed {SEED}, region {world.spec.region}, {world.grid.shape} cells)")
    seconds: dict[str, float] = {"stage": _stage(store, world)}
    bundle, seconds["train"], summary = _train(store)
    print(f"\nmodel {bundle.version}\n{summary}")
    t0 = time.perf_counter()
    series = run_experiments(store, bundle, *PERIOD, gain=gain, spinup_days=SPINUP_DAYS)
    seconds["evaluate (gain default)"] = time.perf_counter() - t0
    tc, tc_text = _tc_gain(series)
    print(f"\nTC gain {describe_gain(tc)}: {tc_text}")
    t0 = time.perf_counter()
    with_tc = run_experiments(store, bundle, *PERIOD, gain=tc, spinup_days=SPINUP_DAYS)
    seconds["evaluate (TC gain)"] = time.perf_counter() - t0
    series["analysis_tc_gain"] = with_tc["analysis"]
    t0 = time.perf_counter()
    tables = score_tables(series, truth=world.truth(*PERIOD), stations=_stations(world))
    seconds["score"] = time.perf_counter() - t0
    meta = {
        "start": PERIOD[0].isoformat(),
        "end": PERIOD[1].isoformat(),
        "region": str(world.spec.region),
        **series.attrs,
        "min_n": 30,
        "truth": f"the offline twin's world (seed {SEED}, epoch {world.spec.epoch}); "
        f"analysis_tc_gain: the analysis with a gain from triple collocation, "
        f"{describe_gain(tc)}, from {tc_text}",
        "stations": f"the twin's {len(world.stations())} ISMN-like stations, daily means of "
        "good hourly values, in the cell containing each",
        "training": f"{TRAIN[0]}…{TRAIN[1]}",
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    path = write_report(tables, report_directory(store.root, store.grid), meta=meta)
    for name, table in tables.items():
        _print_table(f"against the {name} ({PERIOD[0]}…{PERIOD[1]}, gain {gain:g})", table)
    print("\nOSSE checks (against the truth):")
    for check in osse_checks(tables["truth"]):
        kind = "" if check.required else " (informative)"
        print(f"  [{'x' if check.passed else ' '}] {check.claim}{kind}: {check.detail}")
    print("\ntimings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    print(f"report: {path}")


def sweep(
    gains: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5),
    start: date = PERIOD[0],
    end: date = date(2016, 12, 31),
) -> None:
    """Cycle ``start … end`` with each constant gain (30 days of spin-up, the inputs of a day
    read once) and print each analysis's and forecast's skill against the truth."""
    import pandas as pd
    import xarray as xr

    from smda.cycle import cold_start, step
    from smda.inputs import day_inputs
    from smda.skill import score_against_truth
    from smda.store import Store

    world = _world()
    store = Store(WORK / "data", world.grid)
    _stage(store, world)
    bundle, _, _ = _train(store)
    history = bundle.spec.history_days
    t0 = time.perf_counter()
    spin = [
        day_inputs(store, start - timedelta(days=SPINUP_DAYS - i), history)
        for i in range(SPINUP_DAYS)
    ]
    states = {g: cold_start(spin, bundle, SPINUP_DAYS, gain=g).analysis for g in gains}
    days = pd.date_range(start, end, name="time")
    fields: dict[str, list[np.ndarray]] = {}
    for day in days:
        inputs = day_inputs(store, day.date(), history)
        for g in gains:
            result = step(states[g], inputs, bundle, gain=g)
            states[g] = result.analysis
            fields.setdefault(f"analysis G={g:g}", []).append(result.analysis.values)
            fields.setdefault(f"forecast G={g:g}", []).append(result.forecast.values)
    coords = {"time": days, "lat": world.grid.lats, "lon": world.grid.lons}
    series = xr.Dataset(
        {k: (("time", "lat", "lon"), np.stack(v)) for k, v in fields.items()}, coords=coords
    )
    table = score_against_truth(series, world.truth(start, end))
    print(f"gain sweep {start}…{end} (model {bundle.version}; {time.perf_counter() - t0:.0f} s)")
    print(table.sort_index().to_string(float_format=lambda v: f"{v:.4f}"))
