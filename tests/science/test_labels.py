"""TC-R label merging: recovery on the twin's truth, weights, scaling and fallbacks."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from staged_world import twin_precip

from smda.geo.grid import BBox
from smda.science.features import antecedent_precipitation
from smda.science.labels import LabelFlag, LabelResult, merge_labels
from smda.science.tc import TCReason
from smda_twin.products import true_skill
from smda_twin.world import World, WorldSpec

START, END = date(2015, 4, 1), date(2017, 3, 31)
NAMES = ("smap", "era5land", "gldas")


@dataclass(frozen=True)
class Twin:
    products: list[xr.DataArray]
    truth: xr.DataArray
    merged: LabelResult


@pytest.fixture(scope="module")
def twin() -> Twin:
    """The demo region (40 × 40 cells), seed 42, two years; the instrument is the antecedent
    precipitation index of the world's MSWEP, as training uses."""
    world = World(WorldSpec(seed=42, region=BBox(-105, 30, -95, 40)))
    products = [world.product_daily(name, START, END) for name in NAMES]
    precip = twin_precip(world, START - timedelta(days=60), END)
    api = antecedent_precipitation(precip, 0.85).sel(time=slice(str(START), str(END)))
    api = api.assign_coords(time=products[0]["time"])
    return Twin(products, world.truth(START, END), merge_labels(products, instrument=api))


def _true(product: xr.DataArray, twin: Twin, common: xr.DataArray) -> xr.Dataset:
    return true_skill(product.where(common), twin.truth)


# -- the OSSE -------------------------------------------------------------------------------------
def _error_correlation(twin: Twin, common: xr.DataArray) -> np.ndarray:
    """The true correlation of ERA5-Land's and GLDAS's errors (regression residuals on the
    truth) over the common days."""

    def anomaly(product: xr.DataArray) -> xr.DataArray:
        p = product.where(common)
        resid = p - true_skill(p, twin.truth)["beta"] * twin.truth.where(common)
        return resid - resid.mean("time")

    return xr.corr(anomaly(twin.products[1]), anomaly(twin.products[2]), "time").values


def test_tc_recovers_error_sd_where_its_assumptions_hold(twin: Twin) -> None:
    """The twin's ERA5-Land and GLDAS share forcing errors and physics: where the instrument
    detects their correlated errors the pixels are flagged; elsewhere TC recovers each error SD
    within 25 % and ρ within 0.1, against the truth on the same (common) days."""
    tc, flag = twin.merged.tc, twin.merged.flag.values
    valid = tc["valid"].values
    assert valid.mean() > 0.95
    flagged = flag == LabelFlag.TC_CORRELATED_ERRORS
    held = valid & ~flagged
    assert 0.05 < flagged.mean() < 0.8, "some, not all, pixels show correlated errors"
    common = twin.products[0].notnull() & twin.products[1].notnull() & twin.products[2].notnull()
    true_ecc = _error_correlation(twin, common)
    assert np.median(true_ecc[flagged]) > np.median(true_ecc[held]) + 0.1
    for i, product in enumerate(twin.products):
        true = _true(product, twin, common)
        rho, rho_hat = true["rho"].values[held], np.sqrt(tc["rho2"].values[i][held])
        err, err_hat = true["err_sd"].values[held], np.sqrt(tc["err_var"].values[i][held])
        assert abs(np.median(err_hat / err) - 1) < 0.25, product.name
        assert np.mean(np.abs(err_hat / err - 1) <= 0.25) > 0.75, product.name
        assert np.median(np.abs(rho_hat - rho)) < 0.1, product.name


def test_merged_label_beats_every_product(twin: Twin) -> None:
    label = twin.merged.label
    assert label.dtype == np.float32 and label.dims == ("time", "lat", "lon")
    assert label.attrs["units"] == "m3 m-3" and label.attrs["reference"] == "smap"
    made_by_tc = twin.merged.flag.isin([LabelFlag.TC, LabelFlag.TC_CORRELATED_ERRORS])
    assert float(made_by_tc.mean()) > 0.95
    assert label.notnull().all()  # ERA5-Land and GLDAS fill SMAP's gaps: seamless
    r_label = true_skill(label, twin.truth)["rho"]
    for product in twin.products:
        r_product = true_skill(product, twin.truth)["rho"]
        assert float(r_label.median()) > float(r_product.median()) + 0.02, product.name
        assert float((r_label > r_product).mean()) > 0.6, product.name
    # on SMAP's scale: the twin's SMAP is unbiased, so is the label
    assert abs(float(true_skill(label, twin.truth)["bias"].median())) < 0.005


