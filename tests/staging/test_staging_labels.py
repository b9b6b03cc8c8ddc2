"""Label products: ERA5-Land 0.1° points → 0.25° (swvl1, de-accumulation) and GLDAS daily."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.ingest.staging.labels import deaccumulate, era5land_daily, gldas_daily

DAY = date(2024, 7, 5)


def _points(bbox: BBox) -> tuple[np.ndarray, np.ndarray]:
    """ERA5-Land 0.1° points (multiples of 0.1°) covering ``bbox`` with a point of margin."""
    top = min(round(bbox.north * 10) + 1, 900)
    lat = np.round(np.arange(top, round(bbox.south * 10) - 2, -1) * 0.1, 1)
    west = round(bbox.west * 10) - 1
    lon = np.round((np.arange(west, west + round(bbox.width * 10) + 3) * 0.1 + 180) % 360 - 180, 1)
    return lat, lon


def _dataset(fields: dict[str, np.ndarray], times: pd.DatetimeIndex, lat, lon) -> xr.Dataset:
    dims = ("time", "latitude", "longitude")
    return xr.Dataset(
        {k: (dims, v.astype(np.float32)) for k, v in fields.items()},
        coords={"time": times, "latitude": lat, "longitude": lon},
    )


def _overlap_weights(lat: np.ndarray, lon: np.ndarray, dst: Grid) -> np.ndarray:
    """Area of each point's 0.1° cell inside ``dst`` (sphere, relative units), (lat, lon)."""
    north, south = dst.lats[0] + dst.res / 2, dst.lats[-1] - dst.res / 2
    lo, hi = np.clip(lat - 0.05, south, north), np.clip(lat + 0.05, south, north)
    w_lat = np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo))
    west = dst.lons_continuous[0] - dst.res / 2
    east = west + dst.ncols * dst.res
    x = west + (lon - west + 0.05) % 360 - 0.05  # continuous, in dst's frame
    w_lon = np.clip(np.minimum(x + 0.05, east) - np.maximum(x - 0.05, west), 0, None)
    return w_lat[:, None] * w_lon[None, :]


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([BBox(10, 40, 12, 41.5), BBox(179, 60, -179.5, 61), BBox(-5, 88, 5, 90)]),
    st.data(),
)
def test_swvl1_regridding_preserves_the_area_weighted_mean(bbox: BBox, data: st.DataObject) -> None:
    dst = GLOBAL_025.subset(bbox)
    lat, lon = _points(bbox)
    values = data.draw(arrays(np.float64, (lat.size, lon.size), elements=st.floats(0.0, 0.6)))
    hourly = np.broadcast_to(values, (24, *values.shape))
    ds = _dataset({"swvl1": hourly}, pd.date_range(DAY, periods=24, freq="h"), lat, lon)
    out = era5land_daily(ds, DAY, dst)["swvl1_mean"].values.astype(float)
    w = dst.cell_area()[:, None] * np.ones((1, dst.ncols))
    source_w = _overlap_weights(lat, lon, dst)
    expected = float((values * source_w).sum() / source_w.sum())
    assert float((out * w).sum() / w.sum()) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_constant_field_sea_points_and_coverage() -> None:
    bbox = BBox(10, 40, 10.5, 40.5)
    dst = GLOBAL_025.subset(bbox)
    lat, lon = _points(bbox)
    sm = np.full((24, lat.size, lon.size), 0.25)
    sm[:, :, :3] = np.nan  # points 9.9–10.1 are sea: western cells keep 0.1° of 0.25° land
    ds = _dataset({"swvl1": sm}, pd.date_range(DAY, periods=24, freq="h"), lat, lon)
    out = era5land_daily(ds, DAY, dst)["swvl1_mean"]
    assert out.attrs["units"] == "m3 m-3"
    assert np.isnan(out.values[:, 0]).all()
    np.testing.assert_allclose(out.values[:, 1], 0.25, rtol=1e-6)
    loose = era5land_daily(ds, DAY, dst, min_coverage=0.05)["swvl1_mean"]
    np.testing.assert_allclose(loose.values, 0.25, rtol=1e-6)  # sea excluded, not averaged in


