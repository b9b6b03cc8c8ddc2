"""The analysis grid: global geometry, aligned regional subsets, the antimeridian."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smda.geo.grid import GLOBAL_025, BBox, Grid


def test_global_grid_geometry() -> None:
    g = GLOBAL_025
    assert g.shape == (720, 1440)
    assert g.lats[0] == 89.875 and g.lats[-1] == -89.875
    assert g.lons[0] == -179.875 and g.lons[-1] == 179.875
    assert g.transform == (0.25, 0.0, -180.0, 0.0, -0.25, 90.0)
    assert g.crs == "EPSG:4326"


def test_demo_region_is_aligned_subset() -> None:
    sub = GLOBAL_025.subset(BBox(-105, 30, -95, 40))
    assert sub.shape == (40, 40)
    rows, cols = GLOBAL_025.index_of(sub)
    np.testing.assert_array_equal(GLOBAL_025.lats[rows], sub.lats)
    np.testing.assert_array_equal(GLOBAL_025.lons[cols], sub.lons)
    assert str(sub.bounds) == "-105,30,-95,40"


def test_subset_snaps_to_global_cells() -> None:
    sub = GLOBAL_025.subset(BBox(-105.1, 29.9, -94.9, 40.1))
    assert sub.lats[0] == 39.875 and sub.lons[0] == -104.875
    assert np.all(np.mod(sub.lats - 0.125, 0.25) == 0)


def test_antimeridian_region_wraps() -> None:
    sub = GLOBAL_025.subset(BBox(170, -10, -170, 10))
    assert sub.shape == (80, 80)
    assert sub.bounds.crosses_antimeridian
    assert sub.lons[39] == 179.875 and sub.lons[40] == -179.875
    assert np.all(np.diff(sub.lons_continuous) == 0.25)
    field = np.arange(720 * 1440, dtype=float).reshape(720, 1440)
    rows, cols = GLOBAL_025.index_of(sub)
    assert cols.start == 1400
    wrapped = np.take(field[rows], sub.cols, axis=1)
    assert wrapped[0, 40] == field[rows.start, 0]


def test_locate_points_in_region() -> None:
    sub = GLOBAL_025.subset(BBox(170, -10, -170, 10))
    _, c, ok = sub.locate(np.array([0.1, 0.1, 50.0]), np.array([-179.9, 179.9, 0.0]))
    assert ok.tolist() == [True, True, False]
    assert sub.lons[c[0]] == -179.875 and sub.lons[c[1]] == 179.875


@pytest.mark.parametrize(
    "text",
    ["1,2,3", "a,b,c,d", "0,50,10,40"],
)
def test_bad_regions_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=r"region|bounding box"):
        BBox.parse(text)


@given(
    west=st.integers(-720, 719).map(lambda x: x / 4),
    width=st.integers(1, 200).map(lambda x: x / 4),
    south=st.integers(-360, 300).map(lambda x: x / 4),
    height=st.integers(1, 40).map(lambda x: x / 4),
)
def test_subset_is_always_aligned_and_inside(
    west: float, width: float, south: float, height: float
) -> None:
    north = min(south + height, 90.0)
    east = (west + width + 180.0) % 360.0 - 180.0
    sub = GLOBAL_025.subset(BBox(west, south, east, north))
    assert GLOBAL_025.contains(sub)
    assert sub.nrows == round((north - south) / 0.25)
    assert sub.ncols == round(width / 0.25)
    assert np.all((sub.lats + 90 - 0.125) % 0.25 == 0)


def test_other_resolutions() -> None:
    g = Grid.global_grid(0.1)
    assert g.shape == (1800, 3600)
    assert abs(g.lats[0] - 89.95) < 1e-9
    with pytest.raises(ValueError, match="divide"):
        Grid.global_grid(0.7)
