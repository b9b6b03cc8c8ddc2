"""Reanalysis-like meteorology: the world's true weather seen through a product's errors.

The truth is driven by the true weather (:mod:`smda_twin.weather`), which nothing serves. ERA5
(what the CDS replica serves and smda's features are built from) and the GLDAS-like forcing are
products of it (:class:`MetErrors`), drawn reproducibly from the seed. At point x on day d::

    t2m = t2m_true + b_T(x) + n_T(x, d)                     (K; d2m gets the same, plus n_D)
    ssrd = ssrd_true·(1 + b_S(x) + n_S(x, d)), ≥ 0          (J m-2)
    u10, v10 = (u10, v10)_true·(1 + n_W(x, d));  sp = sp_true + n_P(x, d)

``b`` are static unit lattice fields of 5° times their SD (regional biases: ±1–2 K, ±5–10 %),
``n`` daily unit lattice fields of 2.5° times their SD, constant through the UTC day. A fraction
``shared_fraction`` of each bias's variance is a field common to all reanalysis-like products
(ERA5 and the GLDAS forcing share model physics and assimilated observations), so their errors
are correlated. d2m never exceeds t2m − 0.1 K. The flux fields (``sshf``, ``slhf``) keep their
true values (no model of smda's uses them).

Typical magnitudes: reanalysis 2 m temperature vs stations, regional bias ±1–2 K and daily
noise 1–2 K; surface solar radiation vs BSRN ±10–15 % daily (SCIENCE.md §5.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smda_twin.noise import Lattice

__all__ = ["ERA5_MET_ERRORS", "GLDAS_MET_ERRORS", "MetErrors", "Reanalysis"]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MetErrors:
    """Error SDs of a reanalysis-like product (module docstring)."""

    t2m_bias_sd: float = 1.2
    """K, static 5° field."""
    t2m_noise_sd: float = 1.0
    """K, daily 2.5° field."""
    d2m_noise_sd: float = 0.8
    """K, daily, added to d2m only."""
    ssrd_bias_sd: float = 0.07
    """Relative, static 5° field."""
    ssrd_noise_sd: float = 0.10
    """Relative, daily 2.5° field."""
    wind_noise_sd: float = 0.10
    """Relative, daily."""
    sp_noise_sd: float = 60.0
    """Pa, daily."""
    shared_fraction: float = 0.5
    """Share of each bias's variance common to the reanalysis-like products."""


ERA5_MET_ERRORS = MetErrors()
"""ERA5 as served: ±1.2 K regional temperature bias, 1 K daily noise, radiation ±7 % regional
and ±10 % daily."""
GLDAS_MET_ERRORS = MetErrors(
    t2m_bias_sd=1.0,
    t2m_noise_sd=0.8,
    d2m_noise_sd=0.8,
    ssrd_bias_sd=0.08,
    ssrd_noise_sd=0.12,
)
"""The GLDAS-like forcing (a GDAS/Princeton-like blend), half of its biases shared with ERA5's."""

_BIAS, _NOISE = 5.0, 2.5


class Reanalysis:
    """The error fields of one reanalysis-like product of a seeded world."""

    def __init__(self, tag: str, errors: MetErrors, seed: int) -> None:
        self.tag = tag
        self.errors = errors
        self.seed = seed

    def _bias(self, name: str, lat: FloatArray, lon: FloatArray) -> F32:
        own = Lattice(f"{self.tag}_{name}_bias", _BIAS).sample(self.seed, None, lat, lon)
        s = self.errors.shared_fraction
        if not s:
            return own
        shared = Lattice(f"reanalysis_{name}_bias", _BIAS).sample(self.seed, None, lat, lon)
        return np.asarray(np.sqrt(1.0 - s) * own + np.sqrt(s) * shared, dtype=np.float32)

    def _noise(
        self, name: str, days: npt.NDArray[np.int64], lat: FloatArray, lon: FloatArray
    ) -> F32:
        return Lattice(f"{self.tag}_{name}_noise", _NOISE).sample(self.seed, days, lat, lon)

    def offsets(
        self, first: int, n_days: int, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> dict[str, F32]:
        """The day-constant errors at outer-product points, each (n_days, lat, lon) float32:
        ``t2m`` and ``d2m`` (K, additive), ``ssrd`` and ``wind`` (relative: multiply by
        1 + value), ``sp`` (Pa, additive)."""
        e = self.errors
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        days = np.arange(first, first + n_days, dtype=np.int64)
        t2m = e.t2m_bias_sd * self._bias("t2m", la, lo)[None] + e.t2m_noise_sd * self._noise(
            "t2m", days, la, lo
        )
        ssrd = e.ssrd_bias_sd * self._bias("ssrd", la, lo)[None] + e.ssrd_noise_sd * self._noise(
            "ssrd", days, la, lo
        )
        return {
            "t2m": np.asarray(t2m, dtype=np.float32),
            "d2m": np.asarray(t2m + e.d2m_noise_sd * self._noise("d2m", days, la, lo), np.float32),
            "ssrd": np.asarray(ssrd, dtype=np.float32),
            "wind": np.asarray(e.wind_noise_sd * self._noise("wind", days, la, lo), np.float32),
            "sp": np.asarray(e.sp_noise_sd * self._noise("sp", days, la, lo), np.float32),
        }

    def hourly(
        self, true: Mapping[str, F32], first: int, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> dict[str, F32]:
        """The product's hourly fields from the true ones (``{name: (n_days, 24, lat, lon)}``
        of :meth:`smda_twin.weather.Weather.hourly`); names other than t2m, d2m, ssrd, u10,
        v10 and sp pass through unchanged."""
        n_days = next(iter(true.values())).shape[0]
        off = self.offsets(first, n_days, lat, lon)
        out = dict(true)
        for name, value in true.items():
            if name == "t2m":
                out[name] = value + off["t2m"][:, None]
            elif name == "d2m":
                d2m = value + off["d2m"][:, None]
                if "t2m" in true:
                    t2m = true["t2m"] + off["t2m"][:, None]
                    d2m = np.minimum(d2m, t2m - np.float32(0.1))
                out[name] = d2m
            elif name == "ssrd":
                out[name] = value * np.maximum(1.0 + off["ssrd"][:, None], np.float32(0.0))
            elif name in ("u10", "v10"):
                out[name] = value * (1.0 + off["wind"][:, None])
            elif name == "sp":
                out[name] = value + off["sp"][:, None]
        return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}

    def daily(
        self, t_mean_k: F32, ssrd: F32, first: int, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[F32, F32]:
        """Daily mean 2 m temperature (K) and daily radiation (J m-2) of the product from the
        true ones, each (n_days, lat, lon)."""
        off = self.offsets(first, t_mean_k.shape[0], lat, lon)
        t = t_mean_k + off["t2m"]
        s = ssrd * np.maximum(1.0 + off["ssrd"], np.float32(0.0))
        return np.asarray(t, dtype=np.float32), np.asarray(s, dtype=np.float32)