def test_deaccumulation_of_from_midnight_totals() -> None:
    times = pd.date_range("2024-07-04T22:00", "2024-07-06T01:00", freq="h")
    hourly_amount = np.arange(times.size, dtype=float) + 1.0  # amount in the hour ending at t
    acc = np.zeros(times.size)
    running = 0.0
    for k, t in enumerate(times):
        running = hourly_amount[k] if t.hour == 1 else running + hourly_amount[k]
        acc[k] = running
    da = xr.DataArray(acc, dims="time", coords={"time": times})
    back = deaccumulate(da)
    assert np.isnan(back.values[0])  # 22:00 of D−1 has no predecessor in the input
    np.testing.assert_allclose(back.values[1:], hourly_amount[1:])
    assert float(da.sel(time="2024-07-06T00:00")) == pytest.approx(
        hourly_amount[(times > "2024-07-05T00:00") & (times <= "2024-07-06T00:00")].sum()
    )


def test_daily_totals_from_era5land_accumulations() -> None:
    bbox = BBox(10, 40, 10.5, 40.5)
    dst = GLOBAL_025.subset(bbox)
    lat, lon = _points(bbox)
    times = pd.date_range("2024-07-04T00:00", "2024-07-06T00:00", freq="h")
    rate = 0.0001 * (1 + (times.hour.values % 5))  # m per hour
    acc = np.zeros(times.size)
    for k, t in enumerate(times):
        acc[k] = rate[k] if t.hour == 1 else (acc[k - 1] + rate[k] if k else rate[k])
    shape = (times.size, lat.size, lon.size)
    fields = {
        "swvl1": np.full(shape, 0.3),
        "tp": np.broadcast_to(acc[:, None, None], shape),
        "ssrd": np.broadcast_to(3.6e6 * acc[:, None, None], shape),
    }
    ds = _dataset(fields, times, lat, lon)
    day = era5land_daily(ds, DAY, dst)
    utc_day = (times > "2024-07-05T00:00") & (times <= "2024-07-06T00:00")
    np.testing.assert_allclose(day["tp_sum"], 1000 * rate[utc_day].sum(), rtol=1e-5)
    assert 1000 * acc[-1] == pytest.approx(1000 * rate[utc_day].sum())  # = the 00 UTC value
    np.testing.assert_allclose(day["ssrd_sum"], 3.6e6 * rate[utc_day].sum(), rtol=1e-5)
    valid_date = era5land_daily(ds, DAY, dst, window="valid_date")
    ending_23 = (times >= "2024-07-05T00:00") & (times <= "2024-07-05T23:00")
    np.testing.assert_allclose(valid_date["tp_sum"], 1000 * rate[ending_23].sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="2024-07-04T23:00Z"):  # valid_date needs 23 UTC of D−1
        era5land_daily(ds.sel(time=slice("2024-07-05", None)), DAY, dst, window="valid_date")
    with pytest.raises(ValueError, match="2024-07-06T00:00Z"):
        era5land_daily(ds.sel(time=slice(None, "2024-07-05T23:00")), DAY, dst)
    with pytest.raises(ValueError, match="lacks variable swvl1"):
        era5land_daily(ds.drop_vars("swvl1"), DAY, dst)


def test_twin_era5land_day() -> None:
    from smda_twin.world import World, WorldSpec

    region = BBox(179, 64, -179, 66)
    world = World(WorldSpec(seed=3, region=region, epoch=date(2024, 1, 1), spinup_days=5))
    lat, lon = _points(region)
    parts = []
    for d in (DAY, DAY + timedelta(days=1)):
        f = world.era5land_hourly(d, lat, lon, ["swvl1", "tp"])
        parts.append(_dataset(f, pd.date_range(d, periods=24, freq="h"), lat, lon))
    ds = xr.concat(parts, dim="time")
    out = era5land_daily(ds, DAY, world.grid)
    sm = out["swvl1_mean"].values
    assert sm.shape == world.grid.shape and np.isfinite(sm).any()
    assert np.nanmin(sm) >= 0 and np.nanmax(sm) <= 1
    assert np.all(out["tp_sum"].values[np.isfinite(sm)] >= 0)


