"""Training labels by triple-collocation merging (TC-R) of three soil-moisture products.

Per pixel (SCIENCE.md §1):

1. **Triple collocation** of the three daily series over their common valid days
   (:func:`smda.science.tc.triple_collocation`, validity rules in :class:`smda.science.tc.TCReason`).
2. **Rescale** every product onto the reference product's scale:

   - ``"tc_beta"``: ``β_i·(x_i − m_i) + m_ref`` with TC's β (pytesmo's) and the means ``m`` over
     the common days;
   - ``"mean_std"``: ``(x_i − m_i)·s_ref/s_i + m_ref``, means and SDs over the days product
     ``i`` shares with the reference.

3. **Weight** (:data:`WEIGHTINGS`): ``"optimal"`` is the minimum-variance choice for the scaling —
   ``w ∝ ρ²/(1 − ρ²)`` (≡ 1/σ²_ε in the reference's units) on TC-β-rescaled data,
   ``w ∝ ρ/(1 − ρ²)`` on mean–std matched data; ``"snr"`` is ``w ∝ ρ²/(1 − ρ²)`` whatever the
   scaling; ``"equal"`` is 1/3 each. Weights sum to 1 per pixel; on a day where some products
   are missing they are renormalised over the available ones.

Where TC is invalid the pixel **falls back** (``fallback``) and is always mean–std matched to
the reference, using only *usable* products: the reference itself (if it has any valid day),
and the others where they share at least ``min_n`` valid days with the reference and correlate
positively with it there (an anti-correlated product cannot be put on the reference's scale).
``"equal"`` weights the usable products equally; ``"best"`` takes the single usable product
with the highest TC ρ² that lies in (0, 1], or else the reference (the label is then missing
on the days that product is missing). Pixels where the reference has no valid day get no
label. :class:`LabelFlag` records which rule made each pixel.

**Correlated errors.** TC assumes the three products' errors independent; the two products
other than the reference (two land models in the default triplet) may share forcing and physics.
Given an ``instrument`` — a fourth series whose errors are independent of theirs (training
uses the antecedent precipitation index of MSWEP) — their error correlation is estimated per
pixel by extended collocation (:func:`smda.science.tc.error_cross_correlation`, the reference and the
instrument as the independent pair) and pixels with valid TC where it exceeds
``ecc_threshold`` (default 0.2, the conventional bound of a weak correlation) are flagged
:attr:`LabelFlag.TC_CORRELATED_ERRORS`: their weights are still TC's, but TC's error
variances are biased there (the reference's up, the pair's down). The estimate is recorded
as ``tc["error_correlation"]``.

The label is on the reference's scale (m3 m-3 when the reference is SMAP), float32, not
clipped. Memory: the products are processed in blocks of latitude rows, so dask-backed inputs
are read one block at a time.

This module is part of the science core: numpy and xarray only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.science.tc import TCReason, TCResult, error_cross_correlation, triple_collocation

__all__ = ["FALLBACKS", "SCALINGS", "WEIGHTINGS", "LabelFlag", "LabelResult", "merge_labels"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Scaling = Literal["tc_beta", "mean_std"]
Weighting = Literal["optimal", "snr", "equal"]
Fallback = Literal["equal", "best"]

SCALINGS: tuple[str, ...] = ("tc_beta", "mean_std")
WEIGHTINGS: tuple[str, ...] = ("optimal", "snr", "equal")
FALLBACKS: tuple[str, ...] = ("equal", "best")

_DIMS = ("time", "lat", "lon")
_BLOCK_ELEMENTS = 4_000_000  # product values (3 × rows × lon × time) per block
_MIN_ONE_MINUS_RHO2 = 1e-12  # keeps the weight of a (numerically) perfect product finite
_TC_FIELDS = ("mean", "rho2", "err_var", "beta", "err_std_scaled", "snr_db")


class LabelFlag(IntEnum):
    """How a pixel's label was made (``LabelResult.flag``, uint8)."""

    TC = 0
    """Valid triple collocation: products rescaled and weighted by the chosen strategy."""
    FALLBACK_EQUAL = 1
    """TC invalid: equal weights of the usable products, mean–std matched to the reference."""
    FALLBACK_BEST = 2
    """TC invalid: the single best usable product, mean–std matched to the reference."""
    TC_CORRELATED_ERRORS = 3
    """TC valid and used, but the two non-reference products' errors are correlated (detected
    with an independent instrument): TC's error variances are biased here."""
    NO_DATA = 255
    """The reference product has no valid day: no label."""


