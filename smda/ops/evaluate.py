"""Evaluation: the analysis, the open loop and every input product scored against references.

``smda evaluate`` (and the OSSE benchmark) run here; the scoring itself is pure
(:mod:`smda.science.skill` on :mod:`smda.science.metrics`). An evaluation of a period has three steps:

1. :func:`run_experiments` — from the staged inputs of a store and a model bundle, cycle the
   period twice: the **analysis** (nudged toward SMAP with gain G) and the **open loop** (the
   same model, G = 0). Both start cold (the bundle's climatology) ``spinup_days`` before the
   period and are spun up over those days, the analysis with nudging — as a cold start of the
   daily cycle does. Beside them: the analysis chain's **forecast**, the staged products
   (**smap**, **era5land**, **gldas**) and the **climatology** (the bundle's monthly
   climatology), all ``(time, lat, lon)`` on the store's grid.
2. Scoring against the references there are: the twin's **truth** (given by the caller — the
   CLI's :func:`smda.cli.twin.truth_of` — or :func:`read_truth`) with :func:`smda.science.skill.score_against_truth`, and **ISMN stations**
   (staged in the store: :func:`staged_stations`; or an ISMN download: :func:`read_stations`)
   with :func:`smda.science.skill.score_against_stations`. Any gridded netCDF (:func:`read_series`)
   can be scored the same way.
3. :func:`write_report` — the tables in markdown with the protocol in words, and as JSON,
   written atomically as ``evaluation_<start>_<end>.md`` / ``.json`` under
   ``<data_dir>/reports/<region>/`` (:func:`report_directory`); beside them
   :func:`write_series` stores the cycled series (:data:`CYCLED`: analysis, open loop,
   forecast) as ``evaluation_<start>_<end>.nc``, which ``smda plot --point`` draws the open loop
   from. No reference (truth, stations) is stored there: references are only read to score.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from smda.errors import ConfigError
from smda.geo.grid import Grid
from smda.science.bundle import ModelBundle, Predict
from smda.science.cycle import DayInputs, Gain, bundle_gain, climatology_state, cold_start, step
from smda.science.metrics import StationSeries
from smda.science.skill import (
    SERIES,
    osse_checks,
    render_markdown,
    score_against_stations,
    score_against_truth,
)
from smda.storage.atomic import atomic_path, atomic_write_bytes
from smda.storage.chain import EPOCH, TIME_ATTRS
from smda.storage.inputs import day_inputs, load_series, load_static, missing_days
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store, region_key

__all__ = [
    "CYCLED",
    "PRODUCT_VARIABLES",
    "SERIES_GLOB",
    "SPINUP_DAYS",
    "describe_gain",
    "report_directory",
    "run_experiments",
    "score_tables",
    "write_report",
    "write_series",
]

LOG = logging.getLogger(__name__)


PRODUCT_VARIABLES = {"smap": "soil_moisture", "era5land": "swvl1_mean", "gldas": "soil_moisture"}
"""The staged soil-moisture variable (m3 m-3) of each product scored beside the analysis."""


SPINUP_DAYS = 30
"""Default spin-up (days) of the cold starts before the evaluated period."""

CYCLED = ("analysis", "open_loop", "forecast")
"""The series of the cycles that :func:`write_series` stores (never a reference)."""
SERIES_GLOB = "evaluation_*_*.nc"
"""The stored series of the evaluations in a report directory (:func:`write_series`)."""
_SERIES_ENCODING = {"zlib": True, "complevel": 4, "shuffle": True, "_FillValue": np.float32(np.nan)}


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _spun_up(
    spin: Sequence[DayInputs],
    bundle: ModelBundle,
    static: xr.Dataset,
    start: date,
    *,
    gain: Gain,
    predict: Predict | None,
) -> xr.DataArray:
    """The state of the day before ``start``: the climatology cycled through ``spin``."""
    if not spin:
        return climatology_state(bundle, static, start - timedelta(days=1))
    return cold_start(spin, bundle, len(spin), gain=gain, predict=predict).analysis


def _cycle(
    store: Store,
    bundle: ModelBundle,
    days: Sequence[date],
    states: tuple[xr.DataArray, xr.DataArray],
    *,
    gain: Gain,
    predict: Predict | None,
) -> Iterator[tuple[xr.DataArray, xr.DataArray, xr.DataArray]]:
    """(analysis, forecast, open loop) of each day, reading each day's inputs once."""
    analysis, open_loop = states
    for day in days:
        inputs = day_inputs(store, day, bundle.spec.history_days)
        nudged = step(analysis, inputs, bundle, gain=gain, predict=predict)
        free = step(open_loop, inputs, bundle, gain=0.0, predict=predict)
        analysis, open_loop = nudged.analysis, free.analysis
        yield nudged.analysis, nudged.forecast, free.analysis


