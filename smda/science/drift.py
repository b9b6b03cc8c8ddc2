"""Feature drift: how far today's inputs stray from the training distribution (pure)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["feature_drift"]


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
