"""The column physics behind the truth and the model products (smda_twin.landmodel)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from smda_twin.landmodel import Columns, ColumnState, DayForcing, Structure, step
from smda_twin.waterbalance import TRUTH_STRUCTURE


def _columns(n: int = 1, *, irrigated: bool = False, ksat: float = 5.0) -> Columns:
    return Columns(
        sat=np.full(n, 0.45),
        fc=np.full(n, 0.30),
        wp=np.full(n, 0.10),
        ksat=np.full(n, ksat),
        veg=np.full(n, 0.5),
        irrigated=np.full(n, irrigated),
    )


def _state(theta: float, root: float | None = None, swe: float = 0.0) -> ColumnState:
    return ColumnState(
        np.array([theta]), np.array([theta if root is None else root]), np.array([swe])
    )


def _day(
    precip: float, hours: float = 12.0, t: float = 15.0, pet: float = 0.0, **kw: object
) -> DayForcing:
    return DayForcing(
        precip=np.array([precip]),
        t_mean=np.array([t]),
        pet=np.array([pet]),
        storm_hours=np.array([hours]),
        **kw,  # type: ignore[arg-type]
    )


def _water(s: ColumnState, structure: Structure) -> float:
    return float(s.surface[0] * structure.surface_mm + s.root[0] * structure.root_mm + s.swe[0])


def test_the_same_rain_in_fewer_hours_runs_off_more() -> None:
    c, s = _columns(), TRUTH_STRUCTURE
    start = _state(0.2)
    burst = step(start, _day(40.0, hours=1.0), c, s)
    steady = step(start, _day(40.0, hours=16.0), c, s)
    assert _water(burst, s) < _water(steady, s) - 5.0
    without = replace(s, infiltration_excess=False)
    assert _water(step(start, _day(40.0, hours=1.0), c, without), without) == pytest.approx(
        _water(step(start, _day(40.0, hours=16.0), c, without), without)
    )


def test_frozen_days_hold_the_liquid_water_and_store_snow() -> None:
    c, s = _columns(), TRUTH_STRUCTURE
    start = _state(0.25, 0.28, swe=3.0)
    frozen = step(start, _day(10.0, t=-4.0, pet=2.0), c, s)
    assert frozen.surface[0] == start.surface[0] and frozen.root[0] == start.root[0]
    assert frozen.swe[0] == pytest.approx(13.0)
    thaw = step(frozen, _day(0.0, t=3.0), c, s)
    assert thaw.swe[0] == pytest.approx(13.0 - 3.0 * s.melt_rate)
    assert thaw.surface[0] > frozen.surface[0]


def test_irrigation_waters_dry_irrigated_columns_in_season_only() -> None:
    s = TRUTH_STRUCTURE
    dry = _state(0.12, 0.12)
    watered = step(dry, _day(0.0, irrigation_day=True), _columns(irrigated=True), s)
    off_season = step(dry, _day(0.0, irrigation_day=False), _columns(irrigated=True), s)
    rainfed = step(dry, _day(0.0, irrigation_day=True), _columns(irrigated=False), s)
    assert _water(watered, s) == pytest.approx(_water(rainfed, s) + s.irrigation_mm)
    assert _water(off_season, s) == pytest.approx(_water(rainfed, s))
    wet = _state(0.3, 0.3)
    assert _water(step(wet, _day(0.0, irrigation_day=True), _columns(irrigated=True), s), s) == (
        pytest.approx(_water(step(wet, _day(0.0, irrigation_day=True), _columns(), s), s))
    ), "a wet root zone is not watered"


def test_a_wet_root_zone_feeds_the_drying_surface() -> None:
    c, s = _columns(), TRUTH_STRUCTURE
    wet_below = step(_state(0.15, 0.35), _day(0.0, pet=3.0), c, s)
    dry_below = step(_state(0.15, 0.12), _day(0.0, pet=3.0), c, s)
    assert wet_below.surface[0] > dry_below.surface[0]


def test_water_stays_within_the_soil_limits() -> None:
    rng = np.random.default_rng(1)
    n = 200
    c = _columns(n, ksat=8.0)
    state = ColumnState(np.full(n, 0.2), np.full(n, 0.2), np.zeros(n))
    for _ in range(400):
        day = DayForcing(
            precip=rng.gamma(0.3, 20.0, n),
            t_mean=rng.normal(10.0, 10.0, n),
            pet=rng.uniform(0.0, 7.0, n),
            storm_hours=rng.uniform(1.0, 24.0, n),
            greenness=0.7,
        )
        state = step(state, day, c, TRUTH_STRUCTURE)
        assert np.all(state.surface >= TRUTH_STRUCTURE.residual * c.wp - 1e-12)
        assert np.all(state.surface <= c.sat + 1e-12) and np.all(state.root <= c.sat + 1e-12)
        assert np.all(state.root >= c.wp - 1e-12) and np.all(state.swe >= 0)
