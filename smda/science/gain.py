"""The nudging gain from the data: cycled experiments on held-out training folds.

Nudging blends the forecast and the rescaled retrieval, SM_a = SM_f + G·(SMAP* − SM_f)
(:mod:`smda.science.nudging`). With independent, unbiased errors of variances σ_f² (forecast) and σ_o²
(SMAP*), the blend's error is smallest at ``G = σ_f² / (σ_f² + σ_o²)`` (SCIENCE.md §3, §5.1).
Neither variance is known, and σ_f² depends on G itself: in a cycle each forecast starts from
the previous analysis. The gain is therefore estimated, per cell, from the training period's
data only — never from a truth:

1. **Held-out cycles.** Every cell is cycled over the training days by the cross-validation
   model that did *not* see it (its fold's booster, :func:`smda.science.model.train_with_folds`),
   nudged toward its own SMAP* (CDF-matched with the bundle's tables). For each candidate gain
   the innovations ``d = SMAP* − SM_f`` are collected (:func:`cycle_innovations`).
2. **Observation error** σ_o² per cell: SMAP's triple-collocation error variance from the label
   merge, carried into model units by the CDF tables' slope (the ratio of the model's to
   SMAP's 5–95 % percentile ranges).
3. **Per-cell gain** (the adaptive candidate): with independent errors the innovation variance
   is ``var(d) = σ_f²(G) + σ_o²``, so ``σ_f² = var(d) − σ_o²`` and the cell's gain is iterated
   to the fixed point ``G ← σ_f²(G) / var(d)`` (damped, :data:`ITERATIONS` passes), starting
   from the best constant. Cells with too few innovations take the median gain.
4. **Choice.** Each candidate — the constants of :data:`CONSTANTS` and the per-cell field — is
   scored by the mean over cells of the mean squared innovation. SMAP's errors are white in
   time, so a retrieval's error is independent of the forecast it is compared with, and
   ``E[d²] = σ_o² + E[(SM_f − truth)²]``: the candidate with the smallest mean squared
   innovation has the smallest forecast error. The winner is stored in the bundle
   (:class:`GainField`) with every candidate's score and the statistics behind it, among
   them the error SDs the chosen gain implies: if G is optimal, ``var(d) = σ_f² + σ_o²`` splits
   as ``σ_f² = G·var(d)`` and ``σ_o² = (1 − G)·var(d)`` (what the analysis uncertainty uses),
   beside TC's σ_o.

Assumptions (stated with the figures): SMAP's retrieval errors are white in time and
independent of the forecast's; TC's σ_o² is unbiased (it is biased up where the other two
label products' errors are correlated, flagged by :mod:`smda.science.labels`); the held-out folds'
errors represent the operational model's. A fixed ``SMDA_GAIN`` overrides the stored gain.

Science core: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from smda.science.features import FeatureMatrix
from smda.science.nudging import CdfTables, cdf_match

__all__ = [
    "CONSTANTS",
    "ITERATIONS",
    "GainField",
    "InnovationStats",
    "cdf_slope",
    "cycle_innovations",
    "estimate_gain",
    "fixed_point_gain",
    "optimal_gain",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Predict = Callable[[F32], npt.NDArray[np.floating]]

CONSTANTS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
"""The constant gains scored beside the per-cell field."""
ITERATIONS = 3
"""Fixed-point passes of the per-cell gain."""
MIN_INNOVATIONS = 20
"""Fewest innovations for a cell to get its own gain (else the median)."""


def optimal_gain(forecast_err_var: npt.ArrayLike, obs_err_var: npt.ArrayLike) -> FloatArray:
    """``G = σ_f² / (σ_f² + σ_o²)`` elementwise; NaN where either variance is unknown or
    negative, or both are zero. G → 0 as σ_o² → ∞ and G → 1 as σ_f² → ∞."""
    f = np.asarray(forecast_err_var, dtype=np.float64)
    o = np.asarray(obs_err_var, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = f / (f + o)
    gain = np.where(np.isinf(f) & np.isfinite(o), 1.0, gain)
    gain = np.where(np.isinf(o) & np.isfinite(f), 0.0, gain)
    bad = np.isnan(f) | np.isnan(o) | (f < 0) | (o < 0) | ((f == 0) & (o == 0))
    bad |= np.isinf(f) & np.isinf(o)
    return np.asarray(np.where(bad, np.nan, gain))


@dataclass(frozen=True)
class InnovationStats:
    """Innovation statistics of held-out cycles, per candidate and cell.

    ``n`` (cells,): days with an innovation (the same for every candidate); ``sum_d`` and
    ``sum_d2`` (candidates, cells): sums of d and d² (m3 m-3, (m3 m-3)²).
    """

    n: IntArray
    sum_d: FloatArray
    sum_d2: FloatArray

    @property
    def mean_square(self) -> FloatArray:
        """Mean squared innovation (candidates, cells), NaN without innovations."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.sum_d2 / self.n, np.nan)

    @property
    def variance(self) -> FloatArray:
        """Innovation variance about the cell's mean (candidates, cells)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.n > 0, self.sum_d / self.n, np.nan)
        return np.asarray(np.maximum(self.mean_square - mean * mean, 0.0))

    @staticmethod
    def combine(parts: Sequence[tuple[npt.NDArray[np.bool_], InnovationStats]]) -> InnovationStats:
        """Stats of disjoint cell sets (boolean masks over all cells) put together."""
        size = parts[0][0].size
        k = parts[0][1].sum_d.shape[0]
        n = np.zeros(size, np.int64)
        s1, s2 = np.zeros((k, size)), np.zeros((k, size))
        for mask, stats in parts:
            n[mask], s1[:, mask], s2[:, mask] = stats.n, stats.sum_d, stats.sum_d2
        return InnovationStats(n, s1, s2)


def cycle_innovations(
    predict: Predict,
    cube: F32,
    state_column: int,
    first_state: F32,
    obs: F32,
    gains: FloatArray,
    upper: F32,
) -> InnovationStats:
    """Cycle the model over consecutive days with several gains at once.

    Parameters
    ----------
    predict:
        The model's raw prediction of feature rows.
    cube:
        Features (days, cells, features); the state column is replaced by each candidate's
        analysis of the day before.
    state_column:
        Index of the state feature.
    first_state:
        The state feeding the first day (cells,), m3 m-3.
    obs:
        SMAP* rescaled to the model (days, cells), NaN where there is no retrieval.
    gains:
        Candidate gains (candidates, cells) in [0, 1].
    upper:
        Physical upper bound (porosity) per cell.

    Returns
    -------
    :class:`InnovationStats` of the innovations SMAP* − SM_f.
    """
    k, n_cells = gains.shape
    days = cube.shape[0]
    state = np.repeat(np.asarray(first_state, np.float32)[None], k, axis=0)
    n = np.zeros(n_cells, np.int64)
    s1, s2 = np.zeros((k, n_cells)), np.zeros((k, n_cells))
    for t in range(days):
        rows = np.repeat(cube[t][None], k, axis=0)
        rows[:, :, state_column] = state
        forecast = np.asarray(predict(rows.reshape(k * n_cells, -1)), np.float64).reshape(
            k, n_cells
        )
        forecast = np.clip(forecast, 0.0, upper[None])
        o = obs[t]
        valid = np.isfinite(o)
        d = np.where(valid[None], o[None] - forecast, 0.0)
        n += valid
        s1 += d
        s2 += d * d
        state = np.clip(forecast + gains * d, 0.0, upper[None]).astype(np.float32)
    return InnovationStats(n, s1, s2)


def fixed_point_gain(
    gain: FloatArray, innovation_var: FloatArray, obs_err_var: FloatArray, *, damping: float = 0.5
) -> FloatArray:
    """One damped fixed-point update of the per-cell gain: ``σ_f² = max(var(d) − σ_o², 0)``,
    ``G ← (1 − damping)·G + damping·σ_f²/var(d)``; cells with an unknown variance keep ``gain``."""
    forecast_var = np.maximum(innovation_var - obs_err_var, 0.0)
    target = optimal_gain(forecast_var, obs_err_var)
    return np.asarray(
        np.where(np.isfinite(target), (1.0 - damping) * gain + damping * target, gain)
    )


def cdf_slope(q_obs: F32, q_model: F32, probs: FloatArray) -> FloatArray:
    """Slope of each pixel's CDF mapping (model units per SMAP unit): the ratio of the 5–95 %
    percentile ranges of the model and of SMAP; NaN where SMAP's range is zero."""
    lo, hi = int(np.argmin(np.abs(probs - 5.0))), int(np.argmin(np.abs(probs - 95.0)))
    model = np.asarray(q_model[:, hi], np.float64) - q_model[:, lo]
    obs = np.asarray(q_obs[:, hi], np.float64) - q_obs[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(obs > 0, model / obs, np.nan))


