"""The cycle on the twin (an OSSE in miniature): train on 2015, cycle through 2016, score
against the world's truth."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from science_helpers import twin_inputs

from smda.geo.grid import BBox
from smda.science.bundle import HyperParams, ModelBundle
from smda.science.cycle import (
    FLAG_ASSIMILATED,
    FLAG_FORECAST_ONLY,
    FLAG_LAND,
    FLAG_STATE_FILLED,
    CycleResult,
    DayInputs,
    climatology_state,
    cold_start,
    run,
    step,
)
from smda.science.features import FeatureSpec, build_features, lagged
from smda.science.model import CVConfig, TrainConfig, rollout, train
from smda.science.nudging import fit_cdf
from smda_twin.world import World, WorldSpec

TRAIN = (date(2015, 2, 1), date(2015, 12, 31))
TEST = (date(2016, 1, 1), date(2016, 12, 31))
GAIN = 0.3


class Osse:
    """Inputs, a trained bundle and the truth of a 2° × 2° twin region."""

    def __init__(self) -> None:
        self.world = World(WorldSpec(region=BBox(-100, 35, -98, 37), epoch=date(2015, 1, 1)))
        w, (start, _), (_, end) = self.world, TRAIN, TEST
        self.era5, self.precip, self.static = twin_inputs(w, start, end)
        self.label = w.product_daily("era5land", start - timedelta(days=1), end)
        self.smap = w.product_daily("smap", start, end)
        days = pd.date_range(*TRAIN)
        spec = FeatureSpec()
        fm = build_features(
            spec,
            days,
            era5=self.era5,
            precip=self.precip,
            static=self.static,
            state=lagged(self.label, days),
        )
        hyper = HyperParams(learning_rate=0.1, num_leaves=15, min_data_in_leaf=50, max_rounds=150)
        config = TrainConfig(hyper=hyper, cv=CVConfig(n_folds=4, block_deg=0.5), compare=())
        bundle = train(fm, self.at_cells(self.label, days, fm.cells), spec, config=config)
        free = rollout(bundle.predict, fm)
        smap = self.at_cells(self.smap, days, fm.cells)
        self.bundle = bundle.with_cdf(fit_cdf(free, smap, fm.cell_ids))
        self.days = pd.date_range(*TEST)
        self.state0 = lagged(self.label, self.days[:1]).isel(time=0)

    @staticmethod
    def at_cells(field: xr.DataArray, days: pd.DatetimeIndex, cells: np.ndarray) -> np.ndarray:
        return field.sel(time=days).values.reshape(len(days), -1)[:, cells]

    def inputs(self, day: pd.Timestamp, *, smap: bool = True) -> DayInputs:
        obs = self.smap.sel(time=day)
        return DayInputs(
            day=day.date(),
            era5=self.era5.sel(time=day),
            precip=self.precip.sel(time=slice(day - pd.Timedelta(days=29), day)),
            static=self.static,
            smap=xr.Dataset({"soil_moisture": obs, "count": obs.notnull().astype(np.uint16)})
            if smap
            else None,
        )

    def cycle(self, gain: float) -> list[CycleResult]:
        days = (self.inputs(d) for d in self.days)
        return list(run(self.state0, days, self.bundle, gain=gain))

    def score(self, series: xr.DataArray) -> tuple[float, float]:
        """Median over cells of R and ubRMSD against the truth over the test year."""
        sk = self.world.true_skill(series.assign_coords(time=self.days), *TEST)
        return float(sk.rho.median()), float(sk.ubrmsd.median())


def _stack(results: list[CycleResult], name: str) -> xr.DataArray:
    return xr.concat([getattr(r, name) for r in results], dim="time")


@pytest.fixture(scope="module")
def osse() -> Osse:
    return Osse()


@pytest.fixture(scope="module")
def open_loop(osse: Osse) -> list[CycleResult]:
    return osse.cycle(0.0)


@pytest.fixture(scope="module")
def analysis(osse: Osse) -> list[CycleResult]:
    return osse.cycle(GAIN)


def test_free_running_model_beats_climatology(osse: Osse, open_loop: list[CycleResult]) -> None:
    clim = xr.concat(
        [climatology_state(osse.bundle, osse.static, d.date()) for d in osse.days], dim="time"
    )
    r_ol, ub_ol = osse.score(_stack(open_loop, "analysis"))
    r_cl, ub_cl = osse.score(clim)
    assert r_ol > r_cl + 0.3 and ub_ol < ub_cl


def test_nudged_analysis_beats_open_loop_and_every_product(
    osse: Osse, open_loop: list[CycleResult], analysis: list[CycleResult]
) -> None:
    r_an, ub_an = osse.score(_stack(analysis, "analysis"))
    r_ol, ub_ol = osse.score(_stack(open_loop, "analysis"))
    assert r_an > r_ol + 0.02 and ub_an < ub_ol
    for product in ("smap", "era5land", "gldas"):
        r_p, ub_p = osse.score(osse.world.product_daily(product, *TEST))
        assert r_an > r_p and ub_an < ub_p, product


def test_zero_gain_cycle_is_the_open_loop(osse: Osse, open_loop: list[CycleResult]) -> None:
    days = osse.days
    fm = build_features(
        osse.bundle.spec,
        days,
        era5=osse.era5,
        precip=osse.precip,
        static=osse.static,
        state=lagged(osse.label, days),
    )
    free = rollout(osse.bundle.predict, fm)
    cycled = _stack(open_loop, "analysis").values.reshape(len(days), -1)[:, fm.cells]
    np.testing.assert_allclose(cycled, free, rtol=0, atol=1e-6)
    for r in open_loop[:5]:
        np.testing.assert_array_equal(r.analysis.values, r.forecast.values)


def test_assimilation_flags_and_innovations(analysis: list[CycleResult]) -> None:
    r = analysis[100]
    assert not r.forecast_only
    flags = r.flags.values
    done = (flags & FLAG_ASSIMILATED) > 0
    assert done.any() and ((flags & FLAG_LAND) > 0).all()
    assert np.isfinite(r.innovations.values[done]).all()
    assert np.isnan(r.innovations.values[~done]).all()
    assert (r.obs_count.values[done] > 0).all()
    expected = r.forecast.values + GAIN * r.innovations.values
    np.testing.assert_allclose(r.analysis.values[done], expected[done], atol=1e-6)
    np.testing.assert_array_equal(r.analysis.values[~done], r.forecast.values[~done])
    assert r.analysis.attrs["model_version"] == analysis[0].analysis.attrs["model_version"]


def test_day_without_smap_is_forecast_only(osse: Osse) -> None:
    day = osse.days[10]
    result = step(osse.state0, osse.inputs(day, smap=False), osse.bundle, gain=GAIN)
    assert result.forecast_only
    assert ((result.flags.values & FLAG_FORECAST_ONLY) > 0).all()
    assert ((result.flags.values & FLAG_ASSIMILATED) == 0).all()
    np.testing.assert_array_equal(result.analysis.values, result.forecast.values)
    assert (result.obs_count.values == 0).all()


def test_sea_and_missing_state(osse: Osse) -> None:
    day = osse.days[0]
    static = osse.static.copy()
    static["land"] = static["land"].copy(data=static["land"].values.copy())
    static["land"][0, 0] = False
    state = osse.state0.copy()
    state[1, 1] = np.nan
    inputs = replace(osse.inputs(day), static=static)
    result = step(state, inputs, osse.bundle, gain=GAIN)
    assert np.isnan(result.analysis.values[0, 0]) and result.flags.values[0, 0] == 0
    assert np.isfinite(result.analysis.values[1, 1])
    assert result.flags.values[1, 1] & FLAG_STATE_FILLED
    assert not (result.flags.values[2, 2] & FLAG_STATE_FILLED)


def test_cold_start_converges_to_the_warm_cycle(osse: Osse, open_loop: list[CycleResult]) -> None:
    inputs = [osse.inputs(d) for d in osse.days[:60]]
    spun = cold_start(inputs, osse.bundle, 60)
    assert spun.day == osse.days[59].date()
    warm = open_loop[59].analysis.values
    start = climatology_state(osse.bundle, osse.static, osse.days[0].date()).values
    assert (
        np.abs(spun.analysis.values - warm).mean() < 0.2 * np.abs(start - osse.state0.values).mean()
    )
    with pytest.raises(ValueError, match="spinup_days"):
        cold_start(inputs[:3], osse.bundle, 5)


def test_cycle_needs_consecutive_days_and_cdf_tables(osse: Osse) -> None:
    days = [osse.inputs(osse.days[0]), osse.inputs(osse.days[2])]
    with pytest.raises(ValueError, match="consecutive"):
        list(run(osse.state0, days, osse.bundle, gain=GAIN))
    meta, arrays = osse.bundle.to_parts()
    no_cdf = ModelBundle.from_parts(
        meta, {k: v for k, v in arrays.items() if not k.startswith("cdf")}
    )
    with pytest.raises(ValueError, match="no CDF tables"):
        step(osse.state0, osse.inputs(osse.days[0]), no_cdf, gain=GAIN)
    free = step(osse.state0, osse.inputs(osse.days[0]), no_cdf, gain=0.0)
    np.testing.assert_array_equal(free.analysis.values, free.forecast.values)


def test_per_cell_gain(osse: Osse) -> None:
    day = osse.inputs(osse.days[100])
    half = xr.zeros_like(osse.static["land"], dtype=np.float64)
    half[:, 4:] = 1.0  # G = 0 in the west, 1 in the east
    result = step(osse.state0, day, osse.bundle, gain=half)
    done = (result.flags.values & FLAG_ASSIMILATED) > 0
    west, east = done.copy(), done.copy()
    west[:, 4:], east[:, :4] = False, False
    assert west.any() and east.any()
    np.testing.assert_array_equal(result.analysis.values[west], result.forecast.values[west])
    obs = result.forecast.values + result.innovations.values  # SMAP* (model units)
    np.testing.assert_allclose(result.analysis.values[east], obs[east], atol=1e-6)