def _climatology(bundle: ModelBundle, static: xr.Dataset, days: Sequence[date]) -> np.ndarray:
    """The bundle's climatology of each day's month, (time, lat, lon) float32."""
    months = {d.month: climatology_state(bundle, static, d).values for d in days}
    return np.stack([months[d.month] for d in days]).astype(np.float32)


def _products(store: Store, start: date, end: date) -> dict[str, xr.DataArray]:
    """The staged products of the period (NaN on days not staged); a product with no staged
    day in the period is left out (logged)."""
    days = _days(start, end)
    out = {}
    for name, variable in PRODUCT_VARIABLES.items():
        absent = missing_days(store, name, days)
        if len(absent) == len(days):
            LOG.warning(
                "%s is left out of the evaluation: not staged over %s..%s", name, start, end
            )
            continue
        if absent:
            LOG.info(
                "%s: %d of %d days not staged (scored as missing)", name, len(absent), len(days)
            )
        out[name] = load_series(store, name, variable, start, end)
    return out


def run_experiments(
    store: Store,
    bundle: ModelBundle,
    start: date,
    end: date,
    *,
    gain: Gain = None,
    predict: Predict | None = None,
    spinup_days: int = SPINUP_DAYS,
) -> xr.Dataset:
    """Cycle the analysis and the open loop through ``start … end`` beside the products.

    Parameters
    ----------
    store:
        Staged inputs of the region: ERA5, MSWEP and SMAP from ``spinup_days`` before
        ``start`` to ``end`` (MSWEP also ``history_days − 1`` days before that), the static
        fields, and the products scored (SMAP, ERA5-Land, GLDAS) over the period.
    bundle:
        The model (with CDF tables when ``gain`` is non-zero).
    start, end:
        The evaluated period (inclusive).
    gain:
        Nudging gain G of the analysis: a constant in [0, 1] or per cell (lat, lon); None
        (default): the bundle's gain, estimated at training (:mod:`smda.science.gain`).
    predict:
        Replacement for the bundle's prediction (e.g. compiled inference).
    spinup_days:
        Days cycled from the climatology before ``start`` (0: start from the climatology of
        the day before ``start``); the analysis spins up with nudging, the open loop without.

    Returns
    -------
    xarray.Dataset
        ``(time, lat, lon)`` float32 m3 m-3 on the store's grid, NaN over sea: ``analysis``,
        ``open_loop``, ``forecast`` (SM_f of the analysis chain), the staged products
        ``smap``, ``era5land``, ``gldas`` (each when staged on some day of the period; NaN on
        days not staged) and ``climatology``. Attributes: ``start``, ``end``, ``gain`` (in
        words, :func:`describe_gain`), ``spinup_days``, ``model_version``.

    Raises
    ------
    MissingInputs
        If an input of the cycle (ERA5, MSWEP, static fields) is not staged.
    ValueError
        If ``end`` is before ``start`` or ``spinup_days`` is negative.
    """
    if end < start or spinup_days < 0:
        raise ValueError(f"need start ≤ end and spinup_days ≥ 0, got {start}, {end}, {spinup_days}")
    static = load_static(store)
    history = bundle.spec.history_days
    before = start - timedelta(days=1)
    spin = [day_inputs(store, d, history) for d in _days(start - timedelta(spinup_days), before)]
    states = (
        _spun_up(spin, bundle, static, start, gain=gain, predict=predict),
        _spun_up(spin, bundle, static, start, gain=0.0, predict=predict),
    )
    days = _days(start, end)
    shape = (len(days), *store.grid.shape)
    fields = {k: np.empty(shape, np.float32) for k in ("analysis", "forecast", "open_loop")}
    cycled = _cycle(store, bundle, days, states, gain=gain, predict=predict)
    for i, (analysis, forecast, open_loop) in enumerate(cycled):
        fields["analysis"][i], fields["forecast"][i] = analysis.values, forecast.values
        fields["open_loop"][i] = open_loop.values
        if (i + 1) % 100 == 0:
            LOG.info("evaluation cycle: %d of %d days", i + 1, len(days))
    fields["climatology"] = _climatology(bundle, static, days)
    coords = {"time": pd.DatetimeIndex(days, name="time"), "lat": static.lat, "lon": static.lon}
    data = {
        k: xr.DataArray(v, dims=("time", "lat", "lon"), coords=coords) for k, v in fields.items()
    }
    for name, product in _products(store, start, end).items():
        data[name] = product.astype(np.float32).assign_coords(time=coords["time"])
    order = [s for s in SERIES if s in data]
    return xr.Dataset(
        {k: data[k].assign_attrs(units="m3 m-3") for k in order},
        attrs={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "gain": _model_gain(bundle, static) if gain is None else describe_gain(gain),
            "spinup_days": spinup_days,
            "model_version": bundle.version,
        },
    )


