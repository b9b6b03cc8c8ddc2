"""Precipitation products of the synthetic world: the true rain seen through each product's errors.

The truth is driven by the true precipitation (:mod:`smda_twin.precipitation`), which nothing
serves. What the replicas serve and what smda stages are products of it, each with its own
errors, drawn reproducibly from the seed (:class:`RainErrors`):

- **MSWEP** (:data:`MSWEP_ERRORS`): the gauge-corrected final release at 0.1°;
- **MSWEP NRT** (:data:`MSWEP_NRT_ERRORS`): the final field with a further error that shrinks as
  the day ages and is gone after ``final_age_days`` (the NRT file is revised in place daily);
- **ERA5 ``tp``** (:data:`ERA5_TP_ERRORS`): coarser (0.3° box) and wetter-more-often, with a
  larger error than MSWEP; ERA5-Land's forcing (:mod:`smda_twin.products`);
- **GLDAS forcing precipitation** (:data:`GLDAS_RAIN_ERRORS`): a 1° satellite–gauge analysis
  whose 1° error is partly the same as MSWEP's (both merge satellite estimates and gauges).

Error model of a product at point x (the 0.1° pixel containing it) on day d, from the true daily
total ``P`` (first box-smoothed over ``smoothing_deg`` when the product is coarser)::

    product = P·B(x)·exp(σ_c·E_c(x, d) + σ_f·E_f(x, d) − (σ_c² + σ_f²)/2)

- ``B = exp(bias_sd·N)``: a regional multiplicative bias, N a static unit lattice field of
  ``bias_spacing`` degrees (bias_sd 0.15 gives ±15 % over regions of a few hundred km);
- ``E_c``: a daily unit lattice field of ``coarse_spacing`` degrees, of which a fraction
  ``shared_fraction`` of the variance is one field common to the satellite-based products
  (MSWEP and the GLDAS forcing): their errors are correlated, as the real ones are;
- ``E_f``: independent per 0.1° pixel and day;
- **missed light events**: a true total below ``miss_below_mm`` is reported as 0 with
  probability ``miss_probability``;
- **false drizzle**: on a truly dry day, where the weather's wetness anomaly exceeds
  ``c − 1`` (``c`` the rain threshold of :meth:`~smda_twin.precipitation.Precipitation.wet_threshold`:
  a moist, cloudy regime), ``drizzle_mm·(−ln u)`` mm appears with probability
  ``drizzle_probability``.

All random numbers are keyed by (seed, product tag, day, position): independent of the truth's
own randomness. :func:`kge` measures a product against the true rain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
from scipy.ndimage import uniform_filter
from scipy.special import ndtri

from smda.geo.grid import Grid
from smda_twin.noise import Lattice, hash_uniforms, key
from smda_twin.precipitation import Precipitation, bilinear, covering_window

__all__ = [
    "ERA5_TP_ERRORS",
    "GLDAS_RAIN_ERRORS",
    "MSWEP_ERRORS",
    "MSWEP_NRT_ERRORS",
    "NrtErrors",
    "RainErrors",
    "RainProduct",
    "era5_tp",
    "kge",
    "mswep_nrt",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RainErrors:
    """Errors of a precipitation product against the true rain (module docstring)."""

    smoothing_deg: float = 0.0
    """Box width (degrees) the true field is averaged over first: the product's resolution."""
    bias_sd: float = 0.0
    """Log-SD of the static regional multiplicative bias."""
    bias_spacing: float = 5.0
    coarse_sd: float = 0.0
    """Log-SD of the daily error correlated over ``coarse_spacing`` degrees."""
    coarse_spacing: float = 1.0
    shared_fraction: float = 0.0
    """Share of the coarse error variance common to the satellite-based products."""
    fine_sd: float = 0.0
    """Log-SD of the daily error independent per 0.1° pixel."""
    miss_below_mm: float = 0.0
    miss_probability: float = 0.0
    drizzle_probability: float = 0.0
    drizzle_mm: float = 0.0


@dataclass(frozen=True)
class NrtErrors:
    """The extra error of MSWEP NRT over the final release, at age 0 (it falls linearly to zero
    at ``final_age_days``, when the NRT file equals the final one)."""

    extra_sd: float = 0.35
    """Log-SD of a daily 1° multiplicative error (NRT of age 1 day: KGE 0.60 vs the final's
    0.69)."""
    extra_bias_sd: float = 0.10
    """Log-SD of a static 5° multiplicative bias (NRT lacks the gauge correction)."""
    final_age_days: int = 10


