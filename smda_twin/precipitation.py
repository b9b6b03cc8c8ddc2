"""The true precipitation of the synthetic world: daily totals at 0.1° and how long it rained.

This is the rain the truth's water balance receives (:mod:`smda_twin.waterbalance`). No replica
serves it and no staged file contains it: MSWEP, ERA5 ``tp`` and the GLDAS-like forcing are
products of it with their own errors (:mod:`smda_twin.rainfall`).

Daily totals
------------
Daily totals (mm day-1, 00–24 UTC) at the centres of the global 0.1° grid, from a censored,
squared Gaussian field:

``P = A·max(G − c, 0)²``, with the latent field
``G = (0.62·W + 0.60·M + 0.50·C) / 0.997`` (unit variance), where ``W`` is the weather's
``wetness`` anomaly (2.5°, persistent over a few days; it also makes clouds, see
:mod:`smda_twin.weather`), ``M`` a daily white 0.5° field and ``C`` a daily white 0.25°
field. The threshold ``c = clip(0.9 − 0.45·ln P̄, −1.5, 3)`` sets the wet fraction from the
climatology ``P̄`` (:func:`smda_twin.geography.precip_climatology`) and
``A = P̄ / E[max(G − c, 0)²]`` makes the long-term mean equal to ``P̄``
(``E[max(G − c, 0)²] = (1 + c²)Φ(−c) − cφ(c)``).

Storm duration
--------------
:meth:`Precipitation.storm_hours` is the number of hours the day's rain fell in, which sets its
intensity (mm h-1) and so the truth's infiltration-excess runoff. Daily products do not carry it.
``H = clip(H₀·exp(0.5·N), 1, 24)`` with ``N`` a daily white 0.5° field and the median
``H₀ = 12 − 8·k`` h, ``k`` the convective share: 1 in the tropics (|lat| < 15°), else the
warm-season weight ``clip(0.5 + 0.6·cos(2π(doy − 200)/365.25)·sign(lat), 0, 1)`` — short summer
downpours, long winter rains.

Hourly distribution
-------------------
:meth:`Precipitation.hour_weights` spreads a daily total over the hours of the UTC day by a Fejér
kernel in local solar time, ``w_k = (1 + 1.5 cos x + cos 2x + 0.5 cos 3x)/24`` with
``x = 2π(LST_k − peak)/24`` at the middle of hour k, which is ≥ 0 and sums to exactly 1 over the
24 hours; ``peak`` is about 16 LST over land (afternoon convection) and 06 LST over sea, ±2.5 h
from a daily 2.5° field (used for ERA5's hourly ``tp``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from smda.geo.grid import Grid
from smda_twin.geography import Geography, precip_climatology
from smda_twin.noise import Lattice, Memo, unwrap_lon
from smda_twin.weather import Weather, day_of_year

__all__ = ["MSWEP_GRID", "Precipitation", "bilinear", "covering_window"]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

MSWEP_GRID = Grid.global_grid(0.1)
"""MSWEP's global 0.1° grid (1800 × 3600, latitude 89.95 … −89.95, longitude −179.95 … 179.95)."""

_MESO = Lattice("meso", 0.5)
_CONV = Lattice("conv", 0.25)
_STORM = Lattice("storm_hours", 0.5)
_MEMO_VALUES = 25_000_000  # blocks up to 100 MB are kept for the region's other users
_PEAK = Lattice("tp_peak", 2.5)
_W_WET, _W_MESO, _W_CONV = 0.62, 0.60, 0.50
_NORM = math.sqrt(_W_WET**2 + _W_MESO**2 + _W_CONV**2)


def _m2(c: FloatArray) -> FloatArray:
    """``E[max(G − c, 0)²] = (1 + c²)Φ(−c) − cφ(c)`` for a standard normal G (exact)."""
    return np.asarray(
        (1.0 + c * c) * ndtr(-c) - c * np.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    )


# ln E[max(G − c, 0)²] on c ∈ [−1.5, 3] as a polynomial in c (relative error < 3e-5),
# lowest order first; fast enough for global 0.1° fields every day.
_LN_M2 = (
    -6.93148814e-01,
    -1.59579188e00,
    -2.73228989e-01,
    -2.46756854e-02,
    9.09541413e-04,
    2.23471566e-04,
    -3.06406450e-05,
)


