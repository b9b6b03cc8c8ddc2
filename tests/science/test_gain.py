"""The nudging gain from the data (smda.science.gain): limits, the held-out cycle, the choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smda.science.features import STATE, FeatureMatrix
from smda.science.gain import (
    GainField,
    InnovationStats,
    cycle_innovations,
    estimate_gain,
    fixed_point_gain,
    optimal_gain,
)
from smda.science.nudging import fit_cdf

# -- G = σ_f² / (σ_f² + σ_o²) ---------------------------------------------------------------------


def test_gain_tends_to_zero_for_useless_observations_and_to_one_for_a_useless_forecast() -> None:
    assert optimal_gain(1e-3, 1e12) < 1e-12
    assert optimal_gain(1e-3, np.inf) == 0.0
    assert optimal_gain(1e12, 1e-3) > 1 - 1e-12
    assert optimal_gain(np.inf, 1e-3) == 1.0
    assert optimal_gain(0.02**2, 0.02**2) == pytest.approx(0.5)
    assert np.isnan(optimal_gain(-1e-4, 1e-4)) and np.isnan(optimal_gain(np.nan, 1e-4))
    assert np.isnan(optimal_gain(0.0, 0.0))


@given(
    f=st.floats(1e-8, 1.0),
    o=st.floats(1e-8, 1.0),
    k=st.floats(1.1, 100.0),
)
def test_gain_grows_with_forecast_error_and_falls_with_observation_error(
    f: float, o: float, k: float
) -> None:
    g = float(optimal_gain(f, o))
    assert 0.0 <= g <= 1.0
    assert float(optimal_gain(k * f, o)) >= g
    assert float(optimal_gain(f, k * o)) <= g


def test_fixed_point_update_moves_towards_the_innovation_split() -> None:
    gain = np.array([0.2, 0.2, 0.2])
    var_d = np.array([0.002, 0.001, np.nan])
    obs = np.array([0.001, 0.001, 0.001])
    out = fixed_point_gain(gain, var_d, obs, damping=1.0)
    np.testing.assert_allclose(out[:2], [0.5, 0.0])
    assert out[2] == 0.2, "an unknown variance keeps the gain"


# -- a linear system whose optimal gain is known ---------------------------------------------------

PHI, Q, R, MEAN = 0.9, 0.01**2, 0.02**2, 0.25


def _steady_state_gain() -> float:
    """The Kalman gain of x_t = MEAN + φ(x_{t−1} − MEAN) + q, y = x + r, observed daily."""
    p = Q
    for _ in range(500):
        k = p / (p + R)
        p = PHI**2 * (1 - k) * p + Q
    return p / (p + R)


@pytest.fixture(scope="module")
def linear_system() -> tuple[FeatureMatrix, np.ndarray]:
    """A FeatureMatrix whose only feature is the state, and daily observations of a truth
    following the model's own dynamics with process noise (days, cells)."""
    rng = np.random.default_rng(0)
    n_days, n_lat, n_lon = 500, 10, 20
    n_cells = n_lat * n_lon
    truth = np.empty((n_days, n_cells))
    x = MEAN + rng.normal(0.0, 0.03, n_cells)
    first = x.copy()
    for t in range(n_days):
        x = MEAN + PHI * (x - MEAN) + rng.normal(0.0, np.sqrt(Q), n_cells)
        truth[t] = x
    obs = (truth + rng.normal(0.0, np.sqrt(R), truth.shape)).astype(np.float32)
    lat2, lon2 = np.meshgrid(
        40.125 - 0.25 * np.arange(n_lat), 0.125 + 0.25 * np.arange(n_lon), indexing="ij"
    )
    values = np.repeat(first[None], n_days, axis=0).astype(np.float32).reshape(-1, 1)
    matrix = FeatureMatrix(
        values,
        (STATE,),
        pd.date_range("2020-01-02", periods=n_days, name="time"),
        np.arange(n_cells),
        (n_lat, n_lon),
        lat2.ravel(),
        lon2.ravel(),
        np.ones(n_cells, np.float32),
    )
    return matrix, obs


