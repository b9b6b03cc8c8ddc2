"""Triple collocation (TC) over whole grids at once.

Three collocated series ``x, y, z`` of the same geophysical signal with independent, zero-mean
errors (``i = a_i + b_i·s + ε_i``) reveal each product's error variance and its correlation with
the unknown truth through their covariances alone. With ``Q_ij`` the sample covariance
(``ddof = 1``) over a pixel's **common valid days** (all three finite):

- ρ²_x = Q_xy·Q_xz / (Q_xx·Q_yz) — squared correlation with the truth (McColl et al. 2014),
  cyclic for y and z;
- σ²_εx = Q_xx − Q_xy·Q_xz / Q_yz — error variance in x's own units, cyclic;
- β_i = Q_ref,k / Q_i,k (k the third product) — scales product i onto the reference
  (``β_ref = 1``): ``β_i·(i − mean_i)`` has the reference's signal amplitude (pytesmo's
  ``beta``);
- σ_εi·β_i — error SD in the reference's units (pytesmo's ``err_std``);
- SNR_dB = −10·log10(| |Q_ii·Q_jk / (Q_ij·Q_ik)| − 1 |) — equal to 10·log10(ρ²/(1 − ρ²)) where
  ρ² ∈ (0, 1] (Gruber et al. 2020, Eq. 11, as pytesmo computes it).

Everything is computed for every pixel of arrays shaped ``(..., time)`` in blocks of pixels
(bounded memory, no loop over single pixels); the numbers equal
``pytesmo.metrics.tcol_metrics(x, y, z, ref_ind=ref)`` on each pixel's common days. The raw
estimates are returned wherever they are computable; :attr:`TCResult.valid` and
:attr:`TCResult.reason` say where they may be used (:class:`TCReason`), and
:meth:`TCResult.masked` blanks the rest.

Correlated errors
-----------------
TC assumes the three errors independent. Where two products' errors correlate (two land models
sharing forcing and physics), their error variances come out too small and the third's too
large. :func:`error_cross_correlation` estimates that correlation by extended collocation with a
fourth, independent instrument (Gruber et al. 2016, Int. J. Appl. Earth Obs. 45, 200–211): with
x and a independent of each other and of y and z,
``c_yz = Q_yz − Q_xy·Q_az/Q_xa``, ``σ²_y = Q_yy − Q_xy·Q_ay/Q_xa``,
``σ²_z = Q_zz − Q_xz·Q_az/Q_xa`` and ``r_yz = c_yz/√(σ²_y·σ²_z)``, over the days all four are
finite.

This module is part of the science core: it imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = ["TCReason", "TCResult", "error_cross_correlation", "triple_collocation"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_BLOCK_ELEMENTS = 2_000_000
"""Pixels × days handled at once (bounds the float64 temporaries to ~100 MB)."""
_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


class TCReason(IntEnum):
    """Why a pixel's triple collocation is valid or not (:attr:`TCResult.reason`).

    Checked in this order; the first that applies is recorded.
    """

    OK = 0
    """All checks passed."""
    TOO_FEW = 1
    """Fewer than ``min_n`` common valid days."""
    NONPOSITIVE_COV = 2
    """A variance or covariance of the triplet is ≤ 0 (or undefined)."""
    RHO2_OUT_OF_RANGE = 3
    """A product's ρ² is outside (0, 1] (its error variance estimate is negative)."""