def _threshold_and_scale(pclim: F32) -> tuple[F32, F32]:
    """Threshold c and scale A so that ``A·E[max(G − c, 0)²] = pclim``."""
    p = np.maximum(pclim, np.float32(1e-3))
    c = np.log(p)
    c *= np.float32(-0.45)
    c += np.float32(0.9)
    np.clip(c, np.float32(-1.5), np.float32(3.0), out=c)
    acc = np.full_like(c, np.float32(_LN_M2[-1]))
    for coef in _LN_M2[-2::-1]:
        acc *= c
        acc += np.float32(coef)
    np.negative(acc, out=acc)
    np.exp(acc, out=acc)
    acc *= p
    return c, acc


def covering_window(
    lat: npt.ArrayLike, lon: npt.ArrayLike, *, res: float = 0.1, margin: float = 0.3
) -> Grid:
    """The window of the global ``res`` grid whose cells cover points (± ``margin`` °)."""
    la = np.asarray(lat, dtype=np.float64)
    lo = unwrap_lon(lon)
    n_lat, n_lon = round(180.0 / res), round(360.0 / res)
    r0 = max(0, math.floor((90.0 - float(la.max()) - margin) / res))
    r1 = min(n_lat, math.ceil((90.0 - float(la.min()) + margin) / res))
    west, east = float(lo.min()) - margin, float(lo.max()) + margin
    if east - west >= 360.0 - 2 * res:
        return Grid(res, r0, 0, r1 - r0, n_lon)
    c0 = math.floor((west + 180.0) / res)
    c1 = math.ceil((east + 180.0) / res)
    return Grid(res, r0, c0 % n_lon, r1 - r0, min(n_lon, c1 - c0))


def bilinear(field: F32, src: Grid, lat: FloatArray, lon: FloatArray) -> F32:
    """Bilinear interpolation of (..., src lat, src lon) cell-centre values at points."""
    y = (90.0 - (src.row0 + 0.5) * src.res - np.asarray(lat, dtype=np.float64)) / src.res
    y = np.clip(y, 0.0, src.nrows - 1.0)
    r0 = np.minimum(np.floor(y).astype(np.intp), max(src.nrows - 2, 0))
    r1 = np.minimum(r0 + 1, src.nrows - 1)
    fy = (y - r0).astype(np.float32)[:, None]
    west = -180.0 + (src.col0 + 0.5) * src.res
    x = ((np.asarray(lon, dtype=np.float64) - west) % 360.0) / src.res
    if src.is_global:
        c0 = np.floor(x).astype(np.intp) % src.ncols
        c1 = (c0 + 1) % src.ncols
        fx = (x - np.floor(x)).astype(np.float32)
    else:
        x = np.clip(x, 0.0, src.ncols - 1.0)
        c0 = np.minimum(np.floor(x).astype(np.intp), max(src.ncols - 2, 0))
        c1 = np.minimum(c0 + 1, src.ncols - 1)
        fx = (x - c0).astype(np.float32)
    rows = field[..., r0, :] * (1.0 - fy) + field[..., r1, :] * fy
    return np.asarray(rows[..., c0] * (1.0 - fx) + rows[..., c1] * fx, dtype=np.float32)


