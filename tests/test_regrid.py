"""Regridding: conservative 0.1° → 0.25° and ERA5 points → cells."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.geo.regrid import conservative, points_to_cells

G01 = Grid.global_grid(0.1)


def _area_mean(values: np.ndarray, grid: Grid) -> float:
    w = grid.cell_area()[:, None] * np.ones((1, grid.ncols))
    ok = np.isfinite(values)
    return float((values * w)[ok].sum() / w[ok].sum())


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, (50, 50), elements=st.floats(0, 500)))
def test_conservative_preserves_area_weighted_mean(field: np.ndarray) -> None:
    src = G01.subset(BBox(-105, 30, -100, 35))
    dst = GLOBAL_025.subset(BBox(-105, 30, -100, 35))
    out = conservative(field, src, dst)
    assert _area_mean(out.astype(float), dst) == pytest.approx(
        _area_mean(field, src), rel=1e-5, abs=1e-6
    )


def test_conservative_global_and_constant() -> None:
    field = np.full(G01.shape, 3.5, dtype=np.float32)
    out = conservative(field, G01, GLOBAL_025)
    np.testing.assert_allclose(out, 3.5, rtol=1e-6)


def test_conservative_uses_partial_overlaps() -> None:
    src = G01.subset(BBox(0, 0, 0.5, 0.5))
    dst = GLOBAL_025.subset(BBox(0, 0, 0.5, 0.5))
    field = np.zeros(src.shape)
    field[:, 2] = 1.0  # the 0.2–0.3° column straddles two 0.25° cells
    out = conservative(field, src, dst)
    # the west 0.25° cell holds half of that column (0.05° of 0.25°)
    np.testing.assert_allclose(out[:, 0], 0.2, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], 0.2, rtol=1e-6)


def test_conservative_missing_values_and_coverage() -> None:
    src = G01.subset(BBox(0, 0, 0.5, 0.5))
    dst = GLOBAL_025.subset(BBox(0, 0, 0.5, 0.5))
    field = np.ones(src.shape)
    field[:3, :3] = np.nan  # most of the north-west 0.25° cell
    out = conservative(field, src, dst, min_coverage=0.5)
    assert np.isnan(out[0, 0]) and np.all(out[1:, 1:] == 1.0)


def test_conservative_across_antimeridian() -> None:
    dst = GLOBAL_025.subset(BBox(179, -1, -179, 1))
    field = np.broadcast_to(G01.lons[None, :], G01.shape)
    out = conservative(field, G01, dst)
    # 179.0–179.25 holds 0.1° cells centred 179.05, 179.15 and half of 179.25
    assert out[0, 0] == pytest.approx((179.05 + 179.15 + 0.5 * 179.25) / 2.5, abs=1e-4)
    assert out[0, -1] == pytest.approx(-(179.05 + 179.15 + 0.5 * 179.25) / 2.5, abs=1e-4)


def test_points_to_cells_is_mean_of_four_points() -> None:
    lat = np.arange(40.0, 29.75, -0.25)
    lon = np.arange(255.0, 265.25, 0.25)  # 0…360 convention
    field = lat[:, None] * 1000 + lon[None, :]
    dst = GLOBAL_025.subset(BBox(-105, 30, -95, 40))
    out = points_to_cells(field, lat, lon, dst)
    assert out.shape == (40, 40)
    assert out[0, 0] == pytest.approx(39.875 * 1000 + 255.125, rel=1e-6)


def test_points_to_cells_rejects_missing_points() -> None:
    lat = np.arange(40.0, 34.75, -0.25)
    lon = np.arange(-105.0, -94.75, 0.25)
    with pytest.raises(ValueError, match="does not cover"):
        points_to_cells(
            np.zeros((lat.size, lon.size)), lat, lon, GLOBAL_025.subset(BBox(-105, 30, -95, 40))
        )


def test_points_to_cells_sums_the_four_points_in_float64_bit_for_bit() -> None:
    """Across the antimeridian, with leading dims and NaNs: exactly (float32 of) the float64
    sum NW + NE + SW + SE over 4, so that staged files keep their bytes."""
    from smda.geo.regrid import _quad_index

    lat = np.arange(2.0, -2.25, -0.25)
    lon = np.concatenate([np.arange(178.0, 180.0, 0.25), np.arange(-180.0, -177.75, 0.25)])
    rng = np.random.default_rng(3)
    field = rng.normal(280.0, 10.0, (3, lat.size, lon.size)).astype(np.float32)
    field[1, 6, 5] = np.nan  # the point (0.5° N, 179.25° E)
    dst = GLOBAL_025.subset(BBox(179, -1, -179, 1))
    rn, rs, cw, ce = _quad_index(lat, lon, dst)
    nw = field[..., rn[:, None], cw[None, :]].astype(np.float64)
    expected = (
        (nw + field[..., rn[:, None], ce[None, :]])
        + field[..., rs[:, None], cw[None, :]]
        + field[..., rs[:, None], ce[None, :]]
    ) / 4.0
    out = points_to_cells(field, lat, lon, dst)
    assert out.dtype == np.float32 and out.shape == (3, 8, 8)
    assert np.isnan(out[1]).sum() == 4  # the four cells around the NaN point
    np.testing.assert_array_equal(out, expected.astype(np.float32))
