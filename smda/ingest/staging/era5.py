"""ERA5 hourly single-level fields → daily aggregates on the 0.25° grid; invariants → statics.

Input (what the readers produce): an ``xr.Dataset`` with dims ``(time, latitude, longitude)``,
``time`` datetime64 UTC valid times, latitude decreasing, longitude in [−180, 180) in the
provider's order (it may jump across the antimeridian), float32, ERA5 short names, and
coordinate ``expver(time)``. ``valid_time`` is accepted as the name of the time dimension.

The UTC day
-----------
Instantaneous fields (t2m, d2m, u10, v10, sp, swvl1) use the 24 valid times 00:00 … 23:00 of
day D (the convention of the CDS daily-statistics datasets). Accumulated fields (tp, ssrd) are
hourly accumulations *ending* at the valid time, and the day's total depends on the window:

- ``window="utc_day"`` (default): the 24 accumulations with valid times 01:00 of D … 00:00 of
  D+1, i.e. exactly 00–24 UTC of D (the day of MSWEP's daily files). The input must then
  contain 00:00 of D+1: request one more day, or stage the last day of a request later.
- ``window="valid_date"``: the 24 accumulations with valid times 00:00 … 23:00 of D, i.e. the
  24 h from 23:00 of D−1 to 23:00 of D. Self-contained in one day's request, one hour early.

A missing hour is never filled in: :func:`era5_daily` raises a ``ValueError`` naming the missing
valid times (:func:`required_times` lists what a day needs, for planning requests).

Points → cells
--------------
ERA5's values are at grid points (multiples of 0.25°); each analysis cell takes the mean of the
four points around its centre (:func:`smda.geo.regrid.points_to_cells`). That mean is linear, so
for daily means and sums it commutes with the time aggregation: it is applied to the daily
aggregates at the points (24× less work, identical result). Daily minimum and maximum do not
commute with it (the mean of four points' maxima overstates the maximum of the cell's hourly
values), so t2m is put on cells hour by hour and its extremes are taken from the cell series.
Wind speed is computed at the points each hour (``sqrt(u10² + v10²)``) before averaging, so
opposing winds at neighbouring points do not cancel.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.errors import MissingVariable
from smda.geo.grid import Grid
from smda.geo.landmask import land_fraction, land_mask
from smda.geo.regrid import points_to_cells, surrounding_points
from smda.ingest.staging import lat_lon_dims, on_grid, squeeze_extra

__all__ = [
    "ERA5_NAMES",
    "ERA5_REQUIRED",
    "GRAVITY",
    "WINDOWS",
    "Window",
    "accumulation_times",
    "dominant_class",
    "era5_daily",
    "era5_static",
    "instant_times",
    "required_times",
    "select_times",
]

Window = Literal["utc_day", "valid_date"]
WINDOWS: tuple[Window, ...] = ("utc_day", "valid_date")
"""The accumulation windows (see the module docstring)."""
ERA5_REQUIRED = ("t2m", "d2m", "u10", "v10", "sp", "tp", "ssrd")
"""Short names :func:`era5_daily` needs (``swvl1`` is used when present)."""
ERA5_NAMES = {
    "t2m": "2 m temperature",
    "d2m": "2 m dewpoint temperature",
    "u10": "10 m u wind",
    "v10": "10 m v wind",
    "sp": "surface pressure",
    "tp": "total precipitation",
    "ssrd": "surface solar radiation downwards",
}
"""What the short names of :data:`ERA5_REQUIRED` are, for messages."""
ACCUMULATED = ("tp", "ssrd")
GRAVITY = 9.80665
"""Standard gravity (m s-2): geopotential z (m2 s-2) ÷ GRAVITY = orography (m)."""

F32 = npt.NDArray[np.float32]
_POINTS = "area: mean of the 4 ERA5 grid points around the cell centre"


def instant_times(day: date) -> pd.DatetimeIndex:
    """Valid times 00:00 … 23:00 UTC of ``day`` used for instantaneous fields."""
    return pd.date_range(pd.Timestamp(day), periods=24, freq="h")


def accumulation_times(day: date, window: Window = "utc_day") -> pd.DatetimeIndex:
    """Valid times of the 24 hourly accumulations that make ``day``'s total (see module doc)."""
    if window not in WINDOWS:
        raise ValueError(f"unknown accumulation window {window!r}; choose one of {WINDOWS}")
    start = pd.Timestamp(day) + pd.Timedelta(hours=1 if window == "utc_day" else 0)
    return pd.date_range(start, periods=24, freq="h")