MSWEP_ERRORS = RainErrors(
    bias_sd=0.15,
    coarse_sd=0.5,
    shared_fraction=0.5,
    fine_sd=0.45,
    miss_below_mm=1.0,
    miss_probability=0.35,
    drizzle_probability=0.12,
    drizzle_mm=0.3,
)
"""MSWEP final (gauge-corrected, 0.1°): median daily KGE vs the true rain 0.69 at 0.1° in both
OSSE regions (MSWEP V3's median daily KGE vs independent gauges is 0.69; Beck et al., arXiv
2602.01436); a ±15 % regional bias; half of its 1° error variance shared with the GLDAS
forcing."""
MSWEP_NRT_ERRORS = NrtErrors()
"""MSWEP NRT: without gauge correction, worse than the final release until it is replaced."""
ERA5_TP_ERRORS = RainErrors(
    smoothing_deg=0.3,
    bias_sd=0.2,
    coarse_sd=0.8,
    fine_sd=0.0,
    miss_below_mm=0.0,
    drizzle_probability=0.45,
    drizzle_mm=0.4,
)
"""ERA5 ``tp``: a reanalysis's rain, coarser, noisier and drizzling (median daily KGE vs the
true cell rain 0.53 in the demo region, 0.60 in the second; ERA5's median vs gauges is 0.61),
with errors independent of MSWEP's."""
GLDAS_RAIN_ERRORS = RainErrors(
    smoothing_deg=1.0,
    bias_sd=0.10,
    coarse_sd=0.55,
    shared_fraction=0.5,
    fine_sd=0.0,
    miss_below_mm=1.0,
    miss_probability=0.3,
    drizzle_probability=0.1,
    drizzle_mm=0.3,
)
"""The GLDAS-like forcing precipitation: a 1° satellite–gauge analysis (GPCP-like) sharing
half of its 1° error variance with MSWEP (median daily KGE 0.61 / 0.52 in the two regions)."""

_SHARED = Lattice("rain_satellite", 1.0)


def _pixel_index(lat: FloatArray, lon: FloatArray) -> tuple[npt.NDArray[np.int64], ...]:
    """Row and column of the 0.1° pixels containing points (global indices)."""
    rows = np.clip(np.floor((90.0 - lat) / 0.1), 0, 1799).astype(np.int64)
    cols = (np.floor(((lon + 180.0) % 360.0) / 0.1).astype(np.int64)) % 3600
    return rows, cols


class RainProduct:
    """One precipitation product of a world (``errors`` and a ``tag`` keying its randomness)."""

    def __init__(self, tag: str, errors: RainErrors, precipitation: Precipitation) -> None:
        self.tag = tag
        self.errors = errors
        self.precipitation = precipitation
        self.seed = precipitation.seed
        self._bias = Lattice(f"{tag}_bias", errors.bias_spacing)
        self._coarse = Lattice(f"{tag}_coarse", errors.coarse_spacing)

    # -- at 0.1° cells or at points -------------------------------------------------------------
    def on_window(self, first: int, n_days: int, grid01: Grid) -> F32:
        """Daily totals (mm day-1) on a window of the 0.1° grid: (n_days, lat, lon) float32.
        Only for products at 0.1° (``smoothing_deg`` 0)."""
        if self.errors.smoothing_deg:
            raise ValueError(f"{self.tag} is a {self.errors.smoothing_deg}° product: use at_points")
        true = self.precipitation.true_daily(first, n_days, grid01)
        rows = grid01.row0 + np.arange(grid01.nrows, dtype=np.int64)
        cols = (grid01.col0 + np.arange(grid01.ncols, dtype=np.int64)) % 3600
        return self._apply(true, first, grid01.lats, grid01.lons, rows, cols)

    def at_points(
        self,
        first: int,
        n_days: int,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        *,
        window: Grid | None = None,
    ) -> F32:
        """Daily totals (mm day-1) at outer-product points: (n_days, lat, lon) float32.

        ``window`` is the 0.1° window to make the true field on (default: the points'
        covering window with room for the smoothing); pass the region's window
        (:func:`smda_twin.waterbalance.region_window`) to share the field with the truth.
        """
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        width = self.errors.smoothing_deg
        window = window or covering_window(la, lo, margin=0.3 + width)
        field = self.precipitation.true_daily(first, n_days, window)
        if width:
            size = 2 * round(width / 0.2) + 1
            lon_mode = "wrap" if window.is_global else "nearest"
            field = uniform_filter(
                field, size=(1, size, size), mode=("nearest", "nearest", lon_mode)
            )
        true = bilinear(np.asarray(field, dtype=np.float32), window, la, lo)
        rows, cols = _pixel_index(la, lo)
        return self._apply(true, first, la, lo, rows, cols)

    def _apply(
        self,
        true: F32,
        first: int,
        lat: FloatArray,
        lon: FloatArray,
        rows: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int64],
    ) -> F32:
        e = self.errors
        n_days = true.shape[0]
        days = np.arange(first, first + n_days, dtype=np.int64)
        log_err = np.zeros(true.shape, dtype=np.float32)
        if e.bias_sd:
            log_err += np.float32(e.bias_sd) * self._bias.sample(self.seed, None, lat, lon)[None]
        if e.coarse_sd:
            own = self._coarse.sample(self.seed, days, lat, lon)
            if e.shared_fraction:
                shared = _SHARED.sample(self.seed, days, lat, lon)
                own = np.sqrt(1.0 - e.shared_fraction) * own + np.sqrt(e.shared_fraction) * shared
            log_err += np.float32(e.coarse_sd) * own - np.float32(0.5 * e.coarse_sd**2)
        k = key(self.seed, "rain_product", self.tag)

        def uniforms(at: tuple[npt.NDArray[np.intp], ...], what: int) -> FloatArray:
            """Uniforms keyed by (day, pixel) at the positions ``at`` only: the same values
            whatever else is asked (keys, not a stream)."""
            t, r, c = at
            return hash_uniforms(k, days[t], rows[r], cols[c], what)

        out = np.zeros(true.shape, dtype=np.float32)
        wet = np.nonzero(true > 0.0)
        if e.fine_sd:
            fine = ndtri(uniforms(wet, 0)).astype(np.float32) * np.float32(e.fine_sd)
            log_err[wet] += fine - np.float32(0.5 * e.fine_sd**2)
        out[wet] = true[wet] * np.exp(log_err[wet])
        if e.miss_probability:
            light = np.nonzero((true > 0.0) & (true < e.miss_below_mm))
            missed = uniforms(light, 1) < e.miss_probability
            out[tuple(i[missed] for i in light)] = 0.0
        if e.drizzle_probability:
            anomaly = self.precipitation.weather.anomaly("wetness", first, n_days, lat, lon)
            threshold = self.precipitation.wet_threshold(days, lat, lon)
            moist = np.nonzero((anomaly > threshold - 1.0) & (true <= 0.0))
            chosen = uniforms(moist, 2) < e.drizzle_probability
            at = tuple(i[chosen] for i in moist)
            out[at] = (-np.log(uniforms(at, 3)) * e.drizzle_mm).astype(np.float32)
        return out


