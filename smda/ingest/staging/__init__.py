"""Staging: normalised provider data → daily fields on the 0.25° analysis grid.

Pure science (numpy/xarray/scipy; no files, no network). Each module takes what the readers
produce and returns ``xr.Dataset``/``xr.DataArray`` objects with dims ``(lat, lon)`` and the
coordinates of the target :class:`~smda.geo.grid.Grid` (``grid.lats``, ``grid.lons``):

- :mod:`smda.ingest.staging.era5` — :func:`~smda.ingest.staging.era5.era5_daily` (hourly ERA5 → daily
  aggregates) and :func:`~smda.ingest.staging.era5.era5_static` (invariants → static fields, land mask);
- :mod:`smda.ingest.staging.precipitation` — :func:`~smda.ingest.staging.precipitation.mswep_to_grid`
  (MSWEP 0.1° → 0.25°, conservative);
- :mod:`smda.ingest.staging.smap` — :class:`~smda.ingest.staging.smap.SmapBinIndex` and
  :func:`~smda.ingest.staging.smap.bin_smap` (SMAP L3 AM/PM, quality-filtered, EASE-Grid 2.0 → 0.25°);
- :mod:`smda.ingest.staging.labels` — :func:`~smda.ingest.staging.labels.era5land_daily` and
  :func:`~smda.ingest.staging.labels.gldas_daily` (training-label products, m3 m-3).

This package module holds the small helpers the staging modules share; import the functions
from their modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.geo.grid import Grid

__all__ = ["lat_lon_dims", "on_grid", "squeeze_extra"]


def on_grid(values: npt.ArrayLike, grid: Grid, name: str, attrs: Mapping[str, Any]) -> xr.DataArray:
    """Wrap ``values`` (lat, lon) as a DataArray with ``grid``'s coordinates."""
    return xr.DataArray(
        np.asarray(values),
        dims=("lat", "lon"),
        coords={
            "lat": ("lat", grid.lats, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lons, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        name=name,
        attrs=dict(attrs),
    )


def lat_lon_dims(obj: xr.Dataset | xr.DataArray) -> tuple[str, str]:
    """Names of the latitude and longitude dimensions (``latitude``/``lat``, ``longitude``/``lon``)."""
    lat = next((d for d in ("latitude", "lat") if d in obj.dims), None)
    lon = next((d for d in ("longitude", "lon") if d in obj.dims), None)
    if lat is None or lon is None:
        raise ValueError(f"expected latitude/longitude dimensions, got {tuple(obj.dims)}")
    return str(lat), str(lon)


def squeeze_extra(field: xr.DataArray, what: str) -> xr.DataArray:
    """``field`` as (lat, lon): size-1 extra dimensions (e.g. ``time``) are dropped.

    Raises
    ------
    ValueError
        If an extra dimension has more than one element.
    """
    lat, lon = lat_lon_dims(field)
    extra = [d for d in field.dims if d not in (lat, lon)]
    if any(field.sizes[d] != 1 for d in extra):
        raise ValueError(f"{what} must be 2-D (lat, lon), got sizes {dict(field.sizes)}")
    return field.isel({d: 0 for d in extra}).transpose(lat, lon)