def _model_gain(bundle: ModelBundle, static: xr.Dataset) -> str:
    """The bundle's gain in words (raises ConfigError if it has none)."""
    bundle_gain(bundle, static)
    assert bundle.gain is not None
    return f"the model's: {bundle.gain.describe()}"


def describe_gain(gain: Gain) -> str:
    """A gain in words: ``"0.3"`` or ``"per cell (median 0.42, 0.10–0.80)"``; None: the
    model's own."""
    if gain is None:
        return "the model's"
    values = np.asarray(gain.values if isinstance(gain, xr.DataArray) else gain, dtype=np.float64)
    if values.ndim == 0:
        return f"{float(values):g}"
    finite = values[np.isfinite(values)]
    if not finite.size:
        return "per cell (none defined)"
    return f"per cell (median {np.median(finite):.2f}, {finite.min():.2f}–{finite.max():.2f})"


def score_tables(
    series: xr.Dataset,
    *,
    truth: xr.DataArray | None = None,
    stations: xr.Dataset | xr.DataArray | Sequence[StationSeries] | None = None,
    min_n: int = 30,
) -> dict[str, pd.DataFrame]:
    """The tables of an evaluation: ``"truth"`` and/or ``"stations"`` (each reference given).

    Raises
    ------
    ConfigError
        If there is no reference to score against.
    """
    if truth is None and stations is None:
        raise ConfigError(
            "nothing to score against: give the truth (--truth twin or a netCDF) and/or ISMN "
            "stations (--stations PATH, or `smda fetch ismn` into the store)"
        )
    tables = {}
    if truth is not None:
        tables["truth"] = score_against_truth(series, truth, min_n=min_n)
    if stations is not None:
        tables["stations"] = score_against_stations(series, stations, min_n=min_n)
    return tables


