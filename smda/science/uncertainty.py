"""The error standard deviation of the analysis: how far SM_a(D) may be from the truth.

Nudging blends two estimates of the same soil moisture (SCIENCE.md §3)::

    SM_a = (1 − G)·SM_f + G·SMAP*

If the forecast error and the (rescaled) retrieval error are unbiased and independent, with
standard deviations σ_f and σ_o, the error of the blend has variance::

    σ_a² = (1 − G)²·σ_f² + G²·σ_o²

which is the variance of a weighted sum of independent errors. For G in [0, 1] it never
exceeds max(σ_f, σ_o) (the weights' squares sum to at most 1), and with the TC gain
G = σ_f² / (σ_f² + σ_o²) (:func:`smda.science.nudging.tc_gain`) it reaches its minimum
σ_f²·σ_o² / (σ_f² + σ_o²), below both. Where nothing is assimilated the analysis is the
forecast and σ_a = σ_f.

This is a per-day diagnostic, not a propagated covariance: σ_f is given (e.g. the model's
cross-validated or triple-collocation error SD), not carried through the cycle, and the
clipping to [0, porosity] and the nonlinearity of CDF matching are ignored.

Science core: numpy/xarray only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND, Gain

__all__ = ["analysis_uncertainty"]

FloatArray = npt.NDArray[np.float64]


def _values(value: Gain, shape: tuple[int, ...], what: str) -> FloatArray:
    """A scalar or a (lat, lon) field as float64 broadcast to ``shape``."""
    if isinstance(value, xr.DataArray):
        value = value.transpose("lat", "lon").values
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim not in (0, 2) or (arr.ndim == 2 and arr.shape != shape):
        raise ValueError(f"{what} must be a scalar or a {shape} (lat, lon) field, got {arr.shape}")
    return np.asarray(np.broadcast_to(arr, shape))


def analysis_uncertainty(
    flags: xr.DataArray, gain: Gain, forecast_sd: Gain, obs_sd: Gain
) -> xr.DataArray:
    """Error standard deviation of the analysis of one day (m3 m-3).

    Parameters
    ----------
    flags:
        The day's bit flags (:attr:`smda.science.cycle.CycleResult.flags`), uint8 (lat, lon).
    gain:
        Nudging gain G in [0, 1] used for the day: a constant or a (lat, lon) field.
    forecast_sd:
        σ_f, error SD of the forecast (m3 m-3): a constant or a (lat, lon) field.
    obs_sd:
        σ_o, error SD of SMAP rescaled to the model (SMAP*) (m3 m-3): a constant or a
        (lat, lon) field.

    Returns
    -------
    σ_a, float32 (lat, lon) on the grid of ``flags``: sqrt((1 − G)²σ_f² + G²σ_o²) where
    :data:`~smda.science.cycle.FLAG_ASSIMILATED` is set, σ_f on other land cells, NaN over sea
    (cells without :data:`~smda.science.cycle.FLAG_LAND`).

    Raises
    ------
    ValueError
        If a gain lies outside [0, 1], a standard deviation is negative, or a field's shape
        differs from ``flags``.
    """
    bits = np.asarray(flags.transpose("lat", "lon").values).astype(np.uint8)
    shape = bits.shape
    g = _values(gain, shape, "gain")
    sd_f = _values(forecast_sd, shape, "forecast_sd")
    sd_o = _values(obs_sd, shape, "obs_sd")
    if np.any(~((g >= 0.0) & (g <= 1.0))):
        raise ValueError("nudging gain must lie in [0, 1]")
    if np.any(sd_f < 0.0) or np.any(sd_o < 0.0):
        raise ValueError("error standard deviations must be ≥ 0 (m3 m-3)")
    land = (bits & FLAG_LAND) != 0
    assimilated = land & ((bits & FLAG_ASSIMILATED) != 0)
    blended = np.sqrt(((1.0 - g) * sd_f) ** 2 + (g * sd_o) ** 2)
    sigma = np.where(assimilated, blended, np.where(land, sd_f, np.nan))
    return xr.DataArray(
        sigma.astype(np.float32),
        dims=("lat", "lon"),
        coords={"lat": flags["lat"].values, "lon": flags["lon"].values},
        name="uncertainty",
        attrs={"units": "m3 m-3", "long_name": "error standard deviation of the analysis"},
    )