# -- GLDAS --------------------------------------------------------------------------------------
GLDAS_LAT = -59.875 + 0.25 * np.arange(600)
GLDAS_LON = -179.875 + 0.25 * np.arange(1440)


def _gldas(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(
        values[None].astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={"time": [np.datetime64("2016-01-01T03:00")], "lat": GLDAS_LAT, "lon": GLDAS_LON},
        attrs={"units": "m3 m-3"},
    )


def test_gldas_daily_mean_on_the_global_grid() -> None:
    base = np.full((600, 1440), np.nan)
    base[432, 785] = 0.26  # Vienna (48.125 N, 16.375 E)
    base[0, 0] = 0.1  # −59.875 N, −179.875 E
    fields = [_gldas(base + 0.01 * k) for k in range(8)]
    out = gldas_daily(fields, GLOBAL_025)
    assert out.shape == (720, 1440) and out.attrs["units"] == "m3 m-3"
    row = GLOBAL_025.locate(np.array([48.125]), np.array([16.375]))
    assert float(out[row[0][0], row[1][0]]) == pytest.approx(0.26 + 0.035, rel=1e-6)
    assert float(out.sel(lat=-59.875, lon=-179.875)) == pytest.approx(0.135, rel=1e-6)
    assert bool(out.sel(lat=slice(-60, -90)).isnull().all())  # south of GLDAS's grid
    assert int(np.isfinite(out.values).sum()) == 2


def test_gldas_steps_units_and_coverage() -> None:
    fields = [_gldas(np.full((600, 1440), 0.3)) for _ in range(8)]
    with pytest.raises(ValueError, match="7 of 8"):
        gldas_daily(fields[:7], GLOBAL_025)
    np.testing.assert_allclose(
        gldas_daily(fields[:6], GLOBAL_025, min_steps=6).sel(lat=slice(89, -59)), 0.3
    )
    kg = fields[0].assign_attrs(units="kg m-2")
    with pytest.raises(ValueError, match="kg m-2"):
        gldas_daily([kg] * 8, GLOBAL_025)
    europe = [f.sel(lat=slice(30, 60), lon=slice(-10, 30)) for f in fields]
    grid = GLOBAL_025.subset(BBox(0, 40, 10, 50))
    np.testing.assert_allclose(gldas_daily(europe, grid), 0.3)
    with pytest.raises(ValueError, match="does not cover"):
        gldas_daily(europe, GLOBAL_025.subset(BBox(170, 40, -170, 50)))


def test_gldas_twin_antimeridian_region() -> None:
    from smda_twin.world import World, WorldSpec

    region = BBox(178, 64, -178, 66)
    world = World(WorldSpec(seed=3, region=region, epoch=date(2024, 1, 1), spinup_days=5))
    fields = []
    for hour in range(0, 24, 3):
        raw = world.gldas_3h(datetime(2024, 7, 5, hour, tzinfo=UTC))
        fields.append(_gldas(np.where(raw == -9999.0, np.nan, raw / 100.0)))
    out = gldas_daily(fields, world.grid)
    assert out.shape == world.grid.shape
    land = world.soil_properties()["land"].values
    assert np.isfinite(out.values[land]).all() and np.isnan(out.values[~land]).all()
    np.testing.assert_allclose(out["lon"], world.grid.lons)


def test_real_gldas_granule(real_data: Path) -> None:
    """The real GLDAS granule (STRUCTURE.md §4.1), as one step: Vienna = 26.088 kg m-2."""
    path = real_data / "gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4"
    with xr.open_dataset(path) as raw:
        sm = (raw["SoilMoi0_10cm_inst"] / 100.0).load().assign_attrs(units="m3 m-3")
    out = gldas_daily([sm], GLOBAL_025, min_steps=1)
    assert float(out.sel(lat=48.125, lon=16.375)) == pytest.approx(0.26088, rel=1e-4)
    assert float(out.sel(lat=40.125, lon=20.125)) == pytest.approx(0.31668, rel=1e-4)
    assert int(np.isfinite(out.values).sum()) == 243883
