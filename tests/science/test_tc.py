"""Triple collocation: agreement with pytesmo, reference values, validity, invariances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from pytesmo.metrics import tcol_metrics

import smda.science.tc
from smda.ingest.readers.ismn import read_ismn
from smda.science.tc import TCReason, triple_collocation

HAWAII = Path("colocated/hawaii_qa4sm")
POINT_CSV = Path("colocated/pytesmo_point/cci44_merra2_gldas21_era5_at_-91.625_32.875.csv")


def _triplet(
    rng: np.random.Generator,
    n: int,
    sd: tuple[float, float, float] = (0.02, 0.07, 0.04),
    gain: tuple[float, float, float] = (1.0, 0.9, 1.6),
    offset: tuple[float, float, float] = (0.0, 0.2, 0.5),
) -> np.ndarray:
    """Three products ``offset + gain·(s + ε)`` of a signal s ~ N(0.3, 0.2): (3, n)."""
    s = rng.normal(0.3, 0.2, n)
    return np.stack(
        [o + g * (s + rng.normal(0.0, e, n)) for o, g, e in zip(offset, gain, sd, strict=True)]
    )


def _pytesmo(x: np.ndarray, y: np.ndarray, z: np.ndarray, ref: int = 0) -> tuple[np.ndarray, ...]:
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    return tcol_metrics(x[ok], y[ok], z[ok], ref_ind=ref)


def _assert_matches_pytesmo(
    result: smda.science.tc.TCResult, x: np.ndarray, y: np.ndarray, z: np.ndarray, ref: int = 0
) -> None:
    snr, err_std, beta = _pytesmo(x, y, z, ref)
    np.testing.assert_allclose(result.snr_db, snr, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(result.err_std_scaled, err_std, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.beta, beta, rtol=1e-10, atol=1e-12)


# -- agreement with pytesmo -----------------------------------------------------------------------
def test_reference_scenario_matches_pytesmo_and_analytic_values() -> None:
    """SCIENCE.md §1: n = 10⁶, error SDs (0.02, 0.07, 0.04), y and z affinely distorted."""
    x, y, z = _triplet(np.random.default_rng(2025), 1_000_000)
    result = triple_collocation(x, y, z)
    _assert_matches_pytesmo(result, x, y, z)
    assert result.valid and result.reason == TCReason.OK and result.n == 1_000_000
    signal = 0.2**2
    rho2 = [signal / (signal + e**2) for e in (0.02, 0.07, 0.04)]
    np.testing.assert_allclose(rho2, [0.99010, 0.89087, 0.96154], atol=1e-5)
    np.testing.assert_allclose(result.rho2, rho2, atol=2e-3)
    np.testing.assert_allclose(result.snr_db, [20.000, 9.119, 13.979], atol=0.1)
    np.testing.assert_allclose(result.err_std_scaled, [0.02, 0.07, 0.04], rtol=0.02)
    # own units: y and z errors are 0.9 and 1.6 times larger
    np.testing.assert_allclose(np.sqrt(result.err_var), [0.02, 0.9 * 0.07, 1.6 * 0.04], rtol=0.02)
    np.testing.assert_allclose(result.beta, [1.0, 1 / 0.9, 1 / 1.6], rtol=0.01)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ref", [0, 1, 2])
def test_random_series_match_pytesmo(seed: int, ref: int) -> None:
    rng = np.random.default_rng(seed)
    sd = tuple(rng.uniform(0.005, 0.1, 3))
    gain = tuple(rng.uniform(0.3, 3.0, 3))
    offset = tuple(rng.uniform(-1.0, 1.0, 3))
    x, y, z = _triplet(rng, int(rng.integers(150, 3000)), sd, gain, offset)
    for a in (x, y, z):  # each product misses other days
        a[rng.random(a.size) < 0.2] = np.nan
    result = triple_collocation(x, y, z, ref=ref)
    _assert_matches_pytesmo(result, x, y, z, ref)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    assert result.n == ok.sum()
    cov = np.cov(np.stack([x[ok], y[ok], z[ok]]))
    np.testing.assert_allclose(result.rho2[0], cov[0, 1] * cov[0, 2] / (cov[0, 0] * cov[1, 2]))
    np.testing.assert_allclose(result.err_var[1], cov[1, 1] - cov[0, 1] * cov[1, 2] / cov[0, 2])
    np.testing.assert_allclose(result.mean, [np.mean(a[ok]) for a in (x, y, z)])


def test_grid_equals_pixel_by_pixel_pytesmo(monkeypatch: pytest.MonkeyPatch) -> None:
    """(lat, lon, time) at once, each pixel with its own errors and gaps, in several blocks."""
    rng = np.random.default_rng(7)
    shape, n_time = (4, 5), 400
    stack = np.empty((3, *shape, n_time))
    for i, j in np.ndindex(shape):
        sd = tuple(rng.uniform(0.01, 0.08, 3))
        stack[:, i, j] = _triplet(rng, n_time, sd, tuple(rng.uniform(0.5, 2, 3)))
    stack[rng.random(stack.shape) < 0.3] = np.nan
    monkeypatch.setattr(smda.science.tc, "_BLOCK_ELEMENTS", 3 * n_time)  # 3 pixels per block
    result = triple_collocation(*stack)
    assert result.n.shape == shape and result.rho2.shape == (3, *shape)
    for i, j in np.ndindex(shape):
        pixel = smda.science.tc.TCResult(
            **{
                name: getattr(result, name)[..., i, j]
                for name in ("n", "mean", "rho2", "err_var", "beta", "err_std_scaled", "snr_db")
            },
            valid=result.valid[i, j],
            reason=result.reason[i, j],
        )
        _assert_matches_pytesmo(pixel, *stack[:, i, j])


# -- validity -------------------------------------------------------------------------------------
def test_reasons_for_invalid_pixels() -> None:
    rng = np.random.default_rng(3)
    n = 500
    ok = _triplet(rng, n)
    few = ok.copy()
    few[0, 60:] = np.nan  # 60 common days
    anti = ok.copy()
    anti[2] = -anti[2]  # negatively correlated product: covariances < 0
    s, e = rng.normal(0, 1, n), rng.normal(0, np.sqrt(0.5), n)
    out_of_range = np.stack([s + rng.normal(0, np.sqrt(0.1), n), s + e, s - e])  # ρ²_x ≈ 1.8
    empty = np.full((3, n), np.nan)
    constant = ok.copy()
    constant[1] = 0.25
    stack = np.stack([ok, few, anti, out_of_range, empty, constant], axis=1)
    result = triple_collocation(*stack, min_n=100)
    assert result.reason.tolist() == [
        TCReason.OK,
        TCReason.TOO_FEW,
        TCReason.NONPOSITIVE_COV,
        TCReason.RHO2_OUT_OF_RANGE,
        TCReason.TOO_FEW,
        TCReason.NONPOSITIVE_COV,
    ]
    assert result.valid.tolist() == [True, False, False, False, False, False]
    assert result.n.tolist() == [n, 60, n, n, 0, n]
    assert result.rho2[0, 3] > 1.0 and result.err_var[0, 3] < 0.0
    # the raw estimates stay available for diagnosis; masked() blanks them
    assert np.isfinite(result.rho2[:, 1]).all()
    masked = result.masked()
    assert np.isnan(masked.rho2[:, 1:]).all() and np.isnan(masked.err_std_scaled[:, 1:]).all()
    np.testing.assert_array_equal(masked.rho2[:, 0], result.rho2[:, 0])
    assert triple_collocation(*few, min_n=60).valid


def test_derived_quantities() -> None:
    x, y, z = _triplet(np.random.default_rng(5), 2000)
    r = triple_collocation(x, y, z)
    np.testing.assert_allclose(r.snr, r.rho2 / (1 - r.rho2), rtol=1e-10)
    np.testing.assert_allclose(r.rho, np.sqrt(r.rho2))
    np.testing.assert_allclose(r.err_std_scaled, r.err_std * r.beta)


def test_rejects_bad_input() -> None:
    a = np.zeros((2, 10))
    with pytest.raises(ValueError, match="share one shape"):
        triple_collocation(a, a, np.zeros((3, 10)))
    with pytest.raises(ValueError, match="min_n"):
        triple_collocation(a, a, a, min_n=2)
    with pytest.raises(ValueError, match="ref"):
        triple_collocation(a, a, a, ref=3)


# -- invariance (hypothesis) ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    product=st.integers(0, 2),
    offset=st.floats(-10.0, 10.0),
    scale=st.floats(0.05, 20.0) | st.floats(-20.0, -0.05),
)
def test_affine_rescaling_of_a_product(
    seed: int, product: int, offset: float, scale: float
) -> None:
    """ρ² and SNR do not change; the product's error variance scales with scale²."""
    stack = _triplet(np.random.default_rng(seed), 400, (0.03, 0.05, 0.04))
    before = triple_collocation(*stack)
    stack[product] = offset + scale * stack[product]
    after = triple_collocation(*stack)
    np.testing.assert_allclose(after.rho2, before.rho2, rtol=1e-9)
    np.testing.assert_allclose(after.snr_db, before.snr_db, rtol=1e-9, atol=1e-9)
    expected = before.err_var.copy()
    expected[product] *= scale**2
    np.testing.assert_allclose(after.err_var, expected, rtol=1e-8)


