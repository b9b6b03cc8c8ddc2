"""The analysis grid: global geometry, aligned regional subsets, the antimeridian."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smda.geo.grid import GLOBAL_025, REGION_FORM, BBox, Grid, region_grid


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
    ("text", "problem"),
    [
        ("1,2,3", "is not four numbers"),
        ("1,2,3,4,5", "is not four numbers"),
        ("a,b,c,d", "is not four numbers"),
        ("-105,30,200,35", "east=200 is outside [-180, 180]"),
        ("-190,30,-95,35", "west=-190 is outside [-180, 180]"),
        ("-105,-95,-95,35", "south=-95 is outside [-90, 90]"),
        ("-105,30,-95,91", "north=91 is outside [-90, 90]"),
        ("0,50,10,40", "south=50 is not below north=40"),
        ("-105,30,-95,30", "south=30 is not below north=30"),
        ("-105,30,-105,35", "west and east are both -105"),
        ("nan,30,-95,35", "west=nan is not a finite number"),
        ("-105,30.01,-95,30.02", "contains no 0.25° grid cell centre"),
        ("-100.02,30,-100.01,35", "contains no 0.25° grid cell centre"),
    ],
)
def test_bad_regions_say_what_is_wrong_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        BBox.parse(text)
    message = str(info.value)
    assert problem in message
    assert REGION_FORM in message and "\n" not in message


def test_a_box_names_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        BBox(200, 40, 200, 30)
    assert "west=200 is outside" in str(info.value) and "east=200 is outside" in str(info.value)
    assert "south=40 is not below north=30" in str(info.value)
    assert "west and east are both 200" in str(info.value)


def test_region_grid_rejects_a_box_without_cells() -> None:
    with pytest.raises(ValueError, match=r"contains no 0\.25° grid cell centre"):
        region_grid(BBox(-100.02, 30.01, -100.01, 30.02))


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("170,-20,-170,0", (80, 80)),  # crosses the antimeridian
        ("179.8,-0.2,-179.8,0.2", (2, 2)),  # a narrow box across it: a cell either side
        ("-180,-90,180,90", (720, 1440)),
        ("-99.9,35.1,-99.8,35.2", (1, 1)),  # narrower than a cell but holds a centre
    ],
)
def test_valid_regions_parse(text: str, shape: tuple[int, int]) -> None:
    assert region_grid(BBox.parse(text)).shape == shape


def test_antimeridian_region_still_parses() -> None:
    box = BBox.parse("170,-20,-170,0")
    assert box.crosses_antimeridian and box.width == 20
    sub = region_grid(box)
    assert sub.lons[0] == 170.125 and sub.lons[-1] == -170.125


def test_bounds_of_a_band_of_every_longitude_are_a_valid_box() -> None:
    band = Grid(0.25, 200, 0, 40, 1440)
    assert str(band.bounds) == "-180,30,180,40"
    assert GLOBAL_025.subset(band.bounds) == band


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
