"""The land mask of the analysis grid, derived from ERA5's land–sea mask invariant.

ERA5's ``lsm`` (``land_sea_mask``) is a land fraction (0…1) at the 0.25° grid *points*; each
cell of the cell-centred analysis grid lies between four of those points. A cell is land when
the mean land fraction of its four points is at least ``threshold`` (0.5 by default, the
threshold of ECMWF's and TU Wien's land definitions). Points with missing values (NaN) make the
cell not land.

Science core: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from smda.geo.grid import Grid
from smda.geo.regrid import points_to_cells

__all__ = ["land_fraction", "land_mask"]


def _lat_lon_names(lsm: xr.DataArray) -> tuple[str, str]:
    lat = next((d for d in ("latitude", "lat") if d in lsm.dims), None)
    lon = next((d for d in ("longitude", "lon") if d in lsm.dims), None)
    if lat is None or lon is None:
        raise ValueError(f"lsm must have latitude/longitude dimensions, got {lsm.dims}")
    return lat, lon


def land_fraction(lsm: xr.DataArray, grid: Grid) -> xr.DataArray:
    """Land fraction (0…1) of each cell of ``grid``, from ERA5 ``lsm`` at grid points.

    Parameters
    ----------
    lsm:
        ERA5 land–sea mask (dims latitude, longitude; extra size-1 dims such as
        ``valid_time`` are dropped). Longitudes may be 0…360 or −180…180.
    grid:
        Target cell-centred grid at the same 0.25° spacing.

    Returns
    -------
    DataArray ``land_fraction`` (lat, lon), float32, NaN where a surrounding point is NaN.
    """
    lat_name, lon_name = _lat_lon_names(lsm)
    extra = [d for d in lsm.dims if d not in (lat_name, lon_name)]
    if any(lsm.sizes[d] != 1 for d in extra):
        raise ValueError(
            f"lsm must be 2-D (or have size-1 extra dims), got sizes {dict(lsm.sizes)}"
        )
    field = lsm.isel({d: 0 for d in extra}).transpose(lat_name, lon_name)
    values = points_to_cells(field.values, field[lat_name].values, field[lon_name].values, grid)
    return xr.DataArray(
        values,
        dims=("lat", "lon"),
        coords={"lat": grid.lats, "lon": grid.lons},
        name="land_fraction",
        attrs={
            "units": "1",
            "long_name": "land fraction of the cell (mean of the 4 ERA5 lsm points)",
        },
    )


def land_mask(lsm: xr.DataArray, grid: Grid, *, threshold: float = 0.5) -> xr.DataArray:
    """Boolean land mask (lat, lon) of ``grid``: land fraction ≥ ``threshold``."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    frac = land_fraction(lsm, grid)
    mask = xr.DataArray(
        np.nan_to_num(frac.values, nan=-1.0) >= threshold,
        dims=frac.dims,
        coords=frac.coords,
        name="land",
        attrs={
            "long_name": "land mask",
            "threshold_land_fraction": threshold,
            "based_on_variable": "lsm",
        },
    )
    return mask