def mswep_nrt(
    final: F32, day: date, today: date, grid01: Grid, seed: int, errors: NrtErrors
) -> F32:
    """The NRT file of ``day`` as published on ``today`` from the final field on ``grid01``
    (mm day-1): the extra error of :class:`NrtErrors`, scaled by the days left to finality."""
    age = (today - day).days
    if age < 0:
        raise ValueError(f"MSWEP NRT for {day} does not exist on {today} (it is in the future)")
    left = max(0, errors.final_age_days - age) / errors.final_age_days
    if left == 0.0:
        return final
    s, b = errors.extra_sd * left, errors.extra_bias_sd * left
    d = day.toordinal()
    noise = Lattice("mswep_nrt", 1.0).sample(seed, [d], grid01.lats, grid01.lons)[0]
    bias = Lattice("mswep_nrt_bias", 5.0).sample(seed, None, grid01.lats, grid01.lons)
    factor = np.exp(np.float32(s) * noise - np.float32(0.5 * s * s) + np.float32(b) * bias)
    return np.asarray(final * factor, dtype=np.float32)


def era5_tp(
    product: RainProduct, day: date, lat: npt.ArrayLike, lon: npt.ArrayLike, *, from_midnight: bool
) -> F32:
    """ERA5 ``tp`` (m) at valid times 00…23 UTC of ``day`` from ``product``'s daily totals:
    float32 (24, lat, lon), spread over the hours by
    :meth:`~smda_twin.precipitation.Precipitation.hour_weights`.

    By default each value is the hour ending at the valid time (ERA5); with ``from_midnight``
    it is accumulated since 00 UTC, the 00 UTC value being the previous day's total (ERA5-Land).
    """
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    d = day.toordinal()
    daily = product.at_points(d - 1, 2, la, lo) / np.float32(1000.0)
    weights = product.precipitation.hour_weights
    out = np.empty((24, la.size, lo.size), dtype=np.float32)
    out[1:] = weights(d, np.arange(1, 24), la, lo, scale=daily[1])
    if from_midnight:
        out[0] = daily[0]
        np.cumsum(out[1:], axis=0, out=out[1:])
    else:
        out[0] = weights(d - 1, np.array([24]), la, lo, scale=daily[0])[0]
    return out


def kge(product: npt.ArrayLike, truth: npt.ArrayLike, axis: int = 0) -> FloatArray:
    """Kling–Gupta efficiency ``1 − √((r − 1)² + (α − 1)² + (β − 1)²)`` along ``axis``
    (r Pearson correlation, α ratio of standard deviations, β ratio of means)."""
    x = np.asarray(product, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    xm, tm = x.mean(axis=axis), t.mean(axis=axis)
    xs, ts = x.std(axis=axis), t.std(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = ((x - np.expand_dims(xm, axis)) * (t - np.expand_dims(tm, axis))).mean(axis=axis)
        r = cov / (xs * ts)
        return np.asarray(1.0 - np.sqrt((r - 1) ** 2 + (xs / ts - 1) ** 2 + (xm / tm - 1) ** 2))