@dataclass(frozen=True)
class TCResult:
    """Triple-collocation statistics per pixel; ``...`` are the leading dims of the input.

    Attributes
    ----------
    n:
        Common valid days, int64 ``(...)``.
    mean:
        Mean of each product over the common days, ``(3, ...)``, the products' units.
    rho2:
        Squared correlation of each product with the unknown truth, ``(3, ...)``, unitless.
    err_var:
        Error variance of each product in its own units squared (e.g. (m3 m-3)²), ``(3, ...)``.
    beta:
        Scaling of each product onto the reference, ``(3, ...)``, unitless; 1 for the reference.
    err_std_scaled:
        Error SD in the reference's units, ``sqrt(err_var)·beta``, ``(3, ...)``.
    snr_db:
        Signal-to-noise ratio in dB, ``(3, ...)``.
    valid:
        Where the statistics may be used, bool ``(...)``.
    reason:
        :class:`TCReason` code, int8 ``(...)``.
    ref:
        Index of the reference product (0, 1 or 2).
    """

    n: IntArray
    mean: FloatArray
    rho2: FloatArray
    err_var: FloatArray
    beta: FloatArray
    err_std_scaled: FloatArray
    snr_db: FloatArray
    valid: BoolArray
    reason: npt.NDArray[np.int8]
    ref: int = 0

    @property
    def rho(self) -> FloatArray:
        """Correlation with the truth, ``sqrt(rho2)`` (NaN where ρ² < 0), ``(3, ...)``."""
        with np.errstate(invalid="ignore"):
            return np.asarray(np.sqrt(self.rho2))

    @property
    def err_std(self) -> FloatArray:
        """Error SD in each product's own units, ``sqrt(err_var)`` (NaN where < 0), ``(3, ...)``."""
        with np.errstate(invalid="ignore"):
            return np.asarray(np.sqrt(self.err_var))

    @property
    def snr(self) -> FloatArray:
        """Linear signal-to-noise ratio ``10**(snr_db/10)``, ``(3, ...)``."""
        return np.asarray(10.0 ** (self.snr_db / 10.0))

    def masked(self) -> TCResult:
        """A copy whose per-product statistics are NaN where :attr:`valid` is False."""

        def blank(a: FloatArray) -> FloatArray:
            return np.where(self.valid, a, np.nan)

        return replace(
            self,
            mean=blank(self.mean),
            rho2=blank(self.rho2),
            err_var=blank(self.err_var),
            beta=blank(self.beta),
            err_std_scaled=blank(self.err_std_scaled),
            snr_db=blank(self.snr_db),
        )