class Precipitation:
    """The true precipitation of a seeded world (see the module docstring)."""

    def __init__(self, seed: int, geography: Geography, weather: Weather) -> None:
        self.seed = seed
        self.geography = geography
        self.weather = weather
        self._days: Memo[F32] = Memo(6)
        self._blocks: Memo[F32] = Memo(3)

    # -- daily totals ---------------------------------------------------------------------------
    def true_daily(self, first: int, n_days: int, grid: Grid) -> F32:
        """True daily precipitation (mm day-1) of days ``first … first + n_days − 1`` on a
        window of the 0.1° grid: float32 (n_days, grid.nrows, grid.ncols)."""
        if abs(grid.res - 0.1) > 1e-9:
            raise ValueError(f"the true precipitation is on the 0.1° grid, not {grid}")
        if n_days > 2:
            if n_days * grid.nrows * grid.ncols > _MEMO_VALUES:
                return self._true(first, n_days, grid)
            return self._blocks.get((first, n_days, grid), lambda: self._true(first, n_days, grid))
        layers = []
        for d in range(first, first + n_days):

            def make(d: int = d) -> F32:
                return np.asarray(self._true(d, 1, grid)[0])

            layers.append(self._days.get((d, grid), make))
        return np.stack(layers)

    def _true(self, first: int, n_days: int, grid: Grid) -> F32:
        lat, lon = grid.lats, grid.lons
        days = np.arange(first, first + n_days)
        lsm, mult = self.geography.precip_fields(lat, lon)
        latent = self.weather.anomaly("wetness", first, n_days, lat, lon)
        latent *= np.float32(_W_WET / _NORM)
        latent += np.float32(_W_MESO / _NORM) * _MESO.sample(self.seed, days, lat, lon)
        latent += np.float32(_W_CONV / _NORM) * _CONV.sample(self.seed, days, lat, lon)
        doy = day_of_year(days)[:, None, None]
        pclim = precip_climatology(lat[:, None].astype(np.float32), lsm, mult, doy).astype(
            np.float32
        )
        c, scale = _threshold_and_scale(pclim)
        latent -= c
        np.maximum(latent, np.float32(0.0), out=latent)
        latent *= latent
        latent *= scale
        return latent

    def wet_threshold(self, days: npt.ArrayLike, lat: FloatArray, lon: FloatArray) -> F32:
        """The threshold ``c`` of the latent field at outer-product points (n_days, lat, lon):
        where the wetness anomaly exceeds it, rain is likely (used for false drizzle)."""
        lsm, mult = self.geography.precip_fields(lat, lon)
        doy = day_of_year(np.asarray(days))[:, None, None]
        la = np.asarray(lat, dtype=np.float32)[:, None]
        return _threshold_and_scale(precip_climatology(la, lsm, mult, doy).astype(np.float32))[0]

    def storm_hours(self, first: int, n_days: int, lat: FloatArray, lon: FloatArray) -> F32:
        """Hours the day's rain fell in (1–24) at outer-product points: (n_days, lat, lon)
        float32 (module docstring)."""
        days = np.arange(first, first + n_days)
        doy = day_of_year(days)[:, None, None]
        la = np.asarray(lat, dtype=np.float64)[None, :, None]
        season = np.cos(2.0 * np.pi * (doy - 200.0) / 365.25) * np.sign(la)
        convective = np.where(np.abs(la) < 15.0, 1.0, np.clip(0.5 + 0.6 * season, 0.0, 1.0))
        median = 12.0 - 8.0 * convective
        noise = _STORM.sample(self.seed, days, lat, lon)
        return np.asarray(np.clip(median * np.exp(0.5 * noise), 1.0, 24.0), dtype=np.float32)

    def hour_weights(
        self,
        day: int,
        bins: npt.NDArray[np.int64],
        lat: FloatArray,
        lon: FloatArray,
        *,
        scale: F32 | None = None,
    ) -> F32:
        """Fraction of ``day``'s ERA5 precipitation falling in hours ``bins`` (1…24, the hour
        ending at that UTC hour): (len(bins), lat, lon), summing to 1 over bins 1…24;
        multiplied by ``scale`` (lat, lon) if given."""
        st = self.geography.statics(lat, lon)
        noise = _PEAK.sample(self.seed, [day], lat, lon)[0]
        lsm = st.lsm.astype(np.float32)
        peak = lsm * (16.0 + 2.5 * noise) + (1.0 - lsm) * (6.0 + 2.5 * noise)
        b = np.float32(2.0 * np.pi / 24.0) * peak
        cos_b, sin_b = np.cos(b), np.sin(b)
        if scale is not None:
            factor = scale / np.float32(12.0)
            cos_b *= factor
            sin_b *= factor
        # x = a(bin, lon) − b(lat, lon); cos x = cos a cos b + sin a sin b
        a = (
            2.0
            * np.pi
            / 24.0
            * (np.asarray(bins, dtype=np.float64)[:, None] - 0.5 + np.asarray(lon)[None, :] / 15.0)
        )
        cos_a, sin_a = np.cos(a).astype(np.float32), np.sin(a).astype(np.float32)
        out = np.empty((len(bins), *peak.shape), dtype=np.float32)
        unit = np.float32(1.0 / 12.0) if scale is None else None
        for i in range(len(bins)):
            if scale is None:
                c1 = cos_a[i][None, :] * np.cos(b)
                c1 += sin_a[i][None, :] * np.sin(b)
                # Fejér kernel 1 + 1.5 cos x + cos 2x + 0.5 cos 3x = 2 cos²x (1 + cos x)
                w = c1 * c1
                c1 += 1.0
                w *= c1
                w *= unit
                out[i] = w
            else:
                # the same with cos x scaled by s = scale/12: s·2cos²x(1+cos x)/24 = (s c)(c + c²)
                sc = cos_a[i][None, :] * cos_b
                sc += sin_a[i][None, :] * sin_b  # s·cos x
                c = cos_a[i][None, :] * np.cos(b)
                c += sin_a[i][None, :] * np.sin(b)
                c *= c + 1.0
                np.multiply(sc, c, out=out[i])
        return out