@dataclass(frozen=True)
class LabelResult:
    """The merged labels and how they were made.

    Attributes
    ----------
    label:
        Merged soil moisture on the reference's scale, float32 ``(time, lat, lon)``
        (m3 m-3 for a soil-moisture reference); NaN where no weighted product is available.
    flag:
        :class:`LabelFlag` per pixel, uint8 ``(lat, lon)``.
    weights:
        Weight of each product, float64 ``(product, lat, lon)``, summing to 1 over the
        products (before renormalisation on days with missing products); NaN for
        :attr:`LabelFlag.NO_DATA` pixels.
    tc:
        The triple-collocation statistics: ``n``, ``valid``, ``reason`` ``(lat, lon)`` and
        ``mean``, ``rho2``, ``err_var``, ``beta``, ``err_std_scaled``, ``snr_db``
        ``(product, lat, lon)`` (see :class:`smda.science.tc.TCResult`; raw values, also where invalid).
    """

    label: xr.DataArray
    flag: xr.DataArray
    weights: xr.DataArray
    tc: xr.Dataset


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not one of {list(valid)}")


def _names(products: Sequence[xr.DataArray], names: Sequence[str] | None) -> list[str]:
    if names is None:
        names = [
            str(p.name) if p.name is not None else f"product{i}" for i, p in enumerate(products)
        ]
    names = list(names)
    if len(names) != len(products) or len(set(names)) != len(names):
        raise ValueError(f"need {len(products)} distinct product names, got {names}")
    return names


def _prepare(products: Sequence[xr.DataArray]) -> list[xr.DataArray]:
    if len(products) != 3:
        raise ValueError(f"triple collocation merges exactly 3 products, got {len(products)}")
    for i, p in enumerate(products):
        if set(p.dims) != set(_DIMS):
            raise ValueError(f"product {i} ({p.name}) has dims {p.dims}; expected {_DIMS}")
    try:
        aligned = xr.align(*products, join="exact")
    except ValueError as exc:
        raise ValueError(
            "the products must share identical time/lat/lon coordinates (regrid and select "
            f"the same days first): {exc}"
        ) from exc
    return [p.transpose("lat", "lon", "time") for p in aligned]


