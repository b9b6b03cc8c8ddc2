"""MSWEP 0.1° → 0.25° conservative regridding."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.ingest.staging.precipitation import mswep_to_grid, mswep_weights

G01 = Grid.global_grid(0.1)


def _field(values: np.ndarray, window: Grid) -> xr.DataArray:
    return xr.DataArray(
        values, dims=("lat", "lon"), coords={"lat": window.lats, "lon": window.lons}
    )


def _area_mean(values: np.ndarray, grid: Grid) -> float:
    w = np.broadcast_to(grid.cell_area()[:, None], grid.shape)
    ok = np.isfinite(values)
    return float((values * w)[ok].sum() / w[ok].sum())


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([BBox(-105, 30, -100, 35), BBox(177.5, -5, -177.5, 0), BBox(0, 80, 5, 85)]),
    st.data(),
)
def test_area_weighted_mean_is_preserved(bbox: BBox, data: st.DataObject) -> None:
    src, dst = G01.subset(bbox), GLOBAL_025.subset(bbox)
    values = data.draw(arrays(np.float32, src.shape, elements=st.floats(0, 300, width=32)))
    out = mswep_to_grid(_field(values, src), dst)
    assert out.shape == dst.shape and out.dtype == np.float32
    assert _area_mean(out.values.astype(float), dst) == pytest.approx(
        _area_mean(values.astype(float), src), rel=1e-5, abs=1e-5
    )


def test_coordinate_order_and_convention_do_not_matter() -> None:
    rng = np.random.default_rng(0)
    src = G01.subset(BBox(178, -2, -178, 2))  # crosses the antimeridian
    values = rng.gamma(0.5, 4.0, src.shape).astype(np.float32)
    dst = GLOBAL_025.subset(BBox(178.5, -1, -178.5, 1))
    reference = mswep_to_grid(_field(values, src), dst)
    flipped = _field(values, src).isel(lat=slice(None, None, -1))  # ascending latitude
    shuffled = flipped.isel(lon=rng.permutation(src.ncols))
    shuffled = shuffled.assign_coords(lon=shuffled["lon"] % 360)  # 0…360 convention
    np.testing.assert_array_equal(mswep_to_grid(shuffled, dst), reference)
    np.testing.assert_allclose(reference["lon"], dst.lons)
    assert reference.attrs["units"] == "mm day-1"


def test_partial_cells_and_missing_values() -> None:
    src = G01.subset(BBox(0, 0, 0.5, 0.5))
    dst = GLOBAL_025.subset(BBox(0, 0, 0.5, 0.5))
    values = np.zeros(src.shape, dtype=np.float32)
    values[:, 2] = 10.0  # the 0.2–0.3° column straddles two 0.25° cells
    out = mswep_to_grid(_field(values, src), dst)
    np.testing.assert_allclose(out, 2.0, rtol=1e-6)  # 10 × 0.05/0.25 on both sides
    values[:3, :3] = np.nan
    out = mswep_to_grid(_field(values, src), dst, min_coverage=0.5)
    assert np.isnan(out[0, 0]) and np.isfinite(out[1, 1])


def test_rejects_fields_that_are_not_on_the_grid_or_do_not_cover() -> None:
    src = G01.subset(BBox(0, 0, 1, 1))
    field = _field(np.ones(src.shape, np.float32), src)
    with pytest.raises(ValueError, match="cell centres"):
        mswep_to_grid(field.assign_coords(lon=field["lon"] + 0.03), GLOBAL_025.subset(src.bounds))
    with pytest.raises(ValueError, match="does not cover"):
        mswep_to_grid(field, GLOBAL_025.subset(BBox(0, 0, 2, 1)))
    with pytest.raises(ValueError, match="gap"):
        mswep_to_grid(field.drop_isel(lon=[4]), GLOBAL_025.subset(BBox(0, 0, 0.25, 0.25)))


def test_global_twin_day_and_weight_cache() -> None:
    from smda_twin.world import World, WorldSpec

    world = World(WorldSpec(seed=5, region=BBox(-1, -1, 1, 1), epoch=date(2024, 1, 1)))
    window = G01.subset(BBox(-30, -20, 30, 20))
    values = world.mswep_daily(date(2024, 2, 1), window)
    dst = GLOBAL_025.subset(BBox(-30, -20, 30, 20))
    mswep_weights.cache_clear()
    out = mswep_to_grid(_field(values, window), dst)
    again = mswep_to_grid(_field(values * 2, window), dst)
    assert mswep_weights.cache_info().hits == 1 and mswep_weights.cache_info().misses == 1
    np.testing.assert_allclose(again, 2 * out, rtol=1e-6)
    assert _area_mean(out.values.astype(float), dst) == pytest.approx(
        _area_mean(values.astype(float), window), rel=1e-5
    )
    assert float(out.min()) >= 0.0


@pytest.mark.parametrize(
    "bbox", [BBox(-105, 30, -95, 40), BBox(178.5, -1, -178.5, 1), BBox(-180, -90, 180, 90)]
)
def test_only_the_overlapping_block_is_regridded(bbox: BBox) -> None:
    from smda.geo.regrid import conservative

    rng = np.random.default_rng(1)
    values = rng.gamma(0.5, 4.0, G01.shape).astype(np.float32)
    values[rng.random(G01.shape) < 0.01] = np.nan
    dst = GLOBAL_025.subset(bbox)
    reference = conservative(values, G01, dst, weights=mswep_weights(G01, dst))
    out = mswep_to_grid(_field(values, G01), dst)  # a global 0.1° field, as MSWEP delivers
    np.testing.assert_allclose(out.values, reference, rtol=1e-6, equal_nan=True)
    assert np.array_equal(np.isnan(out.values), np.isnan(reference))