def required_times(
    day: date, *, window: Window = "utc_day", accumulated: bool = True
) -> pd.DatetimeIndex:
    """All valid times :func:`era5_daily` needs for ``day`` (for planning requests)."""
    times = instant_times(day)
    return times.union(accumulation_times(day, window)) if accumulated else times


def _time_dim(ds: xr.Dataset | xr.DataArray) -> str:
    name = next((d for d in ("time", "valid_time") if d in ds.dims), None)
    if name is None:
        raise ValueError(f"expected a 'time' (or 'valid_time') dimension, got {tuple(ds.dims)}")
    return name


def select_times(ds: xr.Dataset, times: pd.DatetimeIndex, *, what: str) -> xr.Dataset:
    """The steps of ``ds`` at ``times``, in that order (a view when they are contiguous).

    Raises
    ------
    ValueError
        If any of ``times`` is absent (the message lists them) or the time axis repeats.
    """
    dim = _time_dim(ds)
    index = pd.DatetimeIndex(ds[dim].values)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if not index.is_unique:
        dups = sorted({f"{t:%Y-%m-%dT%H:%M}" for t in index[index.duplicated()]})
        raise ValueError(f"{what}: the input repeats valid time(s) {', '.join(dups)}")
    pos = index.get_indexer(times)
    if np.any(pos < 0):
        missing = ", ".join(f"{t:%Y-%m-%dT%H:%MZ}" for t in times[pos < 0])
        raise ValueError(f"{what}: the input lacks valid time(s) {missing}")
    if np.all(np.diff(pos) == 1):
        return ds.isel({dim: slice(int(pos[0]), int(pos[-1]) + 1)})
    return ds.isel({dim: pos})


def _hourly(ds: xr.Dataset, name: str) -> npt.NDArray[np.floating]:
    lat, lon = lat_lon_dims(ds)
    return np.asarray(ds[name].transpose(_time_dim(ds), lat, lon).values)