@dataclass(frozen=True, eq=False)
class GainField:
    """The gain the analysis uses, per global 0.25° cell, and how it was chosen.

    Attributes
    ----------
    cell_ids:
        Global cell ids, sorted (cells,).
    values:
        Gain of each cell in [0, 1], float32 (cells,).
    default:
        Gain of cells without a value (the median).
    provenance:
        JSON-serialisable: method, period, the chosen candidate, every candidate's score,
        median σ_o, σ_f and counts.
    """

    cell_ids: IntArray
    values: F32
    default: float
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def constant(cls, value: float, provenance: Mapping[str, Any]) -> GainField:
        """The same gain everywhere."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), float(value), dict(provenance))

    def at(self, cell_ids: npt.ArrayLike) -> F32:
        """The gain of each of ``cell_ids`` (:attr:`default` where the field has none)."""
        ids = np.asarray(cell_ids, dtype=np.int64)
        if self.cell_ids.size == 0:
            return np.full(ids.shape, self.default, dtype=np.float32)
        pos = np.clip(np.searchsorted(self.cell_ids, ids), 0, self.cell_ids.size - 1)
        found = self.cell_ids[pos] == ids
        return np.where(found, self.values[pos], np.float32(self.default)).astype(np.float32)

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The field as named arrays (inverse: :meth:`from_arrays` with the provenance)."""
        return {
            "gain_cell_ids": self.cell_ids,
            "gain_values": self.values,
            "gain_default": np.asarray([self.default], np.float64),
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, npt.NDArray[np.generic]], provenance: Mapping[str, Any]
    ) -> GainField:
        return cls(
            np.asarray(arrays["gain_cell_ids"], np.int64),
            np.asarray(arrays["gain_values"], np.float32),
            float(np.asarray(arrays["gain_default"], np.float64)[0]),
            dict(provenance),
        )

    def describe(self) -> str:
        """One line: the chosen gain and the median of the field."""
        p = self.provenance
        if self.cell_ids.size == 0:
            return f"G = {self.default:g} ({p.get('chosen', 'constant')})"
        q = np.quantile(self.values, [0.1, 0.5, 0.9]) if self.values.size else [np.nan] * 3
        return (
            f"per-cell G (median {q[1]:.2f}, 10–90 % {q[0]:.2f}–{q[2]:.2f}; "
            f"{p.get('chosen', 'per_cell')})"
        )