def _instrument(instrument: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """The instrument on the products' coordinates, (lat, lon, time)."""
    if set(instrument.dims) != set(_DIMS):
        raise ValueError(f"the instrument has dims {instrument.dims}; expected {_DIMS}")
    ordered = instrument.transpose("lat", "lon", "time")
    try:
        xr.align(ordered, like, join="exact")
    except ValueError as exc:
        raise ValueError(f"the instrument must share the products' coordinates: {exc}") from exc
    return ordered


def _matched(stack: FloatArray, reference: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Mean–std matching of each product onto the reference over their shared days
    (call under ``np.errstate``: undefined values are NaN).

    Returns the matched (3, B, L, T) values and the days each product shares with the
    reference (3, B, L), set to 0 where it cannot be matched (constant, or not positively
    correlated with the reference).
    """
    ref = stack[reference]
    ok = np.isfinite(stack) & np.isfinite(ref)[None]
    n = ok.sum(axis=-1)
    m = np.where(ok, stack, 0.0).sum(axis=-1) / n
    mr = np.where(ok, ref[None], 0.0).sum(axis=-1) / n
    anomaly = np.where(ok, stack - m[..., None], 0.0)
    ref_anomaly = np.where(ok, ref[None] - mr[..., None], 0.0)
    s = np.sqrt((anomaly**2).sum(axis=-1) / n)
    sr = np.sqrt((ref_anomaly**2).sum(axis=-1) / n)
    gain = sr / s
    good = np.isfinite(gain) & (s > 0.0) & ((anomaly * ref_anomaly).sum(axis=-1) > 0.0)
    good[reference] = True
    gain[reference] = 1.0  # the reference onto itself: identity, even on a single day
    m[reference], mr[reference] = 0.0, 0.0
    matched = (stack - m[..., None]) * gain[..., None] + mr[..., None]
    return matched, np.where(good, n, 0)


def _tc_scaled(stack: FloatArray, tc: TCResult, reference: int) -> FloatArray:
    """TC-β rescaling onto the reference: β_i·(x_i − m_i) + m_ref (means over common days)."""
    m, beta = tc.mean, tc.beta
    scaled: FloatArray = beta[..., None] * (stack - m[..., None]) + m[reference][None, ..., None]
    return scaled


def _tc_weights(tc: TCResult, scaling: str, weighting: str) -> FloatArray:
    """Unnormalised weights (3, B, L) of a valid TC pixel."""
    rho2 = np.clip(tc.rho2, 0.0, 1.0)
    noise = np.maximum(1.0 - rho2, _MIN_ONE_MINUS_RHO2)
    if weighting == "equal":
        return np.ones_like(rho2)
    if weighting == "optimal" and scaling == "mean_std":
        weights: FloatArray = np.sqrt(rho2) / noise
        return weights
    return rho2 / noise


def _fallback_weights(tc: TCResult, usable: BoolArray, fallback: str, reference: int) -> FloatArray:
    """Unnormalised weights (3, B, L) of a pixel without valid TC."""
    if fallback == "equal":
        return usable.astype(np.float64)
    score = np.where(usable & (tc.rho2 > 0.0) & (tc.rho2 <= 1.0), tc.rho2, -np.inf)
    best = np.where(np.isfinite(score).any(axis=0), np.argmax(score, axis=0), reference)
    one_hot: FloatArray = (np.arange(3)[:, None, None] == best[None]).astype(np.float64)
    return one_hot


@np.errstate(invalid="ignore", divide="ignore")  # undefined statistics become NaN, masked
def _merge_block(
    stack: FloatArray,
    *,
    reference: int,
    scaling: str,
    weighting: str,
    fallback: str,
    min_n: int,
    instrument: FloatArray | None,
    ecc_threshold: float,
) -> tuple[FloatArray, npt.NDArray[np.uint8], FloatArray, TCResult, FloatArray]:
    """Label (B, L, T), flag (B, L), weights (3, B, L), TC and the pair's error correlation
    (B, L) of one block (3, B, L, T)."""
    tc = triple_collocation(stack[0], stack[1], stack[2], min_n=min_n, ref=reference)
    ecc = np.full(stack.shape[1:-1], np.nan)
    if instrument is not None:
        y, z = (i for i in range(3) if i != reference)
        ecc, _ = error_cross_correlation(
            stack[reference], stack[y], stack[z], instrument, min_n=min_n
        )
    matched, shared = _matched(stack, reference)
    usable = shared >= min_n
    usable[reference] = shared[reference] >= 1
    has_ref = usable[reference]
    valid = tc.valid & has_ref
    raw = np.where(
        valid[None],
        _tc_weights(tc, scaling, weighting),
        _fallback_weights(tc, usable, fallback, reference),
    )
    weights = np.where(has_ref[None], raw / raw.sum(axis=0), np.nan)
    scaled = matched
    if scaling == "tc_beta":
        scaled = np.where(valid[None, ..., None], _tc_scaled(stack, tc, reference), matched)
    present = np.isfinite(scaled) & (np.nan_to_num(weights) > 0.0)[..., None]
    w_day = np.where(present, weights[..., None], 0.0)
    label = (w_day * np.where(present, scaled, 0.0)).sum(axis=0) / w_day.sum(axis=0)
    code = LabelFlag.FALLBACK_EQUAL if fallback == "equal" else LabelFlag.FALLBACK_BEST
    flag = np.where(valid, LabelFlag.TC, code)
    flag = np.where(valid & (ecc > ecc_threshold), LabelFlag.TC_CORRELATED_ERRORS, flag)
    flag = np.where(has_ref, flag, LabelFlag.NO_DATA).astype(np.uint8)
    return label, flag, weights, tc, ecc


def _tc_dataset(
    parts: list[TCResult], ecc: FloatArray, names: list[str], coords: dict[str, xr.DataArray]
) -> xr.Dataset:
    def cat(field: str) -> npt.NDArray[np.generic]:
        return np.concatenate([getattr(p, field) for p in parts], axis=-2)

    per_pixel = ("lat", "lon")
    per_product = ("product", "lat", "lon")
    data: dict[str, tuple[tuple[str, ...], npt.NDArray[np.generic], dict[str, object]]] = {
        "n": (per_pixel, cat("n"), {"long_name": "common valid days"}),
        "valid": (per_pixel, cat("valid"), {}),
        "reason": (per_pixel, cat("reason"), _flag_attrs(TCReason)),
    }
    for field in _TC_FIELDS:
        data[field] = (per_product, cat(field), {})
    data["error_correlation"] = (
        per_pixel,
        ecc,
        {"long_name": "estimated error correlation of the two non-reference products"},
    )
    return xr.Dataset(data, coords={"product": names, **coords})


def merge_labels(
    products: Sequence[xr.DataArray],
    *,
    names: Sequence[str] | None = None,
    reference: int | str = 0,
    scaling: Scaling = "tc_beta",
    weighting: Weighting = "optimal",
    fallback: Fallback = "equal",
    min_n: int = 100,
    instrument: xr.DataArray | None = None,
    ecc_threshold: float = 0.2,
) -> LabelResult:
    """Merge three collocated daily products into labels by triple collocation (TC-R).

    Parameters
    ----------
    products:
        Three daily products ``(time, lat, lon)`` with identical coordinates (any dim order),
        NaN where missing; soil moisture in m3 m-3 (any units work: the label takes the
        reference's). Default triplet: SMAP L3, ERA5-Land, GLDAS.
    names:
        Product names for the ``product`` coordinate (default: the arrays' names).
    reference:
        The product (index or name) whose scale the label takes.
    scaling:
        ``"tc_beta"`` (TC's β, pytesmo) or ``"mean_std"`` (mean and SD matching); see the
        module docstring. Fallback pixels are always mean–std matched.
    weighting:
        ``"optimal"`` (minimum variance for ``scaling``), ``"snr"`` (ρ²/(1 − ρ²)) or
        ``"equal"``.
    fallback:
        Pixels without valid TC: ``"equal"`` weights of the usable products, or the ``"best"``
        single one (module docstring).
    min_n:
        Fewest common valid days for valid TC, and fewest days a product must share with the
        reference to be usable in a fallback.
    instrument:
        A fourth series on the same coordinates whose errors are independent of the products'
        (e.g. an antecedent precipitation index), to detect correlated errors of the two
        non-reference products (module docstring); None: no detection.
    ecc_threshold:
        Error correlation above which a pixel is flagged
        :attr:`LabelFlag.TC_CORRELATED_ERRORS`.

    Returns
    -------
    LabelResult
        ``label`` float32 ``(time, lat, lon)``, ``flag`` uint8 ``(lat, lon)``
        (:class:`LabelFlag`), ``weights`` ``(product, lat, lon)`` and ``tc`` (statistics).

    Raises
    ------
    ValueError
        Not three products, other dims, coordinates that differ, an unknown strategy name or
        reference.
    """
    _check_choice("scaling", scaling, SCALINGS)
    _check_choice("weighting", weighting, WEIGHTINGS)
    _check_choice("fallback", fallback, FALLBACKS)
    arrays = _prepare(products)
    extra = None
    if instrument is not None:
        extra = _instrument(instrument, arrays[0])
    labels = _names(products, names)
    ref = _reference_index(reference, labels)
    n_lat, n_lon, n_time = arrays[0].shape
    rows = max(1, _BLOCK_ELEMENTS // max(3 * n_lon * n_time, 1))
    label = np.full((n_time, n_lat, n_lon), np.nan, dtype=np.float32)
    flag = np.empty((n_lat, n_lon), dtype=np.uint8)
    weights = np.empty((3, n_lat, n_lon))
    ecc = np.full((n_lat, n_lon), np.nan)
    parts = []
    for r0 in range(0, n_lat, rows):
        block = slice(r0, r0 + rows)
        stack = np.stack([np.asarray(a[block].values, dtype=np.float64) for a in arrays])
        lab, flag[block], weights[:, block], tc, ecc[block] = _merge_block(
            stack,
            reference=ref,
            scaling=scaling,
            weighting=weighting,
            fallback=fallback,
            min_n=min_n,
            instrument=None if extra is None else np.asarray(extra[block].values, np.float64),
            ecc_threshold=ecc_threshold,
        )
        label[:, block] = np.moveaxis(lab, -1, 0)
        parts.append(tc)
    how = {
        "reference": labels[ref],
        "scaling": scaling,
        "weighting": weighting,
        "fallback": fallback,
        "min_n": min_n,
    }
    coords = {"lat": arrays[0]["lat"], "lon": arrays[0]["lon"]}
    units = str(arrays[ref].attrs.get("units", "m3 m-3"))
    return LabelResult(
        label=xr.DataArray(
            label,
            dims=_DIMS,
            coords={"time": arrays[0]["time"], **coords},
            name="label",
            attrs={"units": units, "long_name": "TC-merged soil moisture", **how},
        ),
        flag=xr.DataArray(flag, dims=("lat", "lon"), coords=coords, name="flag").assign_attrs(
            _flag_attrs(LabelFlag)
        ),
        weights=xr.DataArray(
            weights, dims=("product", "lat", "lon"), coords={"product": labels, **coords}
        ).rename("weights"),
        tc=_tc_dataset(parts, ecc, labels, coords).assign_attrs(how),
    )


def _reference_index(reference: int | str, names: list[str]) -> int:
    if isinstance(reference, str):
        if reference not in names:
            raise ValueError(f"reference {reference!r} is not one of the products {names}")
        return names.index(reference)
    if reference not in (0, 1, 2):
        raise ValueError(f"reference must be 0, 1, 2 or a product name, got {reference}")
    return int(reference)


def _flag_attrs(codes: type[IntEnum]) -> dict[str, object]:
    """CF ``flag_values``/``flag_meanings`` of an enum of codes."""
    return {
        "flag_values": [int(c) for c in codes],
        "flag_meanings": " ".join(c.name.lower() for c in codes),
    }
