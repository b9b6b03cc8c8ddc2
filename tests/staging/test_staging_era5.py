"""ERA5 hourly → daily aggregates, and invariants → static fields."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smda.geo.grid import GLOBAL_025, BBox
from smda.geo.regrid import points_to_cells
from smda.ingest.staging.era5 import (
    GRAVITY,
    dominant_class,
    era5_daily,
    era5_static,
    required_times,
)

DAY = date(2024, 7, 5)
GRID = GLOBAL_025.subset(BBox(10, 45, 10.5, 45.5))  # 2 × 2 cells
LAT = np.array([45.5, 45.25, 45.0])
LON = np.array([10.0, 10.25, 10.5])


def _hourly(times: pd.DatetimeIndex, lat: np.ndarray = LAT, lon: np.ndarray = LON) -> xr.Dataset:
    """A tiny ERA5-like dataset whose daily values can be worked out by hand.

    With t the hour offset from 00:00 of DAY, i/j the point's lat/lon index:
    t2m = 270 + t + i + j; tp = 0.001·t m per hour; ssrd = 3600 J m-2 per hour;
    u10 = ±3 (sign alternating by hour), v10 = 4 → speed 5; sp = 1e5; d2m = 260; swvl1 = 0.3.
    """
    t = np.asarray((times - pd.Timestamp(DAY)) / pd.Timedelta(hours=1), dtype=np.float32)
    shape = (t.size, lat.size, lon.size)
    ij = np.add.outer(np.arange(lat.size), np.arange(lon.size)).astype(np.float32)
    sign = np.where(np.arange(t.size) % 2 == 0, 1.0, -1.0).astype(np.float32)
    fields = {
        "t2m": 270.0 + t[:, None, None] + ij[None],
        "tp": np.broadcast_to(0.001 * t[:, None, None], shape),
        "ssrd": np.full(shape, 3600.0),
        "u10": np.broadcast_to(3.0 * sign[:, None, None], shape),
        "v10": np.full(shape, 4.0),
        "sp": np.full(shape, 1e5),
        "d2m": np.full(shape, 260.0),
        "swvl1": np.full(shape, 0.3),
    }
    dims = ("time", "latitude", "longitude")
    return xr.Dataset(
        {k: (dims, np.asarray(v, dtype=np.float32)) for k, v in fields.items()},
        coords={
            "time": times.values,
            "latitude": lat,
            "longitude": lon,
            "expver": ("time", np.array(["0005"] * t.size)),
        },
    )


def test_daily_aggregates_match_hand_computed_values() -> None:
    ds = era5_daily(_hourly(required_times(DAY)), DAY, GRID)
    assert ds["t2m_mean"].dims == ("lat", "lon")
    np.testing.assert_allclose(ds["lat"], GRID.lats)
    np.testing.assert_allclose(ds["lon"], GRID.lons)
    # cell (0, 0): points i, j ∈ {0, 1} → mean(i + j) = 1; hours 0..23 of the day
    assert float(ds["t2m_mean"][0, 0]) == pytest.approx(271 + 11.5)
    assert float(ds["t2m_min"][0, 0]) == pytest.approx(271)
    assert float(ds["t2m_max"][0, 0]) == pytest.approx(271 + 23)
    assert float(ds["t2m_mean"][1, 1]) == pytest.approx(273 + 11.5)
    # exact UTC day: accumulations ending 01:00 … 24:00 → 0.001·(1 + … + 24) m = 300 mm
    np.testing.assert_allclose(ds["tp_sum"], 300.0, rtol=1e-5)
    np.testing.assert_allclose(ds["ssrd_sum"], 86400.0, rtol=1e-6)
    np.testing.assert_allclose(ds["wind_mean"], 5.0, rtol=1e-6)  # not |mean vector| = 4
    np.testing.assert_allclose(ds["sp_mean"], 1e5, rtol=1e-6)
    np.testing.assert_allclose(ds["d2m_mean"], 260.0, rtol=1e-6)
    np.testing.assert_allclose(ds["swvl1_mean"], 0.3, rtol=1e-6)
    assert ds["tp_sum"].attrs["units"] == "mm"
    assert ds["t2m_max"].attrs["cell_methods"].startswith("time: maximum")
    assert all(ds[v].dtype == np.float32 for v in ds.data_vars)
    assert ds.attrs["accumulation_period"] == "2024-07-05T00:00Z/2024-07-06T00:00Z"
    assert ds.attrs["expver"] == "0005" and ds.attrs["provisional"] == 1


def test_valid_date_window_uses_the_day_only() -> None:
    times = pd.date_range("2024-07-05", periods=24, freq="h")
    ds = era5_daily(_hourly(times), DAY, GRID, window="valid_date")
    np.testing.assert_allclose(ds["tp_sum"], 1000 * 0.001 * sum(range(24)), rtol=1e-5)
    assert ds.attrs["accumulation_period"] == "2024-07-04T23:00Z/2024-07-05T23:00Z"


def test_missing_hours_raise_and_are_named() -> None:
    full = _hourly(required_times(DAY))
    with pytest.raises(ValueError, match=r"lacks valid time\(s\) 2024-07-06T00:00Z"):
        era5_daily(full.isel(time=slice(0, 24)), DAY, GRID)
    gappy = full.drop_isel(time=[13, 17])
    with pytest.raises(ValueError, match="2024-07-05T13:00Z, 2024-07-05T17:00Z"):
        era5_daily(gappy, DAY, GRID)
    with pytest.raises(ValueError, match="lacks variable"):
        era5_daily(full.drop_vars("ssrd"), DAY, GRID)
    with pytest.raises(ValueError, match="unknown accumulation window"):
        era5_daily(full, DAY, GRID, window="local")  # type: ignore[arg-type]


def test_selects_the_day_out_of_a_longer_request() -> None:
    times = pd.date_range("2024-07-04", periods=72, freq="h")
    long = _hourly(times)
    ds = era5_daily(long, DAY, GRID)
    assert float(ds["t2m_min"][0, 0]) == pytest.approx(271)  # t = 0 at 00:00 of DAY
    assert "swvl1_mean" not in era5_daily(long.drop_vars("swvl1"), DAY, GRID)


def test_extremes_come_from_the_hourly_cell_series() -> None:
    """The daily max of the cell is the max of hourly 4-point means, not the mean of maxima."""
    ds = _hourly(required_times(DAY))
    t2m = np.full(ds["t2m"].shape, 280.0, dtype=np.float32)
    t2m[3, 0, 0] = 300.0  # the NW point peaks at 03 UTC …
    t2m[15, 1, 1] = 300.0  # … the SE point at 15 UTC
    ds["t2m"] = (ds["t2m"].dims, t2m)
    out = era5_daily(ds, DAY, GRID)
    assert float(out["t2m_max"][0, 0]) == pytest.approx(285.0)  # not 290
    assert float(out["t2m_mean"][0, 0]) == pytest.approx(280 + 2 * 5 / 24, rel=1e-6)


def test_antimeridian_points_in_provider_order() -> None:
    grid = GLOBAL_025.subset(BBox(179.5, 0, -179.5, 0.5))
    lon = np.array([179.5, 179.75, -180.0, -179.75, -179.5])  # jumps at the antimeridian
    lat = np.array([0.5, 0.25, 0.0])
    ds = _hourly(required_times(DAY), lat, lon)
    offset = np.arange(lon.size, dtype=np.float32) * 10
    ds["sp"] = ds["sp"] + offset[None, None, :]
    out = era5_daily(ds, DAY, grid)
    assert out["sp_mean"].shape == (2, 4)
    np.testing.assert_allclose(out["sp_mean"][0], 1e5 + (offset[:-1] + offset[1:]) / 2)
    np.testing.assert_allclose(out["lon"], [179.625, 179.875, -179.875, -179.625])


def test_twin_day_is_consistent() -> None:
    from smda_twin.world import World, WorldSpec

    region = BBox(178, 64, -178, 66)
    world = World(WorldSpec(seed=3, region=region, epoch=date(2024, 1, 1), spinup_days=5))
    grid = world.grid
    lat = np.arange(66.0, 63.99, -0.25)
    lon = (np.arange(178.0, 182.01, 0.25) + 180) % 360 - 180
    names = ["t2m", "d2m", "u10", "v10", "sp", "tp", "ssrd", "swvl1"]
    parts = []
    for d in (DAY, date(2024, 7, 6)):
        f = world.era5_hourly(d, lat, lon, names)
        times = pd.date_range(d, periods=24, freq="h")
        parts.append(
            xr.Dataset(
                {k: (("time", "latitude", "longitude"), v) for k, v in f.items()},
                coords={"time": times, "latitude": lat, "longitude": lon},
            )
        )
    hourly = xr.concat(parts, dim="time")
    out = era5_daily(hourly, DAY, grid)
    assert out["t2m_mean"].shape == grid.shape
    assert np.all(out["t2m_min"] <= out["t2m_mean"]) and np.all(out["t2m_mean"] <= out["t2m_max"])
    expected = points_to_cells(
        1000 * hourly["tp"].sel(time=slice("2024-07-05T01", "2024-07-06T00")).sum("time").values,
        lat,
        lon,
        grid,
    )
    np.testing.assert_allclose(out["tp_sum"], expected, rtol=1e-4, atol=1e-4)
    assert float(out["wind_mean"].min()) >= 0


# -- statics -------------------------------------------------------------------------------------
def _invariants() -> xr.Dataset:
    lat, lon = np.array([45.5, 45.25, 45.0]), np.array([10.0, 10.25, 10.5])
    z = np.full((3, 3), 1000.0 * GRAVITY)
    lsm = np.array([[1.0, 1.0, 0.2], [1.0, 1.0, 0.9], [0.0, 0.0, 0.0]])
    slt = np.array([[1.0, 1.0, 3.0], [2.0, 1.0, 5.0], [0.0, 0.0, 0.0]])
    cvh = np.array([[0.5, 0.1, 0.0], [0.5, 0.1, 0.0], [0.0, 0.0, 0.0]])
    tvh = np.array([[3.0, 5.0, 0.0], [3.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    cvl = np.full((3, 3), 0.5)
    tvl = np.array([[2.0, 4.0, 4.0], [2.0, 4.0, 4.0], [7.0, 2.0, 4.0]])
    dims = ("valid_time", "latitude", "longitude")
    fields = {"z": z, "lsm": lsm, "slt": slt, "cvh": cvh, "cvl": cvl, "tvh": tvh, "tvl": tvl}
    return xr.Dataset(
        {k: (dims, v[None].astype(np.float32)) for k, v in fields.items()},
        coords={"valid_time": [np.datetime64("2020-01-01")], "latitude": lat, "longitude": lon},
    )


def test_static_fields_and_categorical_dominance() -> None:
    st_ = era5_static(_invariants(), GRID)
    np.testing.assert_allclose(st_["orography"], 1000.0, rtol=1e-6)
    assert float(st_["lsm"][0, 0]) == pytest.approx(1.0)
    assert float(st_["lsm"][0, 1]) == pytest.approx((1 + 0.2 + 1 + 0.9) / 4)
    # NW cell: slt points 1, 1, 2, 1 → majority 1
    assert float(st_["slt"][0, 0]) == 1.0
    # NE cell: points 1 (lsm 1), 3 (lsm .2), 1 (lsm 1), 5 (lsm .9) → 1 by land weight
    assert float(st_["slt"][0, 1]) == 1.0
    # SW cell: 2 (lsm 1), 1 (lsm 1), 0, 0 (lsm 0) → 2 and 1 tie by land weight → lowest code
    assert float(st_["slt"][1, 0]) == 1.0
    # tvh NW cell: 3 (cvh .5) ×2 vs 5 (cvh .1) ×2 → 3 dominates by cover, not by count
    assert float(st_["tvh"][0, 0]) == 3.0
    # tvl SE cell: 4, 4, 2, 4 (equal cover) → 4; values stay codes (never a mean)
    assert float(st_["tvl"][1, 1]) == 4.0
    assert set(np.unique(st_["tvl"].values)) <= {2.0, 4.0, 7.0}
    assert st_["land"].dtype == bool
    # land fraction: NW 1, NE .775, SW .5 (≥ threshold), SE .475
    assert st_["land"].values.tolist() == [[True, True], [True, False]]
    with pytest.raises(ValueError, match="lack variable"):
        era5_static(_invariants().drop_vars("slt"), GRID)


@settings(max_examples=50, deadline=None)
@given(arrays(np.int8, (4, 3), elements=st.integers(0, 4)))
def test_dominant_class_is_the_mode_with_lowest_code_on_ties(codes: np.ndarray) -> None:
    out = dominant_class(codes.astype(float))
    for j in range(codes.shape[1]):
        counts = Counter(codes[:, j].tolist())
        top = max(counts.values())
        assert out[j] == min(k for k, v in counts.items() if v == top)


def test_dominant_class_ignores_nan_members() -> None:
    codes = np.array([[np.nan, np.nan], [3.0, np.nan], [np.nan, np.nan], [3.0, np.nan]])
    out = dominant_class(codes, np.ones_like(codes))
    assert out[0] == 3.0 and np.isnan(out[1])


def test_real_cds_hourly_precipitation(real_data: Path) -> None:
    """Daily tp from a real CDS accumulation file (STRUCTURE.md §3.1, Telangana, 0.25°)."""
    path = real_data / "era5/cds_2024_netcdf/era5_telangana_hourly_accum"
    raw = xr.open_dataset(path / "data_stream-oper_stepType-accum.nc").load()
    tp = raw["tp"].rename(valid_time="time")
    assert float(tp.sum()) == pytest.approx(42.9978, rel=1e-5)
    shape = tp.shape
    others = {
        name: (tp.dims, np.full(shape, value, dtype=np.float32))
        for name, value in {
            "t2m": 300.0,
            "d2m": 290.0,
            "u10": 1.0,
            "v10": 0.0,
            "sp": 95000.0,
            "ssrd": 1e6,
        }.items()
    }
    hourly = xr.Dataset({"tp": tp, **others})
    day = date(2023, 9, 3)
    grid = GLOBAL_025.subset(BBox(77, 15, 82, 20))
    out = era5_daily(hourly, day, grid)
    window = tp.sel(time=slice("2023-09-03T01:00", "2023-09-04T00:00"))
    assert window.sizes["time"] == 24
    expected = points_to_cells(
        1000 * window.sum("time").values, tp["latitude"].values, tp["longitude"].values, grid
    )
    np.testing.assert_allclose(out["tp_sum"], expected, rtol=1e-5, atol=1e-5)
    assert float(out["tp_sum"].max()) > 1.0  # a wet monsoon day somewhere in the box
    with pytest.raises(ValueError, match="2023-09-08T00:00Z"):
        era5_daily(hourly, date(2023, 9, 7), grid)  # the file ends at 23:00 of the 7th