def _moments(stack: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Counts, means (3, P) and covariances (6, P) in :data:`_PAIRS` order of a (3, P, T) block."""
    ok = np.isfinite(stack).all(axis=0)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(ok, stack, 0.0).sum(axis=-1) / n
        anomaly = np.where(ok, stack - mean[..., None], 0.0)
        cov = np.stack([(anomaly[i] * anomaly[j]).sum(axis=-1) for i, j in _PAIRS]) / (n - 1)
    return n.astype(np.int64), mean, cov


def _statistics(
    cov: FloatArray, ref: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """ρ², error variance, β, scaled error SD and SNR (dB), each (3, P), from covariances."""
    q: dict[tuple[int, int], FloatArray] = {pair: cov[k] for k, pair in enumerate(_PAIRS)}

    def c(i: int, j: int) -> FloatArray:
        return q[(min(i, j), max(i, j))]

    rho2, err_var, beta, snr = [], [], [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            ratio = c(i, i) * c(j, k) / (c(i, j) * c(i, k))  # = 1/ρ²
            rho2.append(1.0 / ratio)
            err_var.append(c(i, i) - c(i, j) * c(i, k) / c(j, k))
            snr.append(10.0 * np.log10(1.0 / np.abs(np.abs(ratio) - 1.0)))
            if i == ref:
                beta.append(np.ones_like(c(i, i)))
            else:
                other = 3 - i - ref
                beta.append(c(ref, other) / c(i, other))
        ev, b = np.stack(err_var), np.stack(beta)
        scaled = np.sqrt(ev) * b
    return np.stack(rho2), ev, b, scaled, np.stack(snr)


def _reason(n: IntArray, cov: FloatArray, rho2: FloatArray, min_n: int) -> npt.NDArray[np.int8]:
    nonpositive = ~(cov > 0.0).all(axis=0)
    out_of_range = ~((rho2 > 0.0) & (rho2 <= 1.0)).all(axis=0)
    codes = np.select(
        [n < min_n, nonpositive, out_of_range],
        [TCReason.TOO_FEW, TCReason.NONPOSITIVE_COV, TCReason.RHO2_OUT_OF_RANGE],
        default=TCReason.OK,
    )
    return codes.astype(np.int8)


def triple_collocation(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    min_n: int = 100,
    ref: int = 0,
) -> TCResult:
    """Triple-collocation statistics of three collocated products, per pixel.

    Parameters
    ----------
    x, y, z:
        The three products, same shape ``(..., time)`` (e.g. ``(lat, lon, time)``), any units
        (soil moisture: m3 m-3); NaN marks a missing value. Each pixel uses the days on which
        all three are finite.
    min_n:
        Fewest common valid days for a valid pixel (≥ 3).
    ref:
        Index of the reference product for ``beta`` and ``err_std_scaled`` (0 = x, as
        ``pytesmo.metrics.tcol_metrics(..., ref_ind=0)``).

    Returns
    -------
    TCResult
        Arrays over the leading dims ``(...)``; per-product fields are ``(3, ...)`` in the
        order x, y, z. Raw estimates everywhere they are computable, with :attr:`~TCResult.valid`
        and :attr:`~TCResult.reason` (:class:`TCReason`) saying where they hold.

    Raises
    ------
    ValueError
        The three shapes differ, there is no time axis, ``min_n < 3`` or ``ref`` ∉ {0, 1, 2}.
    """
    arrays = [np.asarray(a) for a in (x, y, z)]  # float64 one block at a time
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim < 1:
        raise ValueError(
            f"x, y, z must share one shape (..., time); got {[a.shape for a in arrays]}"
        )
    if min_n < 3:
        raise ValueError(f"min_n must be ≥ 3 (a triplet needs 3 days), got {min_n}")
    if ref not in (0, 1, 2):
        raise ValueError(f"ref must be 0, 1 or 2 (the reference's position), got {ref}")
    *lead, n_time = arrays[0].shape
    pixels = int(np.prod(lead, dtype=np.int64))
    flat = [a.reshape(pixels, n_time) for a in arrays]
    n = np.zeros(pixels, dtype=np.int64)
    reason = np.zeros(pixels, dtype=np.int8)
    stats = np.full((6, 3, pixels), np.nan)  # mean, rho2, err_var, beta, err_std_scaled, snr_db
    block = max(1, _BLOCK_ELEMENTS // max(n_time, 1))
    for start in range(0, pixels, block):
        part = slice(start, start + block)
        n[part], mean, cov = _moments(np.stack([a[part] for a in flat]).astype(np.float64))
        estimates = _statistics(cov, ref)
        stats[:, :, part] = (mean, *estimates)
        reason[part] = _reason(n[part], cov, estimates[0], min_n)
    mean, rho2, err_var, beta, scaled, snr = stats.reshape(6, 3, *lead)
    return TCResult(
        n=n.reshape(lead),
        mean=mean,
        rho2=rho2,
        err_var=err_var,
        beta=beta,
        err_std_scaled=scaled,
        snr_db=snr,
        valid=(reason == TCReason.OK).reshape(lead),
        reason=reason.reshape(lead),
        ref=ref,
    )


def error_cross_correlation(
    x: npt.ArrayLike, y: npt.ArrayLike, z: npt.ArrayLike, a: npt.ArrayLike, *, min_n: int = 100
) -> tuple[FloatArray, IntArray]:
    """Correlation of the errors of ``y`` and ``z`` by extended collocation (module docstring).

    Parameters
    ----------
    x, a:
        Two instruments whose errors are independent of each other and of y's and z's (for
        the labels: SMAP and an antecedent precipitation index).
    y, z:
        The pair whose error correlation is estimated.
        All four share one shape ``(..., time)``; NaN marks a missing value.
    min_n:
        Fewest days with all four finite for an estimate.

    Returns
    -------
    (r_yz, n): the error correlation ``(...)``, NaN where undefined (too few days, a
    non-positive ``Q_xa`` or error variance), and the common days ``(...)``.
    """
    arrays = [np.asarray(v) for v in (x, y, z, a)]
    if len({v.shape for v in arrays}) != 1 or arrays[0].ndim < 1:
        raise ValueError(
            f"x, y, z, a must share one shape (..., time); got {[v.shape for v in arrays]}"
        )
    *lead, n_time = arrays[0].shape
    pixels = int(np.prod(lead, dtype=np.int64))
    flat = [v.reshape(pixels, n_time) for v in arrays]
    r = np.full(pixels, np.nan)
    n = np.zeros(pixels, dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // max(n_time, 1))
    for start in range(0, pixels, block):
        part = slice(start, start + block)
        r[part], n[part] = _ecc_block(np.stack([v[part] for v in flat]).astype(np.float64), min_n)
    return r.reshape(lead), n.reshape(lead)


def _ecc_block(stack: FloatArray, min_n: int) -> tuple[FloatArray, IntArray]:
    """:func:`error_cross_correlation` of a (4, P, T) block."""
    ok = np.isfinite(stack).all(axis=0)
    count = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, stack, 0.0).sum(axis=-1) / count
        anom = np.where(ok, stack - mean[..., None], 0.0)

        def q(i: int, j: int) -> FloatArray:
            return np.asarray((anom[i] * anom[j]).sum(axis=-1) / (count - 1))

        xa = q(0, 3)
        c_yz = q(1, 2) - q(0, 1) * q(2, 3) / xa
        var_y = q(1, 1) - q(0, 1) * q(1, 3) / xa
        var_z = q(2, 2) - q(0, 2) * q(2, 3) / xa
        est = c_yz / np.sqrt(var_y * var_z)
    good = (count >= min_n) & (xa > 0) & (var_y > 0) & (var_z > 0)
    return np.where(good, est, np.nan), count.astype(np.int64)
