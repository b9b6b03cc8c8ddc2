"""Feature matrix: one day and many days from the same code, precipitation memory, humidity.

Inputs come from :func:`science_helpers.twin_inputs`.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from science_helpers import twin_inputs

from smda.geo.grid import BBox
from smda.science.features import (
    POROSITY_BY_SLT,
    STATE,
    FeatureMatrix,
    FeatureSpec,
    build_features,
    global_cell_ids,
    lagged,
    porosity,
)
from smda_twin.world import World, WorldSpec

START, END = date(2015, 3, 1), date(2015, 4, 30)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=3, region=BBox(-100, 35, -99, 36), epoch=date(2015, 1, 1)))


@pytest.fixture(scope="module")
def inputs(world: World) -> tuple[xr.Dataset, xr.DataArray, xr.Dataset, xr.DataArray]:
    era5, precip, static = twin_inputs(world, START, END)
    return era5, precip, static, world.truth(START - timedelta(days=1), END)


def _build(inputs: tuple, days: pd.DatetimeIndex, spec: FeatureSpec | None = None) -> FeatureMatrix:
    era5, precip, static, truth = inputs
    return build_features(
        spec or FeatureSpec(),
        days,
        era5=era5,
        precip=precip,
        static=static,
        state=lagged(truth, days),
    )


def test_matrix_layout(inputs: tuple) -> None:
    days = pd.date_range(START, END)
    fm = _build(inputs, days)
    spec = FeatureSpec()
    land = inputs[2]["land"].values
    assert fm.names == spec.names and fm.names[-1] == STATE
    assert fm.values.dtype == np.float32
    assert fm.values.shape == (len(days) * land.sum(), len(spec.names))
    assert np.array_equal(fm.cells, np.flatnonzero(land.ravel()))
    assert fm.cube().shape == (len(days), fm.n_cells, len(fm.names))
    assert np.isfinite(fm.values).all()
    lat = fm.values[:, fm.names.index("lat")].reshape(len(days), -1)
    assert np.array_equal(lat[0], fm.lat.astype(np.float32)) and (lat == lat[0]).all()
    assert np.array_equal(fm.cell_ids, global_cell_ids(fm.lat, fm.lon))


def test_one_day_equals_the_same_day_of_many(inputs: tuple) -> None:
    era5, precip, static, truth = inputs
    days = pd.date_range(START, END)
    many = _build(inputs, days)
    day = days[40]
    one = build_features(
        FeatureSpec(),
        day.date(),
        era5=era5.sel(time=day),  # operational: a single staged day without time
        precip=precip.sel(time=slice(day - pd.Timedelta(days=29), day)),
        static=static,
        state=truth.sel(time=day - pd.Timedelta(days=1)),
    )
    assert np.array_equal(one.values, many.cube()[40])


def test_state_column_is_the_lagged_series(inputs: tuple) -> None:
    days = pd.date_range(START, END)
    fm = _build(inputs, days)
    truth = inputs[3]
    expected = truth.sel(time=days - pd.Timedelta(days=1)).values.reshape(len(days), -1)
    assert np.array_equal(fm.cube()[:, :, fm.state_column], expected[:, fm.cells])
    assert list(lagged(truth, days[:2]).time.values) == list(days[:2].values)


def test_precipitation_memory(inputs: tuple) -> None:
    spec = FeatureSpec(precip_windows=(3, 7), api_decay=0.8, api_days=30)
    days = pd.date_range(START, END)
    fm = _build(inputs, days, spec)
    precip = inputs[1].values.reshape(inputs[1].sizes["time"], -1)[:, fm.cells].astype(np.float64)
    offset = spec.history_days - 1  # row of START in the precipitation history
    cube = fm.cube()
    col = {n: i for i, n in enumerate(fm.names)}
    for t in (0, 17, len(days) - 1):
        d = offset + t
        np.testing.assert_array_equal(cube[t, :, col["precip"]], precip[d].astype(np.float32))
        np.testing.assert_allclose(
            cube[t, :, col["precip_3d"]], precip[d - 2 : d + 1].sum(0), rtol=1e-6
        )
        np.testing.assert_allclose(
            cube[t, :, col["precip_7d"]], precip[d - 6 : d + 1].sum(0), rtol=1e-6
        )
        weights = 0.8 ** np.arange(30)
        api = (weights[:, None] * precip[d - np.arange(30)]).sum(0)
        np.testing.assert_allclose(cube[t, :, col["api"]], api, rtol=1e-5)
    # the truncated recursion: API_D = k·API_{D−1} + P_D − k^N·P_{D−N}
    api = cube[:, :, col["api"]].astype(np.float64)
    t = np.arange(1, len(days))
    rhs = 0.8 * api[t - 1] + precip[offset + t] - 0.8**30 * precip[offset + t - 30]
    np.testing.assert_allclose(api[t], rhs, rtol=1e-5, atol=1e-5)


def test_humidity_and_season(inputs: tuple) -> None:
    days = pd.date_range(START, END)
    fm = _build(inputs, days)
    col = {n: i for i, n in enumerate(fm.names)}
    vpd, rh = fm.values[:, col["vpd"]], fm.values[:, col["rh"]]
    assert (vpd >= 0).all() and ((rh > 0) & (rh <= 1)).all()
    t2m = fm.values[:, col["t2m_mean"]] - 273.15
    es = 0.6108 * np.exp(17.27 * t2m / (t2m + 237.3))
    np.testing.assert_allclose(vpd, es * (1 - rh), rtol=1e-4, atol=1e-6)
    doy = 2 * np.pi * days.day_of_year.to_numpy() / 365.25
    np.testing.assert_allclose(fm.cube()[:, 0, col["doy_sin"]], np.sin(doy), atol=1e-6)
    np.testing.assert_allclose(fm.cube()[:, 0, col["doy_cos"]], np.cos(doy), atol=1e-6)


def test_sea_cells_are_left_out(inputs: tuple) -> None:
    era5, precip, static, truth = inputs
    static = static.copy()
    static["land"] = static["land"].copy(data=static["land"].values.copy())
    static["land"][0, 0] = False
    days = pd.date_range(START, START + timedelta(days=2))
    fm = build_features(
        FeatureSpec(), days, era5=era5, precip=precip, static=static, state=lagged(truth, days)
    )
    assert 0 not in fm.cells and fm.n_cells == static["land"].values.sum()


def test_missing_inputs_are_errors(inputs: tuple) -> None:
    era5, precip, static, truth = inputs
    days = pd.date_range(START, START + timedelta(days=3))
    state = lagged(truth, days)
    with pytest.raises(ValueError, match="precipitation lacks day"):
        build_features(
            FeatureSpec(),
            days,
            era5=era5,
            precip=precip.isel(time=slice(1, None)),
            static=static,
            state=state,
        )
    with pytest.raises(ValueError, match="lacks 'wind_mean'"):
        build_features(
            FeatureSpec(),
            days,
            era5=era5.drop_vars("wind_mean"),
            precip=precip,
            static=static,
            state=state,
        )
    with pytest.raises(ValueError, match="no time dimension"):
        build_features(
            FeatureSpec(),
            days,
            era5=era5.isel(time=0),
            precip=precip,
            static=static,
            state=state,
        )


def test_spec_round_trip_and_validation() -> None:
    spec = FeatureSpec(precip_windows=(2, 5), api_decay=0.9, humidity=("rh",), location=False)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert "lat" not in spec.names and "precip_5d" in spec.names and "vpd" not in spec.names
    assert spec.history_days == 30
    with pytest.raises(ValueError, match="api_decay"):
        FeatureSpec(api_decay=1.0)
    with pytest.raises(ValueError, match="humidity"):
        FeatureSpec(humidity=("dewpoint",))


def test_porosity_from_soil_type() -> None:
    got = porosity(np.array([1.0, 4.0, 6.0, 0.0, np.nan, 12.0]))
    expected = [POROSITY_BY_SLT[1], POROSITY_BY_SLT[4], POROSITY_BY_SLT[6], 0.6, 0.6, 0.6]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
