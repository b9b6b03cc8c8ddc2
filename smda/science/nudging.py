"""Newtonian nudging of the model forecast toward SMAP, and SMAP's rescaling to the model.

The analysis of day D (SCIENCE.md §3)::

    SM_a = SM_f + G·(SMAP* − SM_f)   where a valid retrieval exists,   SM_a = SM_f elsewhere,

clipped to the physical range [0, porosity]. ``SMAP*`` is SMAP rescaled to the model's
climatology by per-pixel CDF matching; the innovations O − F = SMAP* − SM_f are returned for
monitoring (NaN where nothing was assimilated).

CDF matching
------------
:func:`fit_cdf` computes, per pixel, the percentiles of the model series and of the SMAP
series over the days when *both* exist (paired sampling, so seasonal gaps in SMAP do not bias
the tables), at fixed probabilities (default 0, 5, …, 100 %). A pixel with fewer than
``min_samples`` paired days gets no table. :func:`cdf_match` maps a retrieval through its
pixel's table by piecewise-linear interpolation between the SMAP and the model percentiles,
vectorised over pixels; values beyond the extreme percentiles are clamped to the model's
extremes. A retrieval in a pixel without a table is not assimilated (it is reported as
unmatched, never passed through unscaled). Pixels are keyed by their global 0.25° cell id
(:func:`smda.science.features.global_cell_ids`) so a table fitted on one grid applies on any window
of the globe. The tables are fitted at training time and versioned with the model bundle.

Science core: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_PROBS",
    "CdfTables",
    "cdf_match",
    "fit_cdf",
    "nudge",
    "tc_gain",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DEFAULT_PROBS: tuple[float, ...] = tuple(float(p) for p in np.linspace(0.0, 100.0, 21))
"""Probabilities (%) of the percentile tables."""
_CHUNK = 32_768


@dataclass(frozen=True, eq=False)
class CdfTables:
    """Per-pixel percentile tables for rescaling SMAP to the model climatology.

    Attributes
    ----------
    cell_ids:
        Global 0.25° cell ids, sorted, (n_pixels,) int64.
    probs:
        Probabilities (%) of the tables, (n_probs,).
    obs:
        SMAP percentiles (m3 m-3), float32 (n_pixels, n_probs), non-decreasing along probs.
    model:
        Model percentiles (m3 m-3), float32 (n_pixels, n_probs).
    n:
        Paired days each pixel's table was fitted on, (n_pixels,) int64.
    """

    cell_ids: IntArray
    probs: FloatArray
    obs: F32
    model: F32
    n: IntArray

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The tables as named arrays (inverse: :meth:`from_arrays`)."""
        return {
            "cdf_cell_ids": self.cell_ids,
            "cdf_probs": self.probs,
            "cdf_obs": self.obs,
            "cdf_model": self.model,
            "cdf_n": self.n,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> CdfTables:
        return cls(
            np.asarray(arrays["cdf_cell_ids"], np.int64),
            np.asarray(arrays["cdf_probs"], np.float64),
            np.asarray(arrays["cdf_obs"], np.float32),
            np.asarray(arrays["cdf_model"], np.float32),
            np.asarray(arrays["cdf_n"], np.int64),
        )


def _percentiles(values: FloatArray, probs: FloatArray) -> FloatArray:
    """Linear-interpolation percentiles of each column of ``values`` (time, pixels), ignoring
    NaN (numpy's default ``linear`` method); NaN for an all-NaN column → (pixels, probs)."""
    ordered = np.sort(values, axis=0)  # NaN sort last
    n = np.isfinite(values).sum(axis=0)
    pos = probs[None, :] / 100.0 * np.maximum(n - 1, 0)[:, None]  # (pixels, probs)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0)[:, None])
    cols = np.arange(values.shape[1])[:, None]
    low, high = ordered[lo, cols], ordered[hi, cols]
    out = low + (pos - lo) * (high - low)
    return np.where((n > 0)[:, None], out, np.nan)


def fit_cdf(
    model: npt.ArrayLike,
    obs: npt.ArrayLike,
    cell_ids: npt.ArrayLike,
    *,
    probs: tuple[float, ...] = DEFAULT_PROBS,
    min_samples: int = 30,
) -> CdfTables:
    """Per-pixel CDF-matching tables from paired model and SMAP series.

    Parameters
    ----------
    model:
        Model soil moisture (m3 m-3), (time, pixels): e.g. the free-running model over the
        training period.
    obs:
        SMAP soil moisture (m3 m-3) on the same days and pixels, NaN where missing.
    cell_ids:
        Global cell id of each pixel (:func:`smda.science.features.global_cell_ids`), (pixels,).
    probs:
        Probabilities (%) of the tables, increasing, from 0 to 100.
    min_samples:
        Fewest paired days for a pixel to get a table.

    Returns
    -------
    :class:`CdfTables` for the pixels with enough paired days.
    """
    m = np.asarray(model, dtype=np.float64)
    o = np.asarray(obs, dtype=np.float64)
    ids = np.asarray(cell_ids, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if m.shape != o.shape or m.ndim != 2 or ids.shape != m.shape[1:]:
        raise ValueError(f"model {m.shape}, obs {o.shape} must be (time, pixels) for {ids.shape}")
    if p[0] != 0.0 or p[-1] != 100.0 or np.any(np.diff(p) <= 0):
        raise ValueError(f"probs must increase from 0 to 100, got {probs}")
    both = np.isfinite(m) & np.isfinite(o)
    n = both.sum(axis=0)
    keep = np.flatnonzero(n >= min_samples)
    q_obs = np.empty((keep.size, p.size))
    q_model = np.empty_like(q_obs)
    for start in range(0, keep.size, _CHUNK):
        part = keep[start : start + _CHUNK]
        pair = both[:, part]
        q_obs[start : start + part.size] = _percentiles(np.where(pair, o[:, part], np.nan), p)
        q_model[start : start + part.size] = _percentiles(np.where(pair, m[:, part], np.nan), p)
    order = np.argsort(ids[keep], kind="stable")
    return CdfTables(
        ids[keep][order],
        p,
        q_obs[order].astype(np.float32),
        q_model[order].astype(np.float32),
        n[keep][order].astype(np.int64),
    )


def cdf_match(
    obs: npt.ArrayLike, cell_ids: npt.ArrayLike, tables: CdfTables
) -> tuple[F32, BoolArray]:
    """Rescale SMAP retrievals to the model climatology through their pixel's table.

    Parameters
    ----------
    obs:
        SMAP soil moisture (m3 m-3), (pixels,), NaN where missing.
    cell_ids:
        Global cell id of each pixel, (pixels,).
    tables:
        :func:`fit_cdf` tables.

    Returns
    -------
    (rescaled, matched): float32 (pixels,) SMAP* in model units (NaN where not matched) and
    the mask of retrievals that were finite and had a table.
    """
    x = np.asarray(obs, dtype=np.float64)
    ids = np.asarray(cell_ids, dtype=np.int64)
    out = np.full(x.shape, np.nan, dtype=np.float32)
    if tables.cell_ids.size == 0:
        return out, np.zeros(x.shape, dtype=bool)
    pos = np.clip(np.searchsorted(tables.cell_ids, ids), 0, tables.cell_ids.size - 1)
    matched = np.isfinite(x) & (tables.cell_ids[pos] == ids)
    sel = np.flatnonzero(matched)
    xo, q_obs, q_mod = x[sel], tables.obs[pos[sel]], tables.model[pos[sel]]
    k = (q_obs <= xo[:, None]).sum(axis=1)  # xo in [q_obs[k−1], q_obs[k])
    n_probs = tables.probs.size
    lo, hi = np.clip(k - 1, 0, n_probs - 1), np.clip(k, 0, n_probs - 1)
    rows = np.arange(sel.size)
    x0, x1 = q_obs[rows, lo].astype(np.float64), q_obs[rows, hi].astype(np.float64)
    y0, y1 = q_mod[rows, lo].astype(np.float64), q_mod[rows, hi].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(x1 > x0, (xo - x0) / (x1 - x0), 0.0)
    out[sel] = (y0 + np.clip(frac, 0.0, 1.0) * (y1 - y0)).astype(np.float32)
    return out, matched


def tc_gain(forecast_err_var: npt.ArrayLike, obs_err_var: npt.ArrayLike) -> FloatArray:
    """Per-pixel gain G = σ²_f / (σ²_f + σ²_o) (0 where either variance is unknown).

    Both error variances must be in model units ((m3 m-3)²): triple-collocation error variances
    of the forecast and of SMAP*, i.e. SMAP's variance after CDF matching.
    """
    f = np.asarray(forecast_err_var, dtype=np.float64)
    o = np.asarray(obs_err_var, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = f / (f + o)
    return np.asarray(np.where(np.isfinite(gain) & (f >= 0) & (o >= 0), gain, 0.0))


def nudge(
    forecast: npt.ArrayLike,
    obs: npt.ArrayLike,
    gain: float | npt.ArrayLike,
    valid: npt.ArrayLike,
    *,
    lower: float | npt.ArrayLike = 0.0,
    upper: float | npt.ArrayLike = 0.6,
) -> tuple[F32, F32]:
    """Newtonian nudging: SM_a = SM_f + G·(SMAP* − SM_f) where ``valid``.

    Parameters
    ----------
    forecast:
        SM_f (m3 m-3), any shape.
    obs:
        SMAP* rescaled to the model (m3 m-3), same shape.
    gain:
        G in [0, 1], a constant or an array broadcastable to ``forecast``.
    valid:
        Where a retrieval is to be assimilated (combined with finite ``obs`` and ``forecast``).
    lower, upper:
        Physical bounds of the analysis (m3 m-3): 0 and porosity (scalar or per pixel).

    Returns
    -------
    (analysis, innovations), float32 like ``forecast``: the analysis clipped to the bounds
    (NaN where the forecast is NaN) and O − F = SMAP* − SM_f where assimilated, NaN elsewhere.
    With G = 0 a forecast within the bounds is returned unchanged.

    Raises
    ------
    ValueError
        If a gain lies outside [0, 1].
    """
    f = np.asarray(forecast, dtype=np.float64)
    o = np.asarray(obs, dtype=np.float64)
    g = np.asarray(gain, dtype=np.float64)
    if np.any(~((g >= 0.0) & (g <= 1.0))):
        raise ValueError("nudging gain must lie in [0, 1]")
    use = np.asarray(valid, dtype=bool) & np.isfinite(o) & np.isfinite(f)
    innovations = np.where(use, o - f, np.nan)
    # (1 − G)·F + G·O equals F + G·(O − F) and is exact at G = 0 and G = 1
    analysis = np.where(use, (1.0 - g) * f + g * np.where(use, o, 0.0), f)
    analysis = np.clip(analysis, lower, upper)
    return analysis.astype(np.float32), innovations.astype(np.float32)