# -- real data ------------------------------------------------------------------------------------
def _point(path: Path, gpi: int, variable: str) -> pd.Series:
    """One location's series from a qa4sm/pynetcf time-series file, averaged per UTC day."""
    with xr.open_dataset(path) as ds:
        i = int(np.flatnonzero(ds["location_id"].values == gpi)[0])
        series = ds[variable].isel(locations=i).to_series()
    return series.groupby(series.index.floor("D")).mean()


@pytest.fixture(scope="module")
def hawaii(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """STRUCTURE.md §5.2: COSMOS SilverSword G-flag daily means (any count), SMAP V8 AM and
    ERA5-Land at the nearest points, 2017–2018, days with all three."""
    root = real_data / HAWAII
    stations = read_ismn(
        root / "ismn_ceop", workdir=tmp_path_factory.mktemp("ismn"), max_depth=0.25, min_count=1
    )
    cosmos = next(s for s in stations if s.network == "COSMOS" and s.station == "SilverSword")
    ts = root / "ts_cell0165"
    columns = {
        "ismn": cosmos.soil_moisture,
        "smap": _point(ts / "SMAP_L3/SMAP_V8_AM/netcdf/0165.nc", 261309, "soil_moisture"),
        "era5land": _point(ts / "ERA5_LAND/ERA5_LAND_V20190904/0165.nc", 2529246, "swvl1"),
    }
    frame = pd.concat(columns, axis=1, sort=True).loc["2017-01-01":"2018-12-31"]
    return frame.dropna()


def test_real_hawaii_triplet(hawaii: pd.DataFrame) -> None:
    x, y, z = hawaii.to_numpy().T
    result = triple_collocation(x, y, z)
    assert result.n == 247 and result.valid
    np.testing.assert_allclose(hawaii.mean(), [0.305096, 0.188995, 0.344147], atol=5e-7)
    np.testing.assert_allclose(result.err_std, [0.034499, 0.013432, 0.031718], atol=5e-7)
    np.testing.assert_allclose(result.rho2, [0.7994, 0.7716, 0.6356], atol=5e-5)
    _assert_matches_pytesmo(result, x, y, z)


def test_real_pytesmo_point_csv(real_data: Path) -> None:
    frame = pd.read_csv(real_data / POINT_CSV, index_col=0, parse_dates=True)
    x, y, z = (frame[c].to_numpy() for c in ("sm", "SoilMoi0_10cm_inst", "swvl1"))
    result = triple_collocation(x, y, z)
    assert result.n == 4521 and result.valid
    np.testing.assert_allclose(result.err_std, [0.036918, 0.039122, 0.012680], atol=5e-7)
    _assert_matches_pytesmo(result, x, y, z)


def test_error_cross_correlation_by_extended_collocation() -> None:
    """Four series of one signal; y's and z's errors correlate by a known amount per pixel,
    x and a are independent instruments: the estimate recovers it."""
    from smda.science.tc import error_cross_correlation

    rng = np.random.default_rng(11)
    n_pix, n_time = 40, 20000
    target = np.linspace(-0.3, 0.7, n_pix)[:, None]
    s = rng.normal(0.25, 0.03, (n_pix, n_time))
    common = rng.normal(size=(n_pix, n_time))
    own_y, own_z = rng.normal(size=(2, n_pix, n_time))
    ey = 0.03 * (np.sqrt(np.abs(target)) * common + np.sqrt(1 - np.abs(target)) * own_y)
    ez = 0.04 * (
        np.sign(target) * np.sqrt(np.abs(target)) * common + np.sqrt(1 - np.abs(target)) * own_z
    )
    x = s + rng.normal(0, 0.04, s.shape)
    y = 0.1 + 0.8 * s + ey
    z = -0.05 + 1.2 * s + ez
    a = 3.0 + 20.0 * s + rng.normal(0, 1.0, s.shape)  # another unit, independent errors
    x[:, ::7] = np.nan  # gaps: only the common days count
    r, n = error_cross_correlation(x, y, z, a, min_n=100)
    assert np.median(np.abs(r - target[:, 0])) < 0.03
    np.testing.assert_allclose(r, target[:, 0], atol=0.08)
    assert np.all(n == n_time - len(range(0, n_time, 7)))
    short, _ = error_cross_correlation(x[:, :50], y[:, :50], z[:, :50], a[:, :50], min_n=100)
    assert np.all(np.isnan(short))
