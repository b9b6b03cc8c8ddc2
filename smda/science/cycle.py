"""The forecast–analysis cycle: one day of ML-DA on the grid, and a cold start.

:func:`step` composes the science core for day D (ARCHITECTURE.md, the daily cycle, steps 4–5)::

    features(staged inputs of D, state SM_a(D−1)) → SM_f(D) = model(features), clipped
    SMAP(D) → SMAP*(D) by CDF matching → SM_a(D) = nudge(SM_f, SMAP*, G)

A day without SMAP (``DayInputs.smap is None``) is a forecast-only day: SM_a = SM_f, flagged
:data:`FLAG_FORECAST_ONLY` in every land cell. A land cell whose state is missing (NaN: e.g. a
cell new to the grid) starts from the model climatology and is flagged
:data:`FLAG_STATE_FILLED`. Sea cells are NaN. :func:`cold_start` starts from the climatology of
the bundle and spins up over the first days.

Science core: numpy/xarray; the model and nudging come from :mod:`smda.science.model` and
:mod:`smda.science.nudging`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.errors import ConfigError
from smda.science.bundle import ModelBundle, Predict
from smda.science.features import FeatureMatrix, build_features, global_cell_ids
from smda.science.flags import (
    FLAG_ASSIMILATED,
    FLAG_FORECAST_ONLY,
    FLAG_LAND,
    FLAG_OBS_UNMATCHED,
    FLAG_STATE_FILLED,
)
from smda.science.nudging import cdf_match, nudge

__all__ = [
    "FLAG_ASSIMILATED",
    "FLAG_FORECAST_ONLY",
    "FLAG_LAND",
    "FLAG_OBS_UNMATCHED",
    "FLAG_STATE_FILLED",
    "CycleResult",
    "DayInputs",
    "Gain",
    "bundle_gain",
    "climatology_state",
    "cold_start",
    "run",
    "step",
]

F32 = npt.NDArray[np.float32]
Gain = float | npt.NDArray[np.floating] | xr.DataArray | None
"""A constant gain, or per cell (lat, lon) as an array or DataArray; None: the bundle's gain
(:attr:`smda.science.bundle.ModelBundle.gain`, estimated at training by :mod:`smda.science.gain`)."""


@dataclass(frozen=True)
class DayInputs:
    """The staged inputs of one day, all on one grid (lat, lon).

    Attributes
    ----------
    day:
        The target day D.
    era5:
        Staged ERA5 daily aggregates of D (:func:`smda.ingest.staging.era5.era5_daily`), (lat, lon).
    precip:
        MSWEP daily precipitation (mm day-1), (time, lat, lon), at least the
        ``spec.history_days`` days ending at D.
    static:
        Staged static fields (:func:`smda.ingest.staging.era5.era5_static`) with ``land``.
    smap:
        Staged SMAP of D (``soil_moisture`` m3 m-3, ``count``), or None (forecast-only day).
    """

    day: date
    era5: xr.Dataset
    precip: xr.DataArray
    static: xr.Dataset
    smap: xr.Dataset | None = None


@dataclass(frozen=True)
class CycleResult:
    """One day of the cycle, each field (lat, lon) on the inputs' grid.

    Attributes
    ----------
    forecast, analysis:
        SM_f(D) and SM_a(D), float32 m3 m-3, NaN over sea.
    innovations:
        SMAP* − SM_f (m3 m-3) where assimilated, NaN elsewhere.
    flags:
        uint8 bit flags (:data:`FLAG_LAND` …).
    obs_count:
        uint16 number of SMAP retrievals in the cell's mean (0 without SMAP).
    gain:
        The gain G used in each cell, float32 (0 over sea).
    feature_drift:
        Largest |z| of the day's feature means against the training distribution
        (:meth:`smda.science.drift.FeatureStats.drift`); NaN when the bundle has none.
    """

    day: date
    forecast: xr.DataArray
    analysis: xr.DataArray
    innovations: xr.DataArray
    flags: xr.DataArray
    obs_count: xr.DataArray
    gain: xr.DataArray
    feature_drift: float = math.nan

    @property
    def forecast_only(self) -> bool:
        """True when the day had no SMAP input."""
        return bool(self.analysis.attrs.get("forecast_only", 0))


def _field(
    values: npt.ArrayLike, like: xr.DataArray, name: str, attrs: dict[str, object]
) -> xr.DataArray:
    return xr.DataArray(
        np.asarray(values),
        dims=("lat", "lon"),
        coords={"lat": like["lat"].values, "lon": like["lon"].values},
        name=name,
        attrs=attrs,
    )


def _cells(
    value: Gain | xr.DataArray, cells: npt.NDArray[np.int64], what: str
) -> npt.NDArray[np.float64]:
    """A scalar stays a scalar; a (lat, lon) field is taken at the flat ``cells``."""
    if isinstance(value, xr.DataArray):
        value = value.transpose("lat", "lon").values
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return arr
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a scalar or a (lat, lon) field, got shape {arr.shape}")
    return np.asarray(arr.reshape(-1)[cells])


def bundle_gain(bundle: ModelBundle, static: xr.Dataset) -> xr.DataArray:
    """The bundle's gain on the land cells of ``static`` (lat, lon), 0 over sea.

    Raises
    ------
    ConfigError
        If the bundle has no gain (a model trained before gains were estimated).
    """
    if bundle.gain is None:
        raise ConfigError(
            f"model {bundle.version} carries no nudging gain: retrain it (`smda train`) or set "
            "SMDA_GAIN (a fixed gain in [0, 1])"
        )
    land = np.asarray(static["land"].values, dtype=bool)
    lat2, lon2 = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    out = np.zeros(land.shape, dtype=np.float32)
    out[land] = bundle.gain.at(global_cell_ids(lat2[land], lon2[land]))
    return _field(out, static["land"], "gain", {"units": "1", "long_name": "nudging gain"})


def climatology_state(bundle: ModelBundle, static: xr.Dataset, day: date) -> xr.DataArray:
    """The bundle's climatology for ``day``'s month on the land cells of ``static`` (m3 m-3)."""
    land = np.asarray(static["land"].values, dtype=bool)
    lat2, lon2 = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    out = np.full(land.shape, np.nan, dtype=np.float32)
    ids = global_cell_ids(lat2[land], lon2[land])
    out[land] = bundle.climatology.field(ids, day.month)
    return _field(out, static["land"], "soil_moisture", {"units": "m3 m-3"})


def _observations(
    inputs: DayInputs, bundle: ModelBundle, matrix: FeatureMatrix, gain: npt.NDArray[np.float64]
) -> tuple[F32, npt.NDArray[np.bool_], npt.NDArray[np.uint16], npt.NDArray[np.bool_]]:
    """SMAP* at the matrix's cells: (rescaled obs, matched, count on the grid (flat),
    retrievals present but not matched)."""
    n = matrix.n_cells
    count = np.zeros(matrix.shape[0] * matrix.shape[1], dtype=np.uint16)
    if inputs.smap is None:
        return np.full(n, np.nan, np.float32), np.zeros(n, bool), count, np.zeros(n, bool)
    raw = np.asarray(inputs.smap["soil_moisture"].transpose("lat", "lon").values)
    raw = raw.reshape(-1)[matrix.cells]
    if "count" in inputs.smap:
        count = np.asarray(inputs.smap["count"].values, np.uint16).reshape(-1).copy()
    if bundle.cdf is None:
        if np.any(gain > 0):
            raise ValueError("the bundle has no CDF tables: fit them (nudging.fit_cdf)")
        obs, matched = np.full(n, np.nan, np.float32), np.zeros(n, bool)
    else:
        obs, matched = cdf_match(raw, matrix.cell_ids, bundle.cdf)
    return obs, matched, count, np.isfinite(raw) & ~matched


def step(
    state_prev: xr.DataArray,
    inputs: DayInputs,
    bundle: ModelBundle,
    *,
    gain: Gain,
    predict: Predict | None = None,
) -> CycleResult:
    """One day of the cycle: forecast from the state of D−1, then nudge toward SMAP.

    Parameters
    ----------
    state_prev:
        SM_a(D−1) (lat, lon) m3 m-3 on the inputs' grid.
    inputs:
        The day's staged inputs.
    bundle:
        The model (features, booster, CDF tables, climatology).
    gain:
        Nudging gain G in [0, 1]: a constant or per cell (lat, lon); None: the bundle's.
    predict:
        Replacement for :meth:`ModelBundle.predict` (e.g. compiled inference).

    Returns
    -------
    :class:`CycleResult` of D.

    Raises
    ------
    ValueError
        If SMAP is given with a non-zero gain and the bundle has no CDF tables.
    """
    static = inputs.static
    land = np.asarray(static["land"].values, dtype=bool)
    state = state_prev.transpose("lat", "lon")
    missing = land & ~np.isfinite(np.asarray(state.values))
    if missing.any():
        fill = climatology_state(bundle, static, inputs.day - timedelta(days=1))
        state = state.where(~missing, fill)
    matrix = build_features(
        bundle.spec,
        inputs.day,
        era5=inputs.era5,
        precip=inputs.precip,
        static=static,
        state=state,
    )
    cells = matrix.cells
    if gain is None:
        gain = bundle_gain(bundle, static)
    forecast = np.clip((predict or bundle.predict)(matrix.values), 0.0, matrix.upper)
    flags = np.where(land, FLAG_LAND, 0).astype(np.uint8).reshape(-1)
    flags[cells] |= np.where(missing.reshape(-1)[cells], FLAG_STATE_FILLED, 0).astype(np.uint8)
    g = _cells(gain, cells, "gain")
    obs, matched, count, unmatched = _observations(inputs, bundle, matrix, g)
    flags[cells] |= np.where(unmatched, FLAG_OBS_UNMATCHED, 0).astype(np.uint8)
    if inputs.smap is None:
        flags[cells] |= FLAG_FORECAST_ONLY
    analysis, innovations = nudge(forecast, obs, g, matched, upper=matrix.upper)
    flags[cells] |= np.where(np.isfinite(innovations), FLAG_ASSIMILATED, 0).astype(np.uint8)

    def grid_of(values: F32) -> F32:
        out = np.full(land.size, np.nan, dtype=np.float32)
        out[cells] = values
        return out.reshape(land.shape)

    like = static["land"]
    gain_cells = np.broadcast_to(g, cells.shape).astype(np.float32)
    attrs = {
        "units": "m3 m-3",
        "date": inputs.day.isoformat(),
        "model_version": bundle.version,
        "forecast_only": int(inputs.smap is None),
    }
    return CycleResult(
        day=inputs.day,
        forecast=_field(grid_of(forecast), like, "forecast", attrs),
        analysis=_field(grid_of(analysis), like, "analysis", attrs),
        innovations=_field(grid_of(innovations), like, "innovations", attrs),
        flags=_field(flags.reshape(land.shape), like, "flags", {"flag_masks": [1, 2, 4, 8, 16]}),
        obs_count=_field(count.reshape(land.shape), like, "obs_count", {"units": "1"}),
        gain=_field(np.nan_to_num(grid_of(gain_cells), nan=0.0), like, "gain", {"units": "1"}),
        feature_drift=(
            bundle.feature_stats.drift(matrix.values) if bundle.feature_stats else math.nan
        ),
    )


def run(
    state: xr.DataArray,
    days: Iterable[DayInputs],
    bundle: ModelBundle,
    *,
    gain: Gain,
    predict: Predict | None = None,
) -> Iterator[CycleResult]:
    """Step through consecutive days from ``state`` (the analysis of the day before the first).

    Raises
    ------
    ValueError
        If the days are not consecutive.
    """
    previous: date | None = None
    for inputs in days:
        if previous is not None and inputs.day != previous + timedelta(days=1):
            raise ValueError(f"cycle days must be consecutive: {inputs.day} follows {previous}")
        result = step(state, inputs, bundle, gain=gain, predict=predict)
        state, previous = result.analysis, inputs.day
        yield result


def cold_start(
    inputs_by_day: Iterable[DayInputs],
    bundle: ModelBundle,
    spinup_days: int,
    *,
    gain: Gain = 0.0,
    predict: Predict | None = None,
) -> CycleResult:
    """Start from the model climatology and cycle over the first ``spinup_days`` days.

    Parameters
    ----------
    inputs_by_day:
        Consecutive days' inputs, at least ``spinup_days`` of them; may be a lazy iterable
        (a generator loading one day at a time keeps one day's inputs in memory).
    spinup_days:
        Days to cycle (≥ 1). With the default ``gain=0`` the spin-up is free-running.

    Returns
    -------
    The :class:`CycleResult` of the last spin-up day (its ``analysis`` is the state to
    continue from).
    """
    if spinup_days < 1:
        raise ValueError(f"cold start needs spinup_days ≥ 1, got {spinup_days}")
    days = iter(inputs_by_day)
    first = next(days, None)
    if first is None:
        raise ValueError("cold start needs the inputs of at least one day")
    state = climatology_state(bundle, first.static, first.day - timedelta(days=1))
    spin = itertools.islice(itertools.chain([first], days), spinup_days)
    last: CycleResult | None = None
    n = 0
    for last in run(state, spin, bundle, gain=gain, predict=predict):  # noqa: B007
        n += 1
    if last is None or n < spinup_days:
        raise ValueError(f"cold start needs spinup_days={spinup_days} days of inputs, got {n}")
    return last
