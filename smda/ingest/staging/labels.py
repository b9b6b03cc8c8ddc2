"""Training-label products → daily soil moisture on the 0.25° grid (m3 m-3).

- **ERA5-Land** (:func:`era5land_daily`): hourly fields at 0.1° *points* (multiples of 0.1°,
  NaN over sea). ``swvl1`` (0–7 cm) is averaged over the valid times 00:00 … 23:00 of the day at
  the points, then regridded conservatively: each point stands for the 0.1° cell centred on it,
  area weights on the sphere (:func:`smda.geo.regrid.conservative_weights_points`), sea points left
  out, a cell NaN when less than ``min_coverage`` of its area is land. The mean commutes with
  the (linear) regridding, so averaging first is exact and 24× cheaper. ERA5-Land's
  accumulations (tp, ssrd) run from 00 UTC through the day; when present they are
  de-accumulated (:func:`deaccumulate`) and summed over the same window as ERA5's
  (:mod:`smda.ingest.staging.era5`).
- **GLDAS Noah** (:func:`gldas_daily`): 3-hourly instantaneous 0–10 cm soil moisture on GLDAS's
  0.25° cell-centred grid (latitude −59.875 … 89.875), which is a window of the analysis grid:
  cells are copied, not interpolated; cells south of −60° are NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from smda.geo.grid import Grid
from smda.geo.regrid import conservative_apply, conservative_weights_points, window_of_centres
from smda.ingest.staging import lat_lon_dims, on_grid, squeeze_extra
from smda.ingest.staging.era5 import Window, accumulation_times, instant_times, select_times

__all__ = ["GLDAS_STEPS", "deaccumulate", "era5land_daily", "gldas_daily"]

GLDAS_STEPS = 8
"""Number of 3-hourly GLDAS steps in a day (00, 03, …, 21 UTC)."""
_GLDAS_ROWS = 600  # global 0.25° rows 0 … 599 = latitudes 89.875 … −59.875
_ERA5LAND_RES = 0.1
_LABEL = "area: mean (area-weighted; ERA5-Land 0.1° points as 0.1° cells; sea excluded)"


def deaccumulate(accumulated: xr.DataArray) -> xr.DataArray:
    """Hourly amounts (ending at each valid time) from ERA5-Land's from-00-UTC accumulations.

    ERA5-Land accumulates from 00 UTC: the value at 01:00 is the first hour, the value at
    00:00 is the previous day's total. So the hour ending at ``t`` is ``acc(t)`` when ``t`` is
    01:00 and ``acc(t) − acc(t − 1 h)`` otherwise (NaN when ``t − 1 h`` is not in the input).

    Parameters
    ----------
    accumulated:
        Accumulations with a ``time`` (or ``valid_time``) dimension (datetime64, UTC).

    Returns
    -------
    DataArray like ``accumulated`` with the hourly amounts (same units).
    """
    dim = next(d for d in ("time", "valid_time") if d in accumulated.dims)
    times = pd.DatetimeIndex(accumulated[dim].values)
    prev = times.get_indexer(times - pd.Timedelta(hours=1))
    data = np.asarray(accumulated.values, dtype=np.float64)
    axis = accumulated.dims.index(dim)
    data = np.moveaxis(data, axis, 0)
    before = np.where(
        (prev >= 0)[(slice(None),) + (None,) * (data.ndim - 1)],
        data[np.maximum(prev, 0)],
        np.nan,
    )
    first_hour = np.asarray(times.hour == 1)[(slice(None),) + (None,) * (data.ndim - 1)]
    hourly = np.where(first_hour, data, data - before)
    return accumulated.copy(data=np.moveaxis(hourly, 0, axis).astype(accumulated.dtype))


@functools.lru_cache(maxsize=4)
def _point_weights(lat: bytes, lon: bytes, grid: Grid) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return conservative_weights_points(
        np.frombuffer(lat), np.frombuffer(lon), grid, res=_ERA5LAND_RES
    )


def era5land_daily(
    hourly: xr.Dataset,
    day: date,
    grid: Grid,
    *,
    window: Window = "utc_day",
    min_coverage: float = 0.5,
) -> xr.Dataset:
    """Daily ERA5-Land fields on ``grid`` (see the module docstring).

    Parameters
    ----------
    hourly:
        ERA5-Land (time, latitude, longitude) at 0.1° points covering ``grid``, NaN over sea,
        with ``swvl1`` (m3 m-3); optionally ``tp`` (m) and ``ssrd`` (J m-2) accumulated from
        00 UTC. It may hold more days than ``day``.
    day:
        The UTC day D; ``swvl1`` uses valid times 00:00 … 23:00 of D.
    grid:
        Target 0.25° cell-centred grid.
    window:
        Accumulation window of tp and ssrd (as :func:`smda.ingest.staging.era5.era5_daily`).
    min_coverage:
        Fraction of a cell's area that must be land (valid) for a value, else NaN.

    Returns
    -------
    Dataset (lat, lon), float32: ``swvl1_mean`` (m3 m-3); ``tp_sum`` (mm) and ``ssrd_sum``
    (J m-2) when present.

    Raises
    ------
    ValueError
        If ``swvl1`` or a needed valid time is missing, or the points do not cover ``grid``.
    """
    if "swvl1" not in hourly.data_vars:
        raise ValueError(f"ERA5-Land input for {day} lacks variable swvl1")
    lat_name, lon_name = lat_lon_dims(hourly)
    lat = np.ascontiguousarray(hourly[lat_name].values, dtype=np.float64)
    lon = np.ascontiguousarray(hourly[lon_name].values, dtype=np.float64)
    weights = _point_weights(lat.tobytes(), lon.tobytes(), grid)

    def regrid(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        return conservative_apply(values, weights, min_coverage=min_coverage)

    inst = select_times(hourly[["swvl1"]], instant_times(day), what=f"ERA5-Land swvl1 of {day}")
    sm = inst["swvl1"].transpose(..., lat_name, lon_name).values.mean(axis=0, dtype=np.float64)
    data = {
        "swvl1_mean": on_grid(
            regrid(sm),
            grid,
            "swvl1_mean",
            {
                "units": "m3 m-3",
                "long_name": "daily mean volumetric soil water, layer 1 (0-7 cm), ERA5-Land",
                "cell_methods": f"time: mean {_LABEL}",
            },
        )
    }
    accumulated = [v for v in ("tp", "ssrd") if v in hourly.data_vars]
    if accumulated:
        window_times = accumulation_times(day, window)
        needed = window_times.union(window_times[window_times.hour != 1] - pd.Timedelta(hours=1))
        acc = select_times(
            hourly[accumulated], needed, what=f"ERA5-Land accumulations of {day} ({window!r})"
        )
        for name, scale, units, long_name in (
            ("tp", 1000.0, "mm", "daily total precipitation, ERA5-Land"),
            ("ssrd", 1.0, "J m-2", "daily surface solar radiation downwards, ERA5-Land"),
        ):
            if name not in acc:
                continue
            hours = deaccumulate(acc[name]).sel({_time(acc): window_times})
            total = hours.transpose(..., lat_name, lon_name).values.sum(axis=0, dtype=float)
            data[f"{name}_sum"] = on_grid(
                regrid(scale * np.maximum(total, 0.0)),
                grid,
                f"{name}_sum",
                {"units": units, "long_name": long_name, "cell_methods": f"time: sum {_LABEL}"},
            )
    ds = xr.Dataset(data)
    ds.attrs.update(source="ERA5-Land hourly", date=day.isoformat(), accumulation_window=window)
    return ds


def _time(ds: xr.Dataset) -> str:
    return next(d for d in ("time", "valid_time") if d in ds.dims)


def gldas_daily(
    fields: Sequence[xr.DataArray], grid: Grid, *, min_steps: int = GLDAS_STEPS
) -> xr.DataArray:
    """Daily mean GLDAS soil moisture on ``grid``.

    Parameters
    ----------
    fields:
        The day's 3-hourly fields (lat, lon) in m3 m-3 on GLDAS's 0.25° cell-centred grid
        (any window of it, either latitude order; a size-1 time dim is dropped), NaN missing.
    grid:
        Target 0.25° cell-centred grid.
    min_steps:
        Fewest steps a day needs (of :data:`GLDAS_STEPS`); a cell with fewer valid steps is NaN.

    Returns
    -------
    DataArray ``soil_moisture`` (lat, lon), float32, m3 m-3; NaN over sea and south of −60°.

    Raises
    ------
    ValueError
        If fewer than ``min_steps`` fields are given, a field is in kg m-2, or the fields do
        not cover the part of ``grid`` that GLDAS covers.
    """
    if not 1 <= min_steps <= GLDAS_STEPS:
        raise ValueError(f"min_steps must be in 1…{GLDAS_STEPS}, got {min_steps}")
    if len(fields) < min_steps:
        raise ValueError(
            f"GLDAS day has {len(fields)} of {GLDAS_STEPS} 3-hourly steps; need ≥ {min_steps}"
        )
    total = np.zeros(grid.shape)
    count = np.zeros(grid.shape, dtype=np.intp)
    for field in fields:
        if str(field.attrs.get("units", "")).replace(" ", "") in ("kgm-2", "kg/m2", "kgm**-2"):
            raise ValueError("GLDAS field is in kg m-2: divide by 100 (0–10 cm) to get m3 m-3")
        values = _gldas_on_grid(squeeze_extra(field, "GLDAS field"), grid)
        ok = np.isfinite(values)
        total += np.where(ok, values, 0.0)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= min_steps, total / count, np.nan)
    return on_grid(
        mean.astype(np.float32),
        grid,
        "soil_moisture",
        {
            "units": "m3 m-3",
            "long_name": "daily mean volumetric soil moisture 0-10 cm, GLDAS Noah",
            "cell_methods": "time: mean (interval: 3 hours)",
            "steps": len(fields),
        },
    )


def _gldas_on_grid(field: xr.DataArray, grid: Grid) -> npt.NDArray[np.float64]:
    """Copy a GLDAS window onto ``grid``; NaN south of GLDAS's grid."""
    lat_name, lon_name = lat_lon_dims(field)
    src, lat_order, lon_order = window_of_centres(
        field[lat_name].values, field[lon_name].values, grid.res
    )
    n_lon = grid.global_shape[1]
    r = grid.rows - src.row0
    c = (grid.cols - src.col0) % n_lon
    in_src = (r >= 0) & (r < src.nrows)
    needed = grid.rows < _GLDAS_ROWS
    if np.any(needed & ~in_src) or np.any(c >= src.ncols):
        raise ValueError(f"GLDAS field ({src}) does not cover grid {grid}")
    values = np.asarray(field.values, dtype=np.float64)
    rows = lat_order[np.where(in_src, r, 0)]
    out = values[np.ix_(rows, lon_order[c])]
    out[~in_src] = np.nan
    return out
