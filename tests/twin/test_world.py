"""The synthetic world: reproducible, physically plausible, with products of known error."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smda.geo.ease2 import M09
from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda_twin.geography import LAND_TABLE, land_table
from smda_twin.precipitation import MSWEP_GRID
from smda_twin.smap import FLAG_FILL, FLOAT_FILL, SmapSimulator
from smda_twin.world import DEMO_REGION, World, WorldSpec

EPOCH = date(2015, 1, 1)
SMALL = BBox(-100, 35, -98, 37)
# ERA5 points over the demo region (latitude decreasing, as the CDS returns them)
LAT = np.arange(40.0, 29.99, -0.25)
LON = np.arange(-105.0, -94.99, 0.25)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=42, region=DEMO_REGION, epoch=EPOCH))


def _small(seed: int) -> World:
    return World(WorldSpec(seed=seed, region=SMALL, epoch=EPOCH))


# -- reproducibility ------------------------------------------------------------------------------


def _fingerprint(w: World, day: date) -> dict[str, np.ndarray]:
    grid01 = MSWEP_GRID.subset(SMALL)
    met = w.era5_hourly(day, LAT[10:20], LON[20:30], ["t2m", "tp", "ssrd", "swvl1"])
    smap = w.smap_l3e(day)
    station = w.stations()[0]
    return {
        **met,
        "mswep": w.mswep_daily(day, grid01),
        "truth": w.truth(day, day).values,
        "smap": np.stack(
            [p["soil_moisture"][np.ix_(smap.rows, smap.cols)] for p in (smap.am, smap.pm)]
        ),
        "gldas": w.gldas_3h(datetime(day.year, day.month, day.day, 6)),
        "station": w.station_hourly(station, day, day)["soil_moisture"].to_numpy(),
        "era5land": w.era5land_hourly(day, [36.0, 35.9], [-99.0, -98.9], ["swvl1"])["swvl1"],
    }


def test_same_spec_gives_identical_world_and_other_seed_differs() -> None:
    day = date(2015, 6, 20)
    a, b, c = (
        _fingerprint(_small(5), day),
        _fingerprint(_small(5), day),
        _fingerprint(_small(6), day),
    )
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    differs = [name for name in a if not np.array_equal(a[name], c[name], equal_nan=True)]
    assert set(differs) == set(a), f"not seed-dependent: {set(a) - set(differs)}"


def test_a_day_does_not_depend_on_what_was_asked_before() -> None:
    day = date(2015, 6, 20)
    fresh = _fingerprint(_small(5), day)
    busy = _small(5)
    for d in (day + timedelta(days=9), day - timedelta(days=3), day + timedelta(days=1)):
        _fingerprint(busy, d)
    busy.truth(date(2015, 1, 1), date(2016, 3, 1))
    again = _fingerprint(busy, day)
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], again[name], err_msg=name)


def test_forgetting_the_days_before_one_frees_their_blocks_and_keeps_every_value() -> None:
    early, late = date(2015, 6, 1), date(2016, 2, 1)  # in the first and the second block
    fresh = _small(5)
    expected = {d: fresh.truth(d, d).values for d in (early, late)}
    walked = _small(5)
    walked.truth(early, late)
    chains = (walked._truth.chain, walked._era5land.chain, walked._gldas.chain)
    walked.product_daily("gldas", early, late)
    assert len(walked._truth.chain._values) >= 2  # (the check can fail: without it, ≥ 2)
    walked.forget_before(late)
    assert [len(c._values) for c in chains] == [1, 0, 1]  # era5land was never asked
    np.testing.assert_array_equal(walked.truth(late, late).values, expected[late])
    np.testing.assert_array_equal(walked.truth(early, early).values, expected[early])  # anew


def test_regional_fields_are_windows_of_larger_requests(world: World) -> None:
    day = date(2015, 8, 1)
    big = world.era5_hourly(day, LAT, LON, ["t2m", "tp"])
    part = world.era5_hourly(day, LAT[5:9], LON[3:8], ["t2m", "tp"])
    for k in big:
        np.testing.assert_allclose(part[k], big[k][:, 5:9, 3:8], rtol=1e-5, atol=1e-7)
    grid01 = MSWEP_GRID.subset(DEMO_REGION)
    sub = MSWEP_GRID.subset(BBox(-101, 33, -99, 34))
    rows, cols = grid01.index_of(sub)
    np.testing.assert_allclose(
        world.mswep_daily(day, sub),
        world.mswep_daily(day, grid01)[rows, cols],
        rtol=1e-5,
        atol=1e-5,
    )


# -- geography --------------------------------------------------------------------------------------


def test_land_sea_mask_is_earth_like(world: World) -> None:
    inv = world.invariants(LAT, LON)
    assert np.all(inv["lsm"] == 1.0), "the demo region must be all land"
    pacific = world.invariants(np.arange(10.0, -10.1, -0.25), np.arange(-160.0, -140.0, 0.25))
    assert np.all(pacific["lsm"] == 0.0)
    assert np.all(pacific["slt"] == 0) and np.all(pacific["cvh"] == 0) and np.all(pacific["z"] == 0)
    assert set(np.unique(inv["slt"])) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    assert np.all((inv["cvh"] + inv["cvl"] <= 1.0 + 1e-6) & (inv["cvh"] >= 0))
    # coasts are fractional somewhere (Gulf of Mexico)
    gulf = world.invariants(np.arange(31.0, 27.0, -0.25), np.arange(-98.0, -88.0, 0.25))["lsm"]
    assert np.any((gulf > 0.05) & (gulf < 0.95)) and gulf.min() == 0.0 and gulf.max() == 1.0
    assert world.soil_properties()["land"].all()


def test_land_table_derived_from_real_era5_mask(real_data: Path) -> None:
    assert LAND_TABLE.stat().st_size < 100_000
    with xr.open_dataset(real_data / "era5" / "landmask_0.25_0.25.nc") as ds:
        land = np.roll(ds["land"].values.astype(np.float64), -720, axis=1)
        lat = ds["latitude"].values.astype(np.float64)
    land = np.where(np.isnan(land), np.where(lat[:, None] < -70.0, 1.0, 0.0), land)
    ext = np.concatenate([land, land[:, :1]], axis=1)
    w = np.array([0.5, 1, 1, 1, 0.5]) / 4
    derived = sum(
        w[a] * w[b] * ext[a : a + 720 : 4][:180, b : b + 1440 : 4][:, :360]
        for a in range(5)
        for b in range(5)
    )
    np.testing.assert_allclose(land_table(), derived, atol=0.5 / 255 + 1e-9)


# -- weather ------------------------------------------------------------------------------------------


def test_weather_is_physically_plausible(world: World) -> None:
    day = date(2015, 7, 15)
    f = world.era5_hourly(day, LAT, LON, ["t2m", "d2m", "ssrd", "sp", "u10", "v10", "z"])
    t2m = f["t2m"]
    assert t2m.min() > 280 and t2m.max() < 320
    assert np.all(f["d2m"] <= t2m)
    # on average over days, the maximum comes in the afternoon (local solar time), the minimum
    # around dawn
    days = [
        world.era5_hourly(day + timedelta(days=i), LAT[::8], LON, ["t2m"])["t2m"] for i in range(10)
    ]
    series = np.concatenate(days)  # (240, lat, lon), hourly from 00 UTC
    lst = (np.arange(240)[:, None] + LON[None, :] / 15.0) % 24  # (240, lon)
    for j in range(0, LON.size, 10):
        bins = np.floor(lst[:, j]).astype(int)
        mean = np.array([series[bins == h, :, j].mean() for h in range(24)])
        assert 13 <= int(np.argmax(mean)) <= 17
        assert 3 <= int(np.argmin(mean)) <= 8
    # no sunshine in the hour before local midnight, plenty around local noon
    lst = (np.arange(24)[:, None] - 0.5 + LON[None, :] / 15.0) % 24  # middle of the hour
    night = (lst > 21) | (lst < 3)
    noon = np.abs(lst - 12) < 1
    ssrd = f["ssrd"]
    assert np.all(ssrd[np.broadcast_to(night[:, None, :], ssrd.shape)] == 0)
    assert ssrd[np.broadcast_to(noon[:, None, :], ssrd.shape)].min() > 0.5e6
    # pressure falls with altitude
    z = f["z"][0].ravel()
    sp = f["sp"].mean(axis=0).ravel()
    assert np.corrcoef(z, sp)[0, 1] < -0.9
    speed = np.hypot(f["u10"], f["v10"])
    assert speed.max() < 40 and speed.mean() > 1


def test_seasons_and_latitudes(world: World) -> None:
    lat = np.array([60.0, 35.0, 0.0, -35.0])
    lon = np.array([20.0])
    jan = world.era5_hourly(date(2015, 1, 15), lat, lon, ["t2m"])["t2m"].mean(axis=0)[:, 0]
    jul = world.era5_hourly(date(2015, 7, 15), lat, lon, ["t2m"])["t2m"].mean(axis=0)[:, 0]
    assert jul[0] > jan[0] + 10 and jul[1] > jan[1] + 5  # northern summer
    assert jan[3] > jul[3]  # southern summer
    assert abs(jul[2] - jan[2]) < 8 and jan[2] > 290  # tropics


def test_true_precipitation_is_intermittent_and_correlated(world: World) -> None:
    grid01 = MSWEP_GRID.subset(DEMO_REGION)
    p = world.precipitation.true_daily(date(2015, 1, 1).toordinal(), 365, grid01)
    wet = (p >= 1.0).mean(axis=0)
    assert 0.08 < wet.mean() < 0.4, "wet-day fraction (P ≥ 1 mm)"
    assert 0.4 < p.mean() < 4.0, "mean precipitation (mm/day)"
    assert (p == 0).mean() > 0.5, "most cell-days are dry"
    assert p.max() > 30
    corr = np.corrcoef(p[:, :, :-1].ravel(), p[:, :, 1:].ravel())[0, 1]
    assert corr > 0.7, "neighbouring 0.1° cells rain together"


def test_global_mswep_grid(world: World) -> None:
    p = world.mswep_daily(date(2015, 5, 1))
    assert p.shape == (1800, 3600) and p.dtype == np.float32
    assert np.all(p >= 0) and 0.5 < p.mean() < 5


def test_era5_tp_hours_add_up_to_the_day_and_era5land_accumulates(world: World) -> None:
    start, n = date(2015, 5, 1), 5
    hourly = [
        world.era5_hourly(start + timedelta(days=i), LAT, LON, ["tp"])["tp"] for i in range(n + 1)
    ]
    tp = np.stack(hourly)  # (n+1, 24, lat, lon), m over the hour ending at the valid time
    daily = (tp[:-1, 1:].sum(axis=1) + tp[1:, 0]) * 1000.0  # mm over each UTC day
    product = world.rain["era5_tp"].at_points(start.toordinal(), n, LAT, LON)
    np.testing.assert_allclose(daily, product, rtol=1e-4, atol=1e-5)
    assert np.all(tp >= 0)
    # ERA5-Land accumulates from 00 UTC: 00 UTC holds the previous day's total
    land = world.era5land_hourly(start + timedelta(days=1), [35.0], [-100.0], ["tp"])["tp"][:, 0, 0]
    assert np.all(np.diff(land[1:]) >= 0)
    row, col = int(np.argmin(np.abs(LAT - 35.0))), int(np.argmin(np.abs(LON + 100.0)))
    assert land[0] == pytest.approx(daily[0, row, col] / 1000.0, rel=1e-4, abs=1e-7)


def test_mswep_nrt_revisions_converge_to_final(world: World) -> None:
    day = date(2015, 6, 1)
    grid01 = MSWEP_GRID.subset(DEMO_REGION)
    final = world.mswep_daily(day, grid01)
    revisions = [world.mswep_revision(day, day + timedelta(days=a)) for a in range(13)]
    assert revisions == [*range(10), 10, 10, 10]
    gaps = [
        np.abs(world.mswep_nrt(day, day + timedelta(days=a), grid01) - final).mean()
        for a in range(11)
    ]
    assert gaps[0] > 0.05 * final.mean()
    assert all(x >= y for x, y in itertools.pairwise(gaps))
    np.testing.assert_array_equal(world.mswep_nrt(day, day + timedelta(days=10), grid01), final)
    with pytest.raises(ValueError, match="future"):
        world.mswep_revision(day, day - timedelta(days=1))


# -- truth ----------------------------------------------------------------------------------------------


def test_truth_is_bounded_and_responds_to_rain(world: World) -> None:
    start, end = date(2015, 1, 1), date(2016, 12, 31)
    truth = world.truth(start, end)
    assert truth.dims == ("time", "lat", "lon") and truth.dtype == np.float32
    assert truth.shape == (731, 40, 40)
    soil = world.soil_properties()
    # tiles have their own soils (±8 %): the cell mean stays within the cell's range, widened
    assert np.all(truth >= 0.5 * 0.7 * soil["wilting_point"])
    assert np.all(truth <= 1.3 * soil["porosity"])
    assert float(truth.std("time").median()) > 0.04, "the truth varies"
    forcing = world.true_forcing(start, end)
    change = truth.diff("time").values
    rain = forcing["precip"].values[1:]
    warm = forcing["t2m"].values[1:] > 2.0
    assert change[(rain > 10) & warm].mean() > 0.02
    assert change[(rain < 0.1) & warm].mean() < 0
    frozen = forcing["t2m"].values[1:] < 0
    assert frozen.any() and np.all(change[frozen] == 0), "frozen days keep their liquid water"
    root = world.root_zone(start, end)
    assert float(root.std("time").median()) < float(truth.std("time").median()), (
        "the root zone is slower than the surface"
    )
    with pytest.raises(ValueError, match="epoch"):
        world.truth(date(2014, 12, 1), date(2015, 1, 2))


def test_truth_over_sea_is_nan() -> None:
    w = World(WorldSpec(seed=1, region=BBox(-98, 26, -94, 30), epoch=EPOCH))
    truth = w.truth(date(2015, 5, 1), date(2015, 5, 3))
    land = w.soil_properties()["land"]
    assert 0 < float(land.mean()) < 1
    assert np.all(np.isnan(truth.values[:, ~land.values]))
    assert np.all(np.isfinite(truth.values[:, land.values]))


# -- products (their error statistics: tests/twin/test_errors.py) ------------------------------------


def test_smap_layout_revisit_and_flags(world: World) -> None:
    obs = world.smap_l3e(date(2015, 1, 21))
    for p in (obs.am, obs.pm):
        assert p["soil_moisture"].shape == (1624, 3856) and p["soil_moisture"].dtype == np.float32
        assert (
            p["retrieval_qual_flag"].dtype == np.uint16 and p["tb_time_seconds"].dtype == np.float64
        )
        outside = np.ones((1624, 3856), dtype=bool)
        outside[np.ix_(obs.rows, obs.cols)] = False
        assert np.all(p["soil_moisture"][outside] == FLOAT_FILL)
        assert np.all(p["retrieval_qual_flag"][outside] == FLAG_FILL)
    sm = np.concatenate([obs.am["soil_moisture"].ravel(), obs.pm["soil_moisture"].ravel()])
    valid = sm[sm != FLOAT_FILL]
    assert valid.size > 1000 and valid.min() >= 0.02 and valid.max() <= 0.6
    # overpass times: 6 AM / 6 PM local solar time, on the granule's day
    for name, lst in (("AM", 6.0), ("PM", 18.0)):
        p = obs[name]
        seconds = p["tb_time_seconds"][np.ix_(obs.rows, obs.cols)]
        valid_t = seconds != FLOAT_FILL
        lon = M09.col_lons(obs.cols)[None, :] + np.zeros(seconds.shape)
        t = np.datetime64("2000-01-01T12:00:00") + (seconds[valid_t] * 1000).astype(
            "timedelta64[ms]"
        )
        assert np.all(t.astype("datetime64[D]") == np.datetime64("2015-01-21"))
        hour = (t - np.datetime64("2015-01-21")).astype(np.float64) / 3.6e6
        local = (hour + lon[valid_t] / 15.0) % 24
        assert np.all(np.abs(local - lst) < 0.5)
    # winter mornings freeze: frozen-ground bit and not-recommended quality where t2m < 0 °C
    p = obs.am
    win = p["soil_moisture"] != FLOAT_FILL
    flags = p["surface_flag"][win]
    assert set(np.unique(p["retrieval_qual_flag"][win])) <= {0, 1, 5}
    frozen = (flags & (1 << 7)) > 0
    assert frozen.any()
    assert np.all(p["retrieval_qual_flag"][win][frozen] == 5)
    assert np.all(p["surface_temperature"][win][frozen] < 273.15 - 1 + 1e-3)


def test_smap_revisit_is_two_to_three_days(world: World) -> None:
    win = world._smap.window(M09)
    days = np.arange(date(2015, 4, 1).toordinal(), date(2015, 4, 1).toordinal() + 32)
    covered = SmapSimulator.covered(days, "AM", win.lat, win.lon)
    revisit = covered.shape[0] / covered.sum(axis=0)
    assert 2.0 < float(revisit.mean()) < 3.0
    polar = SmapSimulator.covered(days, "AM", np.array([70.0]), np.linspace(-180, 180, 100))
    assert polar.mean() > covered.mean() + 0.3, "more frequent coverage at high latitudes"
    # AM and PM passes see different places on the same day
    pm = SmapSimulator.covered(days, "PM", win.lat, win.lon)
    assert (covered != pm).mean() > 0.2


def test_smap_36km_grid(world: World) -> None:
    obs = world.smap_l3(date(2015, 7, 6))
    assert obs.am["soil_moisture"].shape == (406, 964)
    both = np.concatenate([obs.am["soil_moisture"].ravel(), obs.pm["soil_moisture"].ravel()])
    assert (both != FLOAT_FILL).sum() > 50


def test_gldas_grid_and_units(world: World) -> None:
    field = world.gldas_3h(datetime(2015, 7, 6, 3))
    assert field.shape == (600, 1440) and field.dtype == np.float32
    valid = field != -9999.0
    assert valid.sum() == 1600
    rows, cols = np.nonzero(valid)
    lat = -59.875 + 0.25 * rows
    lon = -179.875 + 0.25 * cols
    assert lat.min() == pytest.approx(30.125) and lat.max() == pytest.approx(39.875)
    assert lon.min() == pytest.approx(-104.875) and lon.max() == pytest.approx(-95.125)
    daily = world.product_daily("gldas", date(2015, 7, 6), date(2015, 7, 6)).values[0]
    gl = field[rows, cols].reshape(40, 40)[::-1] / 100.0  # back to north-up m3 m-3
    # the 3-hourly value is the daily value plus a small diurnal term
    amplitude = world.spec.gldas.diurnal_amplitude
    assert np.abs(gl - daily).max() <= amplitude + 1e-6


def test_era5land_and_era5_soil_water_over_sea(world: World) -> None:
    lat, lon = np.arange(30.0, 26.9, -0.1), np.arange(-97.0, -93.9, 0.1)
    day = date(2015, 7, 6)
    land = world.era5land_hourly(day, lat, lon, ["swvl1", "t2m"])
    lsm = world.invariants(lat, lon)["lsm"]
    assert np.all(np.isnan(land["swvl1"][:, lsm < 0.5])) and np.all(
        np.isnan(land["t2m"][:, lsm < 0.5])
    )
    assert np.all(np.isfinite(land["swvl1"][:, lsm >= 0.5]))
    era5 = world.era5_hourly(day, lat[::3], lon[::3], ["swvl1", "lsm"])
    sea = era5["lsm"][0] < 0.5
    assert np.all(era5["swvl1"][:, sea] == 0) and np.all(era5["swvl1"][:, ~sea] > 0.02)
    with pytest.raises(ValueError, match="valid short names"):
        world.era5land_hourly(day, lat, lon, ["lsm"])


def test_spec_changes_the_documented_errors() -> None:
    spec = WorldSpec(seed=3, region=SMALL, epoch=EPOCH)
    noisy = replace(spec, smap=replace(spec.smap, noise_sd=0.1))
    assert World(noisy).error_params["smap"].noise_sd == 0.1
    assert World(spec).error_params["smap"].noise_sd != 0.1
    day = date(2015, 6, 1)
    quiet, loud = (
        World(spec).product_daily("smap", day, day),
        World(noisy).product_daily("smap", day, day),
    )
    assert not np.allclose(quiet.values, loud.values, equal_nan=True)
    # the world grid is the global 0.25° grid's window of the region
    assert World(spec).grid == GLOBAL_025.subset(SMALL)
    assert isinstance(World(spec).grid, Grid)
