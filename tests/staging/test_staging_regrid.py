"""The regridding helpers added for staging (smda.geo.regrid): point-centred conservative weights
and recognising cell-centre coordinates as a grid window."""

from __future__ import annotations

import numpy as np
import pytest

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.geo.regrid import (
    conservative,
    conservative_apply,
    conservative_weights,
    conservative_weights_points,
    surrounding_points,
    window_of_centres,
)

G01 = Grid.global_grid(0.1)


def test_window_of_centres_global_regional_and_wrapped() -> None:
    grid, lat_order, lon_order = window_of_centres(G01.lats[::-1], G01.lons, 0.1)
    assert grid == G01
    np.testing.assert_array_equal(lat_order, np.arange(1800)[::-1])
    np.testing.assert_array_equal(lon_order, np.arange(3600))
    sub = GLOBAL_025.subset(BBox(170, -10, -170, 10))
    lons = sub.lons % 360  # 0…360 convention, in the window's order
    rng = np.random.default_rng(1)
    perm = rng.permutation(lons.size)
    grid, _, lon_order = window_of_centres(sub.lats, lons[perm], 0.25)
    assert grid == sub
    np.testing.assert_allclose(lons[perm][lon_order], lons)
    with pytest.raises(ValueError, match="gap"):
        window_of_centres(sub.lats, np.delete(sub.lons, 5), 0.25)
    with pytest.raises(ValueError, match="repeat"):
        window_of_centres(sub.lats, np.r_[sub.lons, sub.lons[:1]], 0.25)
    with pytest.raises(ValueError, match="cell centres"):
        window_of_centres(sub.lats + 0.1, sub.lons, 0.25)


def test_point_weights_match_cell_weights_when_points_are_centres() -> None:
    """Points at 0.1° cell centres with res 0.1 are exactly the cell-centred 0.1° grid."""
    src = G01.subset(BBox(-3, 40, 3, 42))
    dst = GLOBAL_025.subset(BBox(-2, 40.5, 2, 41.5))
    rng = np.random.default_rng(2)
    field = rng.random(src.shape)
    field[rng.random(src.shape) < 0.2] = np.nan
    a = conservative_apply(
        field, conservative_weights_points(src.lats, src.lons, dst, res=0.1), min_coverage=0.3
    )
    b = conservative(field, src, dst, min_coverage=0.3, weights=conservative_weights(src, dst))
    np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)


def test_point_weights_at_the_pole_and_coverage_errors() -> None:
    lat = np.round(np.arange(900, 880, -1) * 0.1, 1)  # 90.0 … 88.1
    lon = np.round(np.arange(-1800, 1800) * 0.1, 1)
    dst = GLOBAL_025.subset(BBox(-180, 88.5, 180, 90))
    w_lat, w_lon = conservative_weights_points(lat, lon, dst, res=0.1)
    # the pole point's cell is half a cell (89.95 … 90)
    assert w_lat[0, 0] == pytest.approx(1 - np.sin(np.deg2rad(89.95)))
    out = conservative_apply(np.ones((lat.size, lon.size)), (w_lat, w_lon))
    np.testing.assert_allclose(out, 1.0)
    with pytest.raises(ValueError, match="do not cover"):
        conservative_weights_points(lat, lon[:100], dst, res=0.1)
    with pytest.raises(ValueError, match="overlap"):
        conservative_weights_points(lat, np.r_[lon, -180.0], dst, res=0.1)


def test_surrounding_points_order() -> None:
    lat = np.array([1.0, 0.75, 0.5])
    lon = np.array([0.0, 0.25, 0.5])
    field = np.arange(9.0).reshape(3, 3)
    dst = GLOBAL_025.subset(BBox(0, 0.5, 0.5, 1.0))
    quad = surrounding_points(field, lat, lon, dst)
    assert quad.shape == (4, 2, 2)
    np.testing.assert_array_equal(quad[:, 0, 0], [0, 1, 3, 4])  # NW, NE, SW, SE
    np.testing.assert_array_equal(quad[:, 1, 1], [4, 5, 7, 8])