def _daily_mean(hourly: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    return np.asarray(hourly.mean(axis=0, dtype=np.float64))


def _attrs(units: str, long_name: str, method: str) -> dict[str, str]:
    return {"units": units, "long_name": long_name, "cell_methods": f"time: {method} {_POINTS}"}


def _check_variables(hourly: xr.Dataset, day: date) -> None:
    """Raise :class:`MissingVariable` naming every required variable ``hourly`` lacks."""
    missing = [v for v in ERA5_REQUIRED if v not in hourly.data_vars]
    if missing:
        names = ", ".join(f"{v} ({ERA5_NAMES[v]})" for v in missing)
        source = hourly.attrs.get("source_path")
        answer = f"the CDS answer {source}" if source else "the CDS answer"
        raise MissingVariable(
            f"ERA5 input for {day} lacks variable(s) {names}: {answer} does not hold "
            f"{'it' if len(missing) == 1 else 'them'}, so {day} cannot be staged. The "
            "provider left it out: check the CDS status page and ERA5's known issues, and "
            "fetch the day again once the CDS delivers every variable"
            + (f" (delete {source} first, or smda stages that answer again)." if source else "."),
            missing,
        )


def _aggregates(
    inst: xr.Dataset, acc: xr.Dataset, hourly: xr.Dataset, grid: Grid
) -> dict[str, tuple[npt.NDArray[np.floating], dict[str, str]]]:
    """The daily aggregates on ``grid`` from the day's instantaneous fields and accumulations:
    name → (values (lat, lon), attributes)."""
    lat_name, lon_name = lat_lon_dims(hourly)
    lat, lon = hourly[lat_name].values, hourly[lon_name].values

    def cells(values: npt.NDArray[np.floating]) -> F32:
        return points_to_cells(values, lat, lon, grid)

    t2m = _hourly(inst, "t2m")
    first = cells(t2m[0]).astype(np.float64)
    total, low, high = first.copy(), first.copy(), first.copy()
    for step in t2m[1:]:
        c = cells(step)
        total += c
        np.minimum(low, c, out=low)
        np.maximum(high, c, out=high)
    wind = np.hypot(_hourly(inst, "u10"), _hourly(inst, "v10"))
    out = {
        "t2m_mean": (total / t2m.shape[0], _attrs("K", "daily mean 2 m temperature", "mean")),
        "t2m_min": (low, _attrs("K", "daily minimum 2 m temperature", "minimum")),
        "t2m_max": (high, _attrs("K", "daily maximum 2 m temperature", "maximum")),
        "d2m_mean": (
            cells(_daily_mean(_hourly(inst, "d2m"))),
            _attrs("K", "daily mean 2 m dewpoint temperature", "mean"),
        ),
        "ssrd_sum": (
            cells(np.maximum(_hourly(acc, "ssrd").sum(axis=0, dtype=np.float64), 0.0)),
            _attrs("J m-2", "daily surface solar radiation downwards", "sum"),
        ),
        "wind_mean": (
            cells(_daily_mean(wind)),
            _attrs("m s-1", "daily mean 10 m wind speed (mean of hourly speeds)", "mean"),
        ),
        "sp_mean": (
            cells(_daily_mean(_hourly(inst, "sp"))),
            _attrs("Pa", "daily mean surface pressure", "mean"),
        ),
        "tp_sum": (
            cells(1000.0 * np.maximum(_hourly(acc, "tp").sum(axis=0, dtype=np.float64), 0.0)),
            _attrs("mm", "daily total precipitation", "sum"),
        ),
    }
    if "swvl1" in inst:
        out["swvl1_mean"] = (
            cells(_daily_mean(_hourly(inst, "swvl1"))),
            _attrs("m3 m-3", "daily mean volumetric soil water, layer 1 (0-7 cm)", "mean"),
        )
    return out


def era5_daily(
    hourly: xr.Dataset, day: date, grid: Grid, *, window: Window = "utc_day"
) -> xr.Dataset:
    """Daily aggregates of ERA5 hourly single-level fields on ``grid``.

    Parameters
    ----------
    hourly:
        ERA5 fields (time, latitude, longitude) at 0.25° points covering ``grid`` (see the
        module docstring); it may hold more days than ``day``. Needs :data:`ERA5_REQUIRED`.
    day:
        The UTC day D.
    grid:
        Target 0.25° cell-centred grid.
    window:
        Accumulation window for tp and ssrd: ``"utc_day"`` (needs 00:00 of D+1) or
        ``"valid_date"`` (see the module docstring).

    Returns
    -------
    Dataset (lat, lon), float32: ``t2m_mean``, ``t2m_min``, ``t2m_max``, ``d2m_mean`` (K),
    ``ssrd_sum`` (J m-2), ``wind_mean`` (m s-1), ``sp_mean`` (Pa), ``tp_sum`` (mm) and
    ``swvl1_mean`` (m3 m-3, when ``swvl1`` is present). NaN where an input point is NaN.
    Attributes record the day, the window, the ``expver`` values used and ``provisional``.

    Raises
    ------
    MissingVariable
        If a required variable is missing (an :class:`~smda.errors.SmdaError` and a
        ``ValueError``; the message names the variable and what to do).
    ValueError
        If a required valid time is missing, or the points do not cover ``grid``.
    """
    _check_variables(hourly, day)
    instants = [v for v in ("t2m", "d2m", "u10", "v10", "sp", "swvl1") if v in hourly]
    inst = select_times(
        hourly[instants], instant_times(day), what=f"ERA5 instantaneous fields of {day}"
    )
    acc = select_times(
        hourly[list(ACCUMULATED)],
        accumulation_times(day, window),
        what=f"ERA5 accumulations of {day} (window {window!r})",
    )
    out = _aggregates(inst, acc, hourly, grid)
    ds = xr.Dataset(
        {k: on_grid(np.asarray(v, dtype=np.float32), grid, k, a) for k, (v, a) in out.items()}
    )
    versions = _expvers(inst, acc)
    ds.attrs.update(
        source="ERA5 hourly single levels",
        date=day.isoformat(),
        accumulation_window=window,
        accumulation_period=_period(accumulation_times(day, window)),
        expver=",".join(versions),
        provisional=int("0005" in versions),
    )
    return ds


def _period(times: pd.DatetimeIndex) -> str:
    start = times[0] - timedelta(hours=1)
    return f"{start:%Y-%m-%dT%H:%MZ}/{times[-1]:%Y-%m-%dT%H:%MZ}"


def _expvers(*parts: xr.Dataset) -> list[str]:
    found: set[str] = set()
    for part in parts:
        if "expver" in part.coords:
            found.update(str(v) for v in np.atleast_1d(part["expver"].values))
    return sorted(found - {""})


def dominant_class(
    classes: npt.NDArray[np.floating], weights: npt.NDArray[np.floating] | None = None
) -> F32:
    """The dominant class among the first axis (e.g. the 4 points around each cell).

    A class's score is the sum of the ``weights`` (≥ 0; e.g. the vegetation cover of each
    point) of the members in that class, plus 1e-6 per member so that unweighted members still
    vote; ties go to the lowest class code. NaN members are ignored; all-NaN gives NaN.

    Parameters
    ----------
    classes:
        Class codes (k, ...) as floats, NaN where missing.
    weights:
        Weights (k, ...) or None for a plain majority vote.

    Returns
    -------
    float32 (...): the dominant class code.
    """
    cls = np.asarray(classes, dtype=np.float64)
    valid = np.isfinite(cls)
    w = np.zeros_like(cls) if weights is None else np.nan_to_num(np.asarray(weights, float))
    w = np.where(valid, np.clip(w, 0.0, None) + 1e-6, 0.0)
    best = np.full(cls.shape[1:], np.nan)
    best_score = np.full(cls.shape[1:], -1.0)
    for k in range(cls.shape[0]):
        score = (w * (cls == cls[k])).sum(axis=0)
        tie = np.abs(score - best_score) <= 1e-9
        better = valid[k] & ((score > best_score + 1e-9) | (tie & (cls[k] < best)))
        best = np.where(better, cls[k], best)
        best_score = np.where(better, score, best_score)
    return best.astype(np.float32)


STATIC_VARIABLES: Sequence[str] = ("z", "lsm", "slt", "cvh", "cvl", "tvh", "tvl")


def era5_static(invariants: xr.Dataset, grid: Grid, *, land_threshold: float = 0.5) -> xr.Dataset:
    """ERA5 invariant fields on ``grid``, and the land mask.

    Parameters
    ----------
    invariants:
        ERA5 ``z`` (m2 s-2), ``lsm`` (0–1), ``slt``, ``cvh``, ``cvl`` (0–1), ``tvh``, ``tvl``
        at 0.25° points (latitude, longitude; size-1 extra dims such as time are dropped).
    grid:
        Target 0.25° cell-centred grid.
    land_threshold:
        Land fraction at or above which a cell is land (:func:`smda.geo.landmask.land_mask`).

    Returns
    -------
    Dataset (lat, lon): ``orography`` (m), ``lsm`` (land fraction), ``cvh``, ``cvl`` (means
    of the 4 points around each cell), ``slt``, ``tvh``, ``tvl`` (categorical: the dominant
    class of the 4 points, weighted by ``lsm``, ``cvh`` and ``cvl`` respectively, see
    :func:`dominant_class`), float32; ``land`` (bool).
    """
    missing = [v for v in STATIC_VARIABLES if v not in invariants.data_vars]
    if missing:
        raise ValueError(f"ERA5 invariants lack variable(s) {', '.join(missing)}")
    fields = {v: squeeze_extra(invariants[v], f"ERA5 invariant {v}") for v in STATIC_VARIABLES}
    lat_name, lon_name = lat_lon_dims(fields["z"])
    lat, lon = fields["z"][lat_name].values, fields["z"][lon_name].values

    def quad(name: str) -> npt.NDArray[np.floating]:
        return np.asarray(surrounding_points(fields[name].values, lat, lon, grid), float)

    data: dict[str, xr.DataArray] = {
        "orography": on_grid(
            points_to_cells(fields["z"].values / GRAVITY, lat, lon, grid),
            grid,
            "orography",
            {"units": "m", "long_name": "surface elevation (ERA5 z / g)", "cell_methods": _POINTS},
        ),
        "lsm": land_fraction(fields["lsm"], grid).rename("lsm"),
    }
    for name, long_name in (("cvh", "high"), ("cvl", "low")):
        data[name] = on_grid(
            points_to_cells(fields[name].values, lat, lon, grid),
            grid,
            name,
            {"units": "1", "long_name": f"{long_name} vegetation cover", "cell_methods": _POINTS},
        )
    for name, weight, long_name in (
        ("slt", "lsm", "soil type"),
        ("tvh", "cvh", "type of high vegetation"),
        ("tvl", "cvl", "type of low vegetation"),
    ):
        data[name] = on_grid(
            dominant_class(quad(name), quad(weight)),
            grid,
            name,
            {
                "units": "1",
                "long_name": f"{long_name} (categorical code)",
                "comment": f"dominant class of the 4 ERA5 points around the cell, by {weight}",
            },
        )
    data["land"] = land_mask(fields["lsm"], grid, threshold=land_threshold)
    ds = xr.Dataset(data)
    ds.attrs.update(source="ERA5 invariants", land_threshold=land_threshold)
    return ds
