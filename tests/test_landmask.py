"""The land mask derived from ERA5's land definition (real TU Wien/ECMWF file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from smda.geo.grid import GLOBAL_025, BBox
from smda.geo.landmask import land_fraction, land_mask


def _real_land(real_data: Path) -> xr.DataArray:
    with xr.open_dataset(real_data / "era5" / "landmask_0.25_0.25.nc") as ds:
        return ds["land"].load()


def test_real_land_definition_facts(real_data: Path) -> None:
    land = _real_land(real_data)
    assert land.shape == (721, 1440)
    assert int((land == 1).sum()) == 244450 and int((land == 0).sum()) == 620990
    assert float(land.latitude[0]) == 90.0 and float(land.longitude[-1]) == 359.75


def test_land_mask_from_real_era5_land_definition(real_data: Path) -> None:
    land = _real_land(real_data)
    mask = land_mask(land, GLOBAL_025)
    frac = land_fraction(land, GLOBAL_025)
    assert mask.shape == (720, 1440) and mask.dtype == bool
    points = land.values
    corners = np.stack([points[:-1, :], points[1:, :]])  # (2, 720, 1440) north/south rows
    # reorder longitudes 0..360 → −180..180 to match the cell grid
    corners = np.roll(corners, -720, axis=2)
    quad = np.stack([corners, np.roll(corners, -1, axis=2)])
    all_land = np.all(quad == 1, axis=(0, 1))
    all_sea = np.all(quad == 0, axis=(0, 1))
    assert np.all(mask.values[all_land]) and not np.any(mask.values[all_sea])
    # ≥ 2 of 4 land points → land; the land fraction of the cells matches that of the points
    assert abs(int(mask.sum()) - 244450) / 244450 < 0.03
    # NaN south of 60° S gives no land there
    assert not mask.sel(lat=slice(-60.2, -90)).any()
    assert float(frac.sel(lat=48.125, lon=16.375)) == 1.0  # Vienna
    assert not bool(mask.sel(lat=0.125, lon=-150.125))  # mid-Pacific


def test_regional_mask_equals_global_slice_across_antimeridian(real_data: Path) -> None:
    land = _real_land(real_data)
    full = land_mask(land, GLOBAL_025).values
    sub_grid = GLOBAL_025.subset(BBox(170, -20, -170, -10))  # Fiji
    sub = land_mask(land, sub_grid).values
    rows, _ = GLOBAL_025.index_of(sub_grid)
    np.testing.assert_array_equal(sub, full[rows][:, sub_grid.cols])
    assert sub.any()


def test_threshold_is_validated(real_data: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="threshold"):
        land_mask(_real_land(real_data), GLOBAL_025, threshold=0.0)