def report_directory(data_dir: Path, grid: Grid) -> Path:
    """``<data_dir>/reports/<region>/`` (:func:`smda.storage.store.region_key`)."""
    return Path(data_dir) / "reports" / region_key(grid)


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(
    tables: Mapping[str, pd.DataFrame], directory: Path, *, meta: Mapping[str, Any]
) -> Path:
    """Write ``evaluation_<start>_<end>.md`` and ``.json`` atomically into ``directory``.

    Parameters
    ----------
    tables:
        Tables by reference (``"truth"``: :func:`smda.science.skill.score_against_truth`;
        ``"stations"``: :func:`smda.science.skill.score_against_stations`), one row per series.
    directory:
        Where to write (created if missing): normally :func:`report_directory`.
    meta:
        The protocol: ``start`` and ``end`` (ISO dates, required), and as known ``region``,
        ``gain``, ``model_version``, ``spinup_days``, ``min_n``, ``truth``, ``stations``,
        ``series_file``, timings… (JSON-serialisable).

    Returns
    -------
    The markdown file's path (the JSON file is beside it).
    """
    if "start" not in meta or "end" not in meta:
        raise ValueError("the report's meta needs 'start' and 'end'")
    stem = f"evaluation_{meta['start']}_{meta['end']}"
    md = directory / f"{stem}.md"
    payload = {
        "meta": dict(meta),
        "tables": {
            name: {
                str(s): {c: _json_value(v) for c, v in row.items()}
                for s, row in table.to_dict(orient="index").items()
            }
            for name, table in tables.items()
        },
        "checks": [
            {"claim": c.claim, "passed": c.passed, "detail": c.detail, "required": c.required}
            for c in (osse_checks(tables["truth"]) if "truth" in tables else [])
        ],
    }
    atomic_write_bytes(md, render_markdown(tables, meta).encode())
    text = json.dumps(payload, indent=1, default=str, allow_nan=False)
    atomic_write_bytes(directory / f"{stem}.json", text.encode())
    return md


def write_series(series: xr.Dataset, directory: Path) -> Path:
    """Write the cycled series of an evaluation as ``evaluation_<start>_<end>.nc``, atomically.

    Parameters
    ----------
    series:
        What :func:`run_experiments` returns; only :data:`CYCLED` (``analysis``, ``open_loop``,
        ``forecast``, ``(time, lat, lon)`` m3 m-3) are stored, with its attributes ``start``,
        ``end``, ``model_version``, ``gain`` and ``spinup_days``.
    directory:
        Where to write (created if missing): the report's, :func:`report_directory`.

    Returns
    -------
    The file's path: float32, deflate-compressed, CF ``time`` (days since 1970-01-01, as the
    state files), chunked by 32 days.

    Raises
    ------
    ValueError
        If a cycled series or an attribute of the period is missing.
    """
    absent = [k for k in CYCLED if k not in series] + [
        k for k in ("start", "end", "model_version", "gain") if k not in series.attrs
    ]
    if absent:
        raise ValueError(f"not the series of a model run: no {', '.join(absent)}")
    days = pd.DatetimeIndex(series["time"].values).normalize()
    since = np.asarray((days - pd.Timestamp(EPOCH)).days, dtype=np.int32)
    coords = {
        "time": ("time", since, TIME_ATTRS),
        "lat": (
            "lat",
            series["lat"].values,
            {"units": "degrees_north", "standard_name": "latitude"},
        ),
        "lon": (
            "lon",
            series["lon"].values,
            {"units": "degrees_east", "standard_name": "longitude"},
        ),
    }
    names = {
        "analysis": "analysis SM_a",
        "open_loop": "open loop (G = 0)",
        "forecast": "forecast SM_f",
    }
    data = {
        k: (
            ("time", "lat", "lon"),
            series[k].transpose("time", "lat", "lon").values.astype(np.float32),
            {"units": "m3 m-3", "long_name": f"surface soil moisture {names[k]} (0-5 cm)"},
        )
        for k in CYCLED
    }
    attrs = {
        "Conventions": "CF-1.8",
        "title": "smda evaluation: the cycled series (analysis, open loop, forecast)",
        **{k: str(series.attrs[k]) for k in ("start", "end", "model_version", "gain")},
        "spinup_days": int(series.attrs.get("spinup_days", 0)),
    }
    out = xr.Dataset(data, coords=coords, attrs=attrs)
    chunks = (min(len(days), 32), *(min(n, 128) for n in out["analysis"].shape[1:]))
    encoding: dict[str, dict[str, Any]] = {
        k: {**_SERIES_ENCODING, "chunksizes": chunks} for k in CYCLED
    }
    encoding.update({k: {"_FillValue": None} for k in ("time", "lat", "lon")})
    path = Path(directory) / f"evaluation_{attrs['start']}_{attrs['end']}.nc"
    with HDF5_IO, atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path