@pytest.mark.parametrize("scaling", ["tc_beta", "mean_std"])
def test_optimal_weights_beat_equal_weights_when_errors_are_independent(
    twin: Twin, scaling: str
) -> None:
    """Products of the twin's truth with independent errors of different sizes: the
    minimum-variance weights beat equal weights (as TC-R assumes)."""
    rng = np.random.default_rng(3)
    truth = twin.truth
    products = [
        (offset + scale * truth + rng.normal(0.0, sd, truth.shape)).rename(name)
        for name, offset, scale, sd in (
            ("x", 0.0, 1.0, 0.02),
            ("y", 0.1, 0.7, 0.05),
            ("z", -0.05, 1.3, 0.035),
        )
    ]

    def median_r(weighting: str) -> float:
        merged = merge_labels(products, scaling=scaling, weighting=weighting)  # type: ignore[arg-type]
        return float(true_skill(merged.label, truth)["rho"].median())

    assert median_r("optimal") > median_r("equal")


def test_correlated_errors_mislead_the_optimal_weights(twin: Twin) -> None:
    """The fraternal twin's regime: ERA5-Land's and GLDAS's correlated errors make TC
    underestimate them, and where they are flagged its weights favour them too much."""
    flagged = twin.merged.flag == LabelFlag.TC_CORRELATED_ERRORS
    equal = merge_labels(twin.products, weighting="equal")
    r_optimal = true_skill(twin.merged.label, twin.truth)["rho"].where(flagged)
    r_equal = true_skill(equal.label, twin.truth)["rho"].where(flagged)
    assert float(r_equal.median()) > float(r_optimal.median())


# -- crafted data ---------------------------------------------------------------------------------
def _field(values: np.ndarray, name: str) -> xr.DataArray:
    """(time, lat, lon) on a small window of the 0.25° grid (north-west corner 45° N, 10° E)."""
    n_time, n_lat, n_lon = values.shape
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range("2020-01-01", periods=n_time, freq="D"),
            "lat": 44.875 - 0.25 * np.arange(n_lat),
            "lon": 10.125 + 0.25 * np.arange(n_lon),
        },
        name=name,
        attrs={"units": "m3 m-3"},
    )