def _observation_error(
    cells: IntArray, cdf: CdfTables, smap_err_var: FloatArray
) -> tuple[FloatArray, int]:
    """σ_o² of SMAP* per cell (model units) and the number of cells where TC gave it."""
    pos = np.clip(np.searchsorted(cdf.cell_ids, cells), 0, max(cdf.cell_ids.size - 1, 0))
    slope = np.full(cells.size, np.nan)
    if cdf.cell_ids.size:
        found = cdf.cell_ids[pos] == cells
        all_slopes = cdf_slope(cdf.obs, cdf.model, cdf.probs)
        slope = np.where(found, all_slopes[pos], np.nan)
    var = np.asarray(smap_err_var, np.float64) * slope * slope
    known = np.isfinite(var) & (var > 0)
    return np.where(known, var, np.nan), int(known.sum())


def _root_median(variance: FloatArray) -> float | None:
    """√ of the median of the finite values, None if there is none."""
    finite = variance[np.isfinite(variance)]
    return float(np.sqrt(np.median(finite))) if finite.size else None


def _score(stats: InnovationStats) -> FloatArray:
    """Mean over cells (with innovations) of each candidate's mean squared innovation."""
    ms = stats.mean_square[:, stats.n > 0]
    return np.asarray(ms.mean(axis=1) if ms.size else np.full(ms.shape[0], np.nan))


def _held_out(
    predictors: Sequence[Predict],
    folds: IntArray,
    cube: F32,
    col: int,
    obs: F32,
    gains: FloatArray,
    upper: F32,
) -> InnovationStats:
    """Every cell cycled by the model of its fold (:func:`cycle_innovations`) with ``gains``."""
    parts = []
    for k, predict in enumerate(predictors):
        held = folds == k
        if held.any():
            stats = cycle_innovations(
                predict,
                cube[:, held],
                col,
                cube[0, held, col],
                obs[:, held],
                gains[:, held],
                upper[held],
            )
            parts.append((held, stats))
    return InnovationStats.combine(parts)


