"""Drift: how far today's inputs and innovations stray from what the training period saw (pure).

- :class:`FeatureStats`: per-feature mean and SD over the training rows, stored in the bundle;
  :meth:`FeatureStats.drift` scores a day's feature matrix against them (:func:`feature_drift`).
- :func:`expected_innovation_sd`: the spread of O−F the training period's held-out cycles
  predict, sqrt(σ_f² + σ_o²) (:mod:`smda.science.gain`); today's SD of O−F divided by it is a
  skill check that needs no station: near 1 when the forecast and SMAP errors are as trained,
  well above 1 when either degraded (Desroziers et al. 2005).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CALENDAR_FEATURES",
    "FeatureStats",
    "column_sums",
    "expected_innovation_sd",
    "feature_drift",
]

CALENDAR_FEATURES = frozenset({"doy_sin", "doy_cos"})
"""Features that follow the calendar, not the inputs: a day outside the training *season* is
not input drift (a model trained on whole years never sees one), so they are left out."""

FIT_CHUNK_ROWS = 1 << 18
"""Rows per chunk of :meth:`FeatureStats.fit` (~57 MB of float64 for 27 features)."""


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Mean and standard deviation of each feature over the training rows."""

    names: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    sd: npt.NDArray[np.float64]

    @classmethod
    def fit(
        cls, values: npt.ArrayLike, names: tuple[str, ...], *, chunk_rows: int = FIT_CHUNK_ROWS
    ) -> FeatureStats:
        """From a feature matrix (rows × features), ignoring non-finite values; two passes
        over ``chunk_rows`` rows at a time in float64 (the mean, then the squared deviations),
        so a matrix of millions of rows costs a few chunks beside it, not float64 copies of it."""
        x = np.asarray(values)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"FeatureStats.fit needs rows × {len(names)} features, got {x.shape}")
        chunks = [x[i : i + chunk_rows] for i in range(0, x.shape[0], max(1, chunk_rows))]
        total, n = np.zeros(x.shape[1]), np.zeros(x.shape[1], np.int64)
        for chunk in chunks:
            sums, counts = column_sums(chunk)
            total, n = total + sums, n + counts
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / n
            squares = np.zeros(x.shape[1])
            for chunk in chunks:
                c = np.asarray(chunk, dtype=np.float64)
                squares += np.where(np.isfinite(c), (c - mean) ** 2, 0.0).sum(axis=0)
            var = squares / n
        return cls(tuple(names), mean, np.sqrt(var))

    def drift(self, values: npt.ArrayLike) -> float:
        """:func:`feature_drift` of the means of ``values`` (rows × the same features), the
        :data:`CALENDAR_FEATURES` left out."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.names) or x.shape[0] == 0:
            return math.nan
        return self.drift_of_sums(*column_sums(x))

    def drift_of_sums(self, sums: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> float:
        """:meth:`drift` from the per-feature sums and counts of the finite values
        (:func:`column_sums`; the sums of a region's tiles add up to the region's)."""
        if not np.asarray(counts).sum():
            return math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            today = np.asarray(sums, np.float64) / np.asarray(counts)
        inputs = np.array([name not in CALENDAR_FEATURES for name in self.names])
        return feature_drift(self.mean[inputs], self.sd[inputs], today[inputs])

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": [float(v) for v in self.mean],
            "sd": [float(v) for v in self.sd],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStats:
        return cls(
            tuple(data["names"]),
            np.asarray(data["mean"], np.float64),
            np.asarray(data["sd"], np.float64),
        )


def expected_innovation_sd(gain_provenance: Mapping[str, Any]) -> float:
    """sqrt(σ_f² + σ_o²) from the medians the gain estimate recorded (NaN when absent)."""
    sigma_f = gain_provenance.get("median_sigma_f")
    sigma_o = gain_provenance.get("median_sigma_o")
    if sigma_f is None or sigma_o is None:
        return math.nan
    value = math.hypot(float(sigma_f), float(sigma_o))
    return value if math.isfinite(value) and value > 0 else math.nan


def feature_drift(
    train_mean: npt.ArrayLike, train_sd: npt.ArrayLike, today_mean: npt.ArrayLike
) -> float:
    """Largest standardised shift of today's feature means from the training distribution.

    ``z_j = (today_mean_j − train_mean_j) / train_sd_j`` for each feature j; features whose
    training spread is zero or whose values are not finite are left out. This is an effect
    size (shift in units of the training spread), not a significance test.

    Parameters
    ----------
    train_mean, train_sd:
        Per-feature mean and standard deviation over the training samples, (feature,).
    today_mean:
        Per-feature mean over today's land cells, (feature,), same order and units.

    Returns
    -------
    float
        ``max_j |z_j|``, or NaN when no feature can be compared.
    """
    mu = np.asarray(train_mean, dtype=np.float64)
    sd = np.asarray(train_sd, dtype=np.float64)
    today = np.asarray(today_mean, dtype=np.float64)
    if not mu.shape == sd.shape == today.shape:
        raise ValueError(
            f"feature_drift needs arrays of one shape, got {mu.shape}, {sd.shape}, {today.shape}"
        )
    ok = np.isfinite(mu) & np.isfinite(sd) & np.isfinite(today) & (sd > 0)
    if not ok.any():
        return math.nan
    return float(np.max(np.abs(today[ok] - mu[ok]) / sd[ok]))


def column_sums(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Per column of ``values`` (rows × features): the sum and the count of the finite values."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    return np.where(finite, x, 0.0).sum(axis=0), finite.sum(axis=0).astype(np.int64)
