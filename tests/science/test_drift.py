"""Drift against the training period: feature statistics in the bundle, the expected O−F spread."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smda.science.drift import FeatureStats, expected_innovation_sd

NAMES = ("t2m", "precip", "state")


def training_rows(n: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.normal(290.0, 5.0, n), rng.gamma(0.5, 4.0, n), rng.uniform(0.05, 0.45, n)]
    )


def test_feature_stats_are_the_mean_and_sd_of_the_finite_training_values() -> None:
    rows = training_rows()
    rows[::7, 1] = np.nan

    stats = FeatureStats.fit(rows, NAMES)

    finite = rows[np.isfinite(rows[:, 1]), 1]
    np.testing.assert_allclose(stats.mean, [rows[:, 0].mean(), finite.mean(), rows[:, 2].mean()])
    np.testing.assert_allclose(stats.sd, [rows[:, 0].std(), finite.std(), rows[:, 2].std()])


def test_feature_stats_in_chunks_of_rows_are_those_of_the_whole_matrix() -> None:
    rows = training_rows().astype(np.float32)
    rows[::7, 1] = np.nan

    whole = FeatureStats.fit(rows, NAMES, chunk_rows=len(rows))
    chunked = FeatureStats.fit(rows, NAMES, chunk_rows=333)  # a short last chunk

    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(chunked.sd, whole.sd, rtol=1e-12)
    finite = rows[np.isfinite(rows[:, 1]), 1].astype(np.float64)
    np.testing.assert_allclose(chunked.sd[1], finite.std(), rtol=1e-12)


def test_a_day_like_the_training_drifts_little_and_a_shifted_one_by_its_shift() -> None:
    stats = FeatureStats.fit(training_rows(), NAMES)
    today = training_rows(400, seed=1)

    assert stats.drift(today) < 0.5
    shifted = today.copy()
    shifted[:, 0] += 15.0  # 2 m temperature 3 training SDs warmer
    assert stats.drift(shifted) == pytest.approx(3.0, abs=0.4)


def test_calendar_features_are_not_input_drift() -> None:
    names = ("t2m", "doy_sin", "doy_cos")
    rows = training_rows()
    stats = FeatureStats.fit(rows, names)
    today = training_rows(400, seed=1)
    today[:, 1] += 100.0  # another season: no drift of the inputs

    assert stats.drift(today) < 0.5


def test_drift_of_an_empty_or_mismatched_matrix_is_nan() -> None:
    stats = FeatureStats.fit(training_rows(), NAMES)

    assert math.isnan(stats.drift(np.zeros((0, 3))))
    assert math.isnan(stats.drift(np.zeros((5, 2))))


def test_feature_stats_survive_json() -> None:
    stats = FeatureStats.fit(training_rows(), NAMES)

    again = FeatureStats.from_dict(json.loads(json.dumps(stats.to_dict())))

    assert again.names == stats.names
    np.testing.assert_array_equal(again.mean, stats.mean)
    np.testing.assert_array_equal(again.sd, stats.sd)


def test_fit_rejects_a_matrix_of_other_features() -> None:
    with pytest.raises(ValueError, match="3 features"):
        FeatureStats.fit(np.zeros((4, 2)), NAMES)


def test_expected_innovation_spread_combines_forecast_and_observation_errors() -> None:
    assert expected_innovation_sd({"median_sigma_f": 0.03, "median_sigma_o": 0.04}) == (
        pytest.approx(0.05)
    )
    assert math.isnan(expected_innovation_sd({}))
    assert math.isnan(expected_innovation_sd({"median_sigma_f": 0.0, "median_sigma_o": 0.0}))