def _per_cell(
    run: Callable[[FloatArray], InnovationStats],
    gain: FloatArray,
    n: IntArray,
    obs_var: FloatArray,
    iterations: int,
) -> tuple[FloatArray, InnovationStats | None]:
    """The per-cell fixed-point gain from ``gain`` and its held-out innovations (None when
    σ_o² or enough innovations are missing everywhere)."""
    enough = n >= MIN_INNOVATIONS
    if not (np.isfinite(obs_var).any() and enough.any()):
        return gain, None
    for _ in range(iterations):
        stats = run(gain[None])
        gain = fixed_point_gain(gain, stats.variance[0], obs_var)
        gain = np.where(enough, gain, np.median(gain[enough]))
    return gain, run(gain[None])


def estimate_gain(
    matrix: FeatureMatrix,
    folds: IntArray,
    predictors: Sequence[Predict],
    smap: F32,
    cdf: CdfTables,
    smap_err_var: FloatArray,
    *,
    constants: Sequence[float] = CONSTANTS,
    iterations: int = ITERATIONS,
) -> GainField:
    """The gain of the module docstring from held-out cycles over ``matrix``'s days.

    Parameters
    ----------
    matrix:
        Teacher-forced features of consecutive training days (its state column on the first
        day starts every cycle).
    folds, predictors:
        Fold of each of ``matrix``'s cells and the model fitted without that fold
        (:func:`smda.science.model.train_with_folds`).
    smap:
        SMAP retrievals (days, cells) in SMAP units, NaN where missing.
    cdf:
        The bundle's CDF tables (SMAP → model climatology).
    smap_err_var:
        SMAP's TC error variance per cell in SMAP units, NaN where TC was invalid.
    """
    obs = np.stack([cdf_match(smap[t], matrix.cell_ids, cdf)[0] for t in range(smap.shape[0])])
    obs_var, tc_cells = _observation_error(matrix.cell_ids, cdf, smap_err_var)
    if np.isfinite(obs_var).any():
        obs_var = np.where(np.isfinite(obs_var), obs_var, np.nanmedian(obs_var))
    cube, col = matrix.cube(), matrix.state_column

    def run(gains: FloatArray) -> InnovationStats:
        return _held_out(predictors, folds, cube, col, obs, gains, matrix.upper)

    n_cells = matrix.n_cells
    grid = np.asarray(constants, np.float64)
    fixed = run(np.repeat(grid[:, None], n_cells, axis=1))
    scores = {f"G={g:g}": float(s) for g, s in zip(grid, _score(fixed), strict=True)}
    provenance: dict[str, Any] = {
        "method": "held-out cycles on the training period (smda.science.gain)",
        "days": len(matrix.days),
        "cells": n_cells,
        "median_innovations": float(np.median(fixed.n)) if n_cells else 0.0,
        "tc_cells": tc_cells,
    }
    if not np.isfinite(list(scores.values())).any():
        provenance.update(chosen="G=0 (no SMAP retrieval in the training period)", scores=scores)
        return GainField.constant(0.0, provenance)
    best = int(np.nanargmin(list(scores.values())))
    gain, per_cell = _per_cell(run, np.full(n_cells, grid[best]), fixed.n, obs_var, iterations)
    if per_cell is not None:
        scores["per_cell"] = float(_score(per_cell)[0])
    chosen = min(scores, key=lambda name: scores[name] if np.isfinite(scores[name]) else np.inf)
    provenance.update(chosen=chosen, scores=scores)
    stats = per_cell if chosen == "per_cell" and per_cell is not None else fixed
    row = 0 if chosen == "per_cell" else best
    used = gain if chosen == "per_cell" else np.full(n_cells, grid[best])
    var_d = stats.variance[row]
    provenance.update(
        median_sigma_f=_root_median(used * var_d),
        median_sigma_o=_root_median((1.0 - used) * var_d),
        median_sigma_o_tc=_root_median(obs_var),
    )
    if chosen != "per_cell":
        return GainField.constant(float(grid[best]), provenance)
    order = np.argsort(matrix.cell_ids, kind="stable")
    values = gain[order].astype(np.float32)
    return GainField(matrix.cell_ids[order], values, float(np.median(values)), provenance)