def _predict(rows: np.ndarray) -> np.ndarray:
    return MEAN + PHI * (rows[:, 0] - MEAN)


def test_held_out_cycles_find_the_kalman_gain(
    linear_system: tuple[FeatureMatrix, np.ndarray],
) -> None:
    matrix, obs = linear_system
    cdf = fit_cdf(obs, obs, matrix.cell_ids, min_samples=30)  # identity: SMAP* = SMAP
    folds = np.arange(matrix.n_cells) % 2
    field = estimate_gain(matrix, folds, (_predict, _predict), obs, cdf, np.full(matrix.n_cells, R))
    k = _steady_state_gain()
    scores = field.provenance["scores"]
    best_constant = min((s, float(n[2:])) for n, s in scores.items() if n.startswith("G="))[1]
    assert abs(best_constant - k) <= 0.11, (best_constant, k)
    values = field.at(matrix.cell_ids)
    assert float(np.median(values)) == pytest.approx(k, abs=0.05)
    assert scores[field.provenance["chosen"]] == min(scores.values())
    assert field.provenance["median_sigma_o"] == pytest.approx(np.sqrt(R), rel=0.05)


def test_without_observations_the_gain_is_zero(
    linear_system: tuple[FeatureMatrix, np.ndarray],
) -> None:
    matrix, obs = linear_system
    cdf = fit_cdf(obs, obs, matrix.cell_ids, min_samples=30)
    none = np.full_like(obs, np.nan)
    field = estimate_gain(
        matrix, np.zeros(matrix.n_cells, int), (_predict,), none, cdf, np.full(matrix.n_cells, R)
    )
    assert field.default == 0.0 and field.cell_ids.size == 0
    assert "no SMAP" in field.provenance["chosen"]


def test_cycle_innovations_with_zero_gain_is_the_free_run(
    linear_system: tuple[FeatureMatrix, np.ndarray],
) -> None:
    matrix, obs = linear_system
    cube = matrix.cube()[:50]
    gains = np.zeros((1, matrix.n_cells))
    stats = cycle_innovations(_predict, cube, 0, cube[0, :, 0], obs[:50], gains, matrix.upper)
    free = cube[0, :, 0].astype(np.float64)
    expected = np.zeros(matrix.n_cells)
    for t in range(50):
        free = MEAN + PHI * (free - MEAN)
        expected += (obs[t] - free) ** 2
    np.testing.assert_allclose(stats.sum_d2[0], expected, rtol=1e-4)
    assert np.all(stats.n == 50)


def test_innovation_stats_of_cell_sets_combine() -> None:
    a = InnovationStats(np.array([2, 0]), np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]]))
    b = InnovationStats(np.array([3]), np.array([[0.3]]), np.array([[0.5]]))
    both = InnovationStats.combine(
        [(np.array([True, False, True]), a), (np.array([False, True, False]), b)]
    )
    np.testing.assert_array_equal(both.n, [2, 3, 0])
    assert np.isnan(both.mean_square[0, 2]) and both.mean_square[0, 0] == 1.0


# -- the field -------------------------------------------------------------------------------------


def test_gain_field_lookup_and_round_trip() -> None:
    field = GainField(
        np.array([5, 9, 20]), np.array([0.1, 0.4, 0.7], np.float32), 0.4, {"chosen": "per_cell"}
    )
    np.testing.assert_allclose(field.at([20, 5, 7]), [0.7, 0.1, 0.4])
    again = GainField.from_arrays(field.to_arrays(), field.provenance)
    np.testing.assert_array_equal(again.values, field.values)
    assert again.default == 0.4 and again.provenance == {"chosen": "per_cell"}
    flat = GainField.constant(0.3, {"chosen": "G=0.3"})
    np.testing.assert_allclose(flat.at([1, 2]), 0.3)
    assert flat.describe() == "G = 0.3 (G=0.3)" and "median 0.40" in field.describe()