def _products(
    shape: tuple[int, int, int],
    *,
    sd: tuple[float, float, float] = (0.02, 0.04, 0.03),
    gain: tuple[float, float, float] = (1.0, 0.7, 1.3),
    offset: tuple[float, float, float] = (0.0, 0.1, -0.05),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Truth (T, Y, X) and three products (3, T, Y, X) ``offset + gain·truth + ε``."""
    rng = np.random.default_rng(seed)
    truth = 0.25 + 0.08 * rng.standard_normal(shape)
    noise = rng.standard_normal((3, *shape))
    stack = np.stack(
        [o + g * truth + e * w for o, g, e, w in zip(offset, gain, sd, noise, strict=True)]
    )
    return truth, stack


def _merge(stack: np.ndarray, **kwargs: object) -> LabelResult:
    return merge_labels([_field(a, n) for a, n in zip(stack, NAMES, strict=True)], **kwargs)  # type: ignore[arg-type]


def test_fallback_flags_on_crafted_pixels() -> None:
    _, stack = _products((400, 2, 3))
    stack[1, 150:, 0, 1] = np.nan  # (0,1): 150 common days < min_n; product 1 unusable
    stack[2, :, 0, 2] *= -1.0  # (0,2): negative covariances; product 2 unusable
    stack[0, :, 1, 0] = np.nan  # (1,0): the reference never observed
    stack[1:, :, 1, 1] = np.nan  # (1,1): only the reference
    stack[0, 10:, 1, 2] = np.nan  # (1,2): the reference on 10 days only
    equal = _merge(stack, min_n=200, fallback="equal")
    best = _merge(stack, min_n=200, fallback="best")
    tc, none = LabelFlag.TC, LabelFlag.NO_DATA
    fb_eq, fb_best = LabelFlag.FALLBACK_EQUAL, LabelFlag.FALLBACK_BEST
    assert equal.flag.dtype == np.uint8
    assert equal.flag.values.tolist() == [[tc, fb_eq, fb_eq], [none, fb_eq, fb_eq]]
    assert best.flag.values.tolist() == [[tc, fb_best, fb_best], [none, fb_best, fb_best]]
    reason = equal.tc["reason"].values
    assert reason[0, 1] == TCReason.TOO_FEW and reason[0, 2] == TCReason.NONPOSITIVE_COV
    assert reason[1, 0] == reason[1, 1] == reason[1, 2] == TCReason.TOO_FEW
    w = equal.weights.values
    np.testing.assert_allclose(w[:, 0, 1], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(w[:, 0, 2], [0.5, 0.5, 0.0])
    assert np.isnan(w[:, 1, 0]).all() and equal.label[:, 1, 0].isnull().all()
    np.testing.assert_allclose(w[:, 1, 1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(w[:, 1, 2], [1.0, 0.0, 0.0])  # 10 shared days < min_n
    # best: the usable product with the highest ρ² (at (0,1) products 0 and 2 are usable)
    wb = best.weights.values
    rho2 = best.tc["rho2"].values[:, 0, 1]
    pick = 0 if rho2[0] > rho2[2] else 2
    np.testing.assert_array_equal(wb[:, 0, 1], np.arange(3) == pick)
    np.testing.assert_array_equal(wb[:, [0, 1, 1], [2, 1, 2]], [[1] * 3, [0] * 3, [0] * 3])
    assert not np.allclose(equal.label[:, 0, 1], best.label[:, 0, 1])
    # a single-product pixel is that product: the reference itself where only it exists
    np.testing.assert_allclose(equal.label[:, 1, 1], stack[0, :, 1, 1].astype(np.float32))
    np.testing.assert_allclose(equal.label[:10, 1, 2], stack[0, :10, 1, 2].astype(np.float32))
    assert equal.label[10:, 1, 2].isnull().all()


def test_fallback_best_picks_the_highest_rho2() -> None:
    _, stack = _products((300, 1, 1), sd=(0.06, 0.01, 0.03), gain=(1.0, 1.0, 1.0), seed=5)
    stack[0, 150:] = np.nan  # TC on 150 days < min_n = 200
    merged = _merge(stack, min_n=200, fallback="best")
    assert merged.flag.item() == LabelFlag.FALLBACK_BEST
    assert merged.tc["reason"].item() == TCReason.TOO_FEW
    # usable products share ≥ min_n = 200 days with the reference: only the reference itself
    np.testing.assert_array_equal(merged.weights.values.ravel(), [1.0, 0.0, 0.0])
    merged = _merge(stack, min_n=150, fallback="best")
    assert merged.tc["reason"].item() == TCReason.OK  # 150 common days now suffice
    stack[2, 140:150] = np.nan  # 140 common days; product 2 shares 140 with the reference
    # min_n = 145: TC invalid, products 0 and 1 usable, product 1 (SD 0.01) has the best ρ²
    merged = _merge(stack, min_n=145, fallback="best")
    assert merged.flag.item() == LabelFlag.FALLBACK_BEST
    np.testing.assert_array_equal(merged.weights.values.ravel(), [0.0, 1.0, 0.0])


def test_fallback_mean_std_matches_to_the_reference() -> None:
    _, stack = _products((300, 1, 1), seed=6)
    stack[2, :] = np.nan  # no TC possible; equal weights of the reference and product 1
    merged = _merge(stack, fallback="equal")
    assert merged.flag.item() == LabelFlag.FALLBACK_EQUAL
    x = stack.astype(np.float32).astype(np.float64)
    matched = (x[1] - x[1].mean()) * x[0].std() / x[1].std() + x[0].mean()
    np.testing.assert_allclose(merged.label.values, (x[0] + matched) / 2, rtol=1e-5)


@pytest.mark.parametrize("scaling", ["tc_beta", "mean_std"])
@pytest.mark.parametrize("fallback", ["equal", "best"])
def test_degenerate_pixels_are_quiet_and_excluded(scaling: str, fallback: str) -> None:
    """Constant, empty or single-day products: no warning, no NaN leaking into the label."""
    _, stack = _products((200, 1, 4), seed=7)
    stack[1, :, 0, 0] = 0.3  # constant product
    stack[2, :, 0, 1] = np.nan  # empty product
    stack[:, 1:, 0, 2] = np.nan  # one day of everything
    stack[0, :, 0, 3] = 0.2  # constant reference
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = _merge(stack, scaling=scaling, fallback=fallback)
    assert (merged.flag != LabelFlag.TC).all() and (merged.flag != LabelFlag.NO_DATA).all()
    w = merged.weights.values
    assert w[1, 0, 0] == 0.0 and w[2, 0, 1] == 0.0 and np.isfinite(w).all()
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    label = merged.label.values
    assert np.isfinite(label[:, 0, [0, 1, 3]]).all()
    np.testing.assert_allclose(label[0, 0, 2], stack[0, 0, 0, 2], rtol=1e-6)
    np.testing.assert_allclose(label[:, 0, 3], 0.2, rtol=1e-6)  # on the reference's scale


@pytest.mark.parametrize("scaling", ["tc_beta", "mean_std"])
@pytest.mark.parametrize("weighting", ["optimal", "snr", "equal"])
def test_weights_follow_the_strategy(scaling: str, weighting: str) -> None:
    truth, stack = _products((3000, 2, 2), seed=1)
    merged = _merge(stack, scaling=scaling, weighting=weighting)
    rho2 = merged.tc["rho2"].values
    expected = {
        "snr": rho2 / (1 - rho2),
        "equal": np.ones_like(rho2),
        "optimal": rho2 / (1 - rho2) if scaling == "tc_beta" else np.sqrt(rho2) / (1 - rho2),
    }[weighting]
    np.testing.assert_allclose(merged.weights.values, expected / expected.sum(axis=0), rtol=1e-12)
    # tc_beta optimal ≡ inverse error variance in the reference's units
    if scaling == "tc_beta" and weighting == "optimal":
        inv = 1.0 / merged.tc["err_std_scaled"].values ** 2
        np.testing.assert_allclose(merged.weights.values, inv / inv.sum(axis=0), rtol=1e-9)
    # on the reference's scale: its mean, the truth's slope (gain 1, offset 0)
    label = merged.label.values.astype(np.float64)
    np.testing.assert_allclose(label.mean(axis=0), stack[0].mean(axis=0), atol=2e-3)
    slope = ((label - label.mean(0)) * (truth - truth.mean(0))).mean(0) / truth.var(0)
    # better than the best single product (x: ρ ≈ 0.970) unless weighted equally
    r = ((label - label.mean(0)) * (truth - truth.mean(0))).mean(0) / (label.std(0) * truth.std(0))
    if weighting != "equal":
        assert (r > 0.98).all(), r
    if scaling == "tc_beta":
        np.testing.assert_allclose(slope, 1.0, atol=0.02)


def test_missing_days_renormalise_the_weights() -> None:
    _, stack = _products((500, 1, 2), seed=2)
    stack[0, 100:200] = np.nan  # reference missing: products 1, 2 only
    stack[1:, 300:310] = np.nan  # reference only
    stack[:, 400] = np.nan  # nothing
    merged = _merge(stack, scaling="tc_beta")
    w = merged.weights.values
    tc = merged.tc
    scaled = [
        tc["beta"].values[i] * (stack[i] - tc["mean"].values[i]) + tc["mean"].values[0]
        for i in range(3)
    ]
    day = 150
    expected = (w[1] * scaled[1][day] + w[2] * scaled[2][day]) / (w[1] + w[2])
    np.testing.assert_allclose(merged.label.values[day], expected, rtol=1e-6)
    np.testing.assert_allclose(merged.label.values[305], stack[0, 305], rtol=1e-6)
    assert merged.label[400].isnull().all()
    day = 10
    full = sum(w[i] * scaled[i][day] for i in range(3))
    np.testing.assert_allclose(merged.label.values[day], full, rtol=1e-6)


def test_reference_by_name_sets_the_scale() -> None:
    _, stack = _products((400, 1, 2), seed=3)
    merged = _merge(stack, reference="era5land")
    assert merged.label.attrs["reference"] == "era5land"
    np.testing.assert_allclose(merged.tc["beta"].values[1], 1.0)
    np.testing.assert_allclose(merged.label.mean("time").values, stack[1].mean(axis=0), atol=2e-3)


def test_blocks_give_the_same_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    import smda.science.labels

    _, stack = _products((200, 5, 3), seed=4)
    whole = _merge(stack)
    monkeypatch.setattr(smda.science.labels, "_BLOCK_ELEMENTS", 3 * 3 * 200 * 2)  # two rows a block
    blocked = _merge(stack)
    xr.testing.assert_identical(whole.label, blocked.label)
    xr.testing.assert_identical(whole.tc, blocked.tc)
    xr.testing.assert_identical(whole.weights, blocked.weights)


def test_rejects_bad_input() -> None:
    _, stack = _products((50, 1, 2))
    fields = [_field(a, n) for a, n in zip(stack, NAMES, strict=True)]
    with pytest.raises(ValueError, match="exactly 3"):
        merge_labels(fields[:2])
    with pytest.raises(ValueError, match="scaling"):
        merge_labels(fields, scaling="cdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weighting"):
        merge_labels(fields, weighting="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reference"):
        merge_labels(fields, reference="ascat")
    with pytest.raises(ValueError, match="identical"):
        merge_labels([fields[0], fields[1], fields[2].isel(time=slice(1, None))])
    with pytest.raises(ValueError, match="distinct"):
        merge_labels(fields, names=["a", "a", "b"])
