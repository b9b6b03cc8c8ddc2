"""Nudging invariants (hypothesis) and CDF matching of SMAP to the model climatology."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smda.science.nudging import DEFAULT_PROBS, CdfTables, cdf_match, fit_cdf, nudge, tc_gain

N = st.integers(1, 40)


@st.composite
def fields(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(forecast, obs, valid, upper): forecasts within [0, upper], obs anywhere in [−0.25, 1]
    or NaN, per-pixel upper bounds (porosity)."""
    n = draw(N)
    upper = draw(hnp.arrays(np.float32, n, elements=st.floats(0.25, 0.625, width=32)))
    frac = draw(hnp.arrays(np.float32, n, elements=st.floats(0.0, 1.0, width=32)))
    obs = draw(
        hnp.arrays(np.float32, n, elements=st.floats(-0.25, 1.0, width=32) | st.just(np.nan))
    )
    valid = draw(hnp.arrays(np.bool_, n))
    return (frac * upper).astype(np.float32), obs, valid, upper


@settings(max_examples=60, deadline=None)
@given(fields())
def test_zero_gain_returns_the_forecast(f: tuple) -> None:
    forecast, obs, valid, upper = f
    analysis, _ = nudge(forecast, obs, 0.0, valid, upper=upper)
    np.testing.assert_array_equal(analysis, forecast)


@settings(max_examples=60, deadline=None)
@given(fields())
def test_unit_gain_returns_the_observation_where_valid(f: tuple) -> None:
    forecast, obs, valid, upper = f
    analysis, _ = nudge(forecast, obs, 1.0, valid, upper=upper)
    use = valid & np.isfinite(obs)
    np.testing.assert_array_equal(analysis[use], np.clip(obs[use], 0.0, upper[use]))
    np.testing.assert_array_equal(analysis[~use], forecast[~use])


@settings(max_examples=60, deadline=None)
@given(fields(), st.floats(0.0, 1.0) | hnp.arrays(np.float64, 1, elements=st.floats(0, 1)))
def test_analysis_within_bounds_and_innovations(f: tuple, gain: float | np.ndarray) -> None:
    forecast, obs, valid, upper = f
    analysis, innovations = nudge(forecast, obs, gain, valid, upper=upper)
    assert analysis.dtype == np.float32 and innovations.dtype == np.float32
    assert ((analysis >= 0.0) & (analysis <= upper)).all()
    use = valid & np.isfinite(obs)
    np.testing.assert_allclose(innovations[use], obs[use] - forecast[use], rtol=1e-6, atol=1e-7)
    assert np.isnan(innovations[~use]).all()


def test_gain_per_pixel_and_out_of_range() -> None:
    f = np.array([0.1, 0.1, 0.1], np.float32)
    o = np.array([0.3, 0.3, 0.3], np.float32)
    analysis, _ = nudge(f, o, np.array([0.0, 0.5, 1.0]), np.ones(3, bool))
    np.testing.assert_allclose(analysis, [0.1, 0.2, 0.3], rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nudge(f, o, 1.5, np.ones(3, bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nudge(f, o, np.nan, np.ones(3, bool))
    nan_forecast, _ = nudge(np.array([np.nan]), np.array([0.2]), 0.5, np.array([True]))
    assert np.isnan(nan_forecast).all()


def test_tc_gain() -> None:
    g = tc_gain([0.01**2, 0.02**2, np.nan, 0.0], [0.01**2, 0.02**2 / 3, 0.01, 0.0])
    np.testing.assert_allclose(g[:2], [0.5, 0.75])
    assert g[2] == 0.0 and g[3] == 0.0


def _series(seed: int, n_days: int = 400, n_pix: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = 0.1 + 0.25 * rng.beta(2, 3, size=(n_days, n_pix))
    obs = 0.02 + 1.4 * model**1.3 + 0.01 * rng.standard_normal((n_days, n_pix))
    obs[rng.random(obs.shape) < 0.5] = np.nan
    return model, obs


def test_fit_cdf_percentiles_match_numpy() -> None:
    model, obs = _series(0)
    ids = np.arange(50) * 7
    tables = fit_cdf(model, obs, ids)
    assert np.array_equal(tables.cell_ids, ids) and tables.obs.shape == (50, len(DEFAULT_PROBS))
    for p in (0, 13, 49):
        paired = np.isfinite(obs[:, p])
        np.testing.assert_allclose(
            tables.obs[p], np.percentile(obs[paired, p], DEFAULT_PROBS), rtol=1e-6
        )
        np.testing.assert_allclose(
            tables.model[p], np.percentile(model[paired, p], DEFAULT_PROBS), rtol=1e-6
        )
        assert tables.n[p] == paired.sum()


def test_cdf_match_maps_to_the_model_climatology() -> None:
    model, obs = _series(1)
    ids = np.arange(50, dtype=np.int64)
    tables = fit_cdf(model, obs, ids)
    # the table's own percentiles map exactly onto the model's
    matched, ok = cdf_match(tables.obs[:, 7], ids, tables)
    assert ok.all()
    np.testing.assert_allclose(matched, tables.model[:, 7], rtol=1e-5)
    # rescaled SMAP has the model's distribution (median and spread) per pixel
    rescaled = np.stack([cdf_match(obs[t], ids, tables)[0] for t in range(obs.shape[0])])
    paired = np.isfinite(obs)
    for p in (3, 30):
        np.testing.assert_allclose(
            np.median(rescaled[paired[:, p], p]), np.median(model[paired[:, p], p]), atol=2e-3
        )
    # monotone in the observation, clamped beyond the extremes
    x = np.linspace(-0.5, 1.5, 201)
    y, _ = cdf_match(x, np.full(x.size, 4), tables)
    assert (np.diff(y) >= 0).all()
    assert y[0] == tables.model[4, 0] and y[-1] == tables.model[4, -1]


def test_pixels_without_a_table_are_not_matched() -> None:
    model, obs = _series(2, n_pix=3)
    obs[:, 1] = np.nan  # never observed: no table
    tables = fit_cdf(model, obs, np.array([10, 11, 12]), min_samples=30)
    assert list(tables.cell_ids) == [10, 12]
    values, ok = cdf_match(np.array([0.2, 0.2, np.nan, 0.2]), np.array([10, 11, 12, 99]), tables)
    assert list(ok) == [True, False, False, False]
    assert np.isfinite(values[0]) and np.isnan(values[1:]).all()
    again = CdfTables.from_arrays(tables.to_arrays())
    np.testing.assert_array_equal(again.model, tables.model)
    np.testing.assert_array_equal(again.cell_ids, tables.cell_ids)
    with pytest.raises(ValueError, match="probs"):
        fit_cdf(model, obs, np.arange(3), probs=(5.0, 50.0, 100.0))
