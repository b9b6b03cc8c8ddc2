"""The static world: land and sea, orography, soils, vegetation and precipitation climate.

Everything here is a time-invariant field evaluated at an outer product of point latitudes and
longitudes (1-D arrays, any order, any longitude convention), so the replicas can serve it at
ERA5 points, MSWEP cells or EASE-Grid pixels alike.

Land–sea mask
-------------
The land fraction is Earth's, at 1°: ``data/land_1deg.npz`` holds ``land`` (uint8, 180 × 360,
value/255 = land fraction of each 1° cell, rows 89.5 → −89.5, columns −179.5 → 179.5). It was
derived once from the TU Wien ERA5 land definition (``landmask_0.25_0.25.nc``, land = ERA5
``lsm ≥ 0.5``, MIT licence) as the trapezoid-weighted mean of the 5 × 5 ERA5 points on each 1°
cell; that file has no data south of 60° S, where land was set to 1 south of 70° S and 0 between
60° S and 70° S. At a point, ``lsm`` is the bilinear interpolation of that table, sharpened
(``0.5 + 2·(f − 0.5)``) and perturbed near coasts by a seeded 0.5° field
(``+ 0.3·N·4f(1 − f)``), clipped to [0, 1].

Other fields (all seeded, smooth, unit-variance lattice noise N with the spacing given):

- orography ``h = lsm·(30 + 1800·Φ(N₆°)³ + 1500·Φ(N₁.₅°)⁸) + 2000·clip((−lat − 70)/10, 0, 1)`` m;
- precipitation climate: :func:`precip_climatology` (mm day-1), an ITCZ following the sun,
  mid-latitude storm tracks, dry subtropics, a summer maximum over mid-latitude land and a
  static multiplier ``exp(0.35·N₄° − 0.06)``; aridity ``clip(1 − P_annual/3, 0, 1)``;
- soil type ``slt`` 1–7 (ERA5 codes: coarse, medium, medium-fine, fine, very fine, organic,
  tropical organic) from a 3° field, 0 over sea (``lsm < 0.5``); hydraulic properties per type
  in :data:`SOIL_TABLE` (loosely after HTESSEL), perturbed per cell by :func:`soil_properties`;
- vegetation cover ``cvh``, ``cvl`` and types ``tvh``, ``tvl`` (ERA5 codes) from wetness,
  latitude and 2° fields, 0 over sea.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from smda_twin.noise import Lattice, Memo, unwrap_lon

__all__ = ["SOIL_TABLE", "Geography", "Statics", "land_table", "precip_climatology"]

FloatArray = npt.NDArray[np.float64]

LAND_TABLE = Path(__file__).parent / "data" / "land_1deg.npz"

SOIL_TABLE: dict[int, tuple[float, float, float]] = {
    # slt: (porosity, field capacity, wilting point) in m3 m-3
    1: (0.40, 0.20, 0.04),  # coarse
    2: (0.44, 0.30, 0.08),  # medium
    3: (0.43, 0.32, 0.10),  # medium fine
    4: (0.48, 0.37, 0.14),  # fine
    5: (0.52, 0.42, 0.19),  # very fine
    6: (0.70, 0.55, 0.15),  # organic
    7: (0.50, 0.34, 0.12),  # tropical organic
}
"""Soil hydraulic properties per ERA5 soil type (loosely after the HTESSEL table, with lower
wilting points suited to a 0–5 cm layer)."""

_TWO_PI = 2.0 * np.pi
_YEAR = 365.25


def land_table() -> FloatArray:
    """The embedded 1° land fraction (180, 360), rows 89.5 → −89.5, cols −179.5 → 179.5."""
    with np.load(LAND_TABLE) as data:
        return np.asarray(data["land"], dtype=np.float64) / 255.0


def _bilinear_table(table: FloatArray, lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Bilinear interpolation of a 1° cell-centred global table at outer-product points."""
    y = np.clip(89.5 - lat, 0.0, 179.0)
    r0 = np.minimum(np.floor(y).astype(np.intp), 178)
    fy = (y - r0)[:, None]
    x = (unwrap_lon(lon) + 179.5) % 360.0
    c0 = np.floor(x).astype(np.intp) % 360
    c1 = (c0 + 1) % 360
    fx = (x - np.floor(x))[None, :]
    top = table[r0][:, c0] * (1 - fx) + table[r0][:, c1] * fx
    bottom = table[r0 + 1][:, c0] * (1 - fx) + table[r0 + 1][:, c1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy)


def _precip_factors(
    lat: npt.NDArray[np.floating], doy: float | npt.NDArray[np.floating]
) -> tuple[FloatArray, FloatArray]:
    """Sea and land climatological precipitation (mm day-1) before the static multiplier."""
    doy_a = np.asarray(doy, dtype=np.float64)
    itcz = 6.0 + 6.0 * np.sin(_TWO_PI * (doy_a - 105.0) / _YEAR)
    sea = (
        0.4
        + 6.0 * np.exp(-(((lat - itcz) / 9.0) ** 2))
        + 3.0 * np.exp(-(((np.abs(lat) - 45.0) / 15.0) ** 2))
    )
    season = 1.0 + 0.4 * np.sign(lat) * np.minimum(np.abs(lat) / 30.0, 1.0) * np.cos(
        _TWO_PI * (doy_a - 180.0) / _YEAR
    )
    return np.asarray(sea), np.asarray(0.8 * sea * season)


def precip_climatology(
    lat: npt.NDArray[np.floating],
    lsm: npt.NDArray[np.floating],
    multiplier: npt.NDArray[np.floating],
    doy: float | npt.NDArray[np.floating],
) -> FloatArray:
    """Climatological precipitation (mm day-1) at points on a day of year.

    ``(sea + lsm·(land − sea)) · multiplier`` with
    ``sea = 0.4 + 6·exp(−((lat − itcz)/9)²) + 3·exp(−((|lat| − 45)/15)²)``,
    ``itcz = 6 + 6·sin(2π(doy − 105)/365.25)`` and
    ``land = 0.8·sea·(1 + 0.4·sign(lat)·min(|lat|/30, 1)·cos(2π(doy − 180)/365.25))`` (a
    summer maximum over land). Pass ``lat`` as a column (n, 1) against ``lsm`` (n, m): the
    latitude factors are then computed once per row. ``doy`` may be an array broadcasting in
    front.
    """
    sea, land = _precip_factors(lat, doy)
    # (sea + lsm·(land − sea))·multiplier with one full-size temporary (same values: + and ·
    # are commutative in floating point)
    out = np.multiply(lsm, land - sea)
    out += sea
    out *= multiplier
    return np.asarray(out)


@dataclass(frozen=True)
class Statics:
    """Static fields at an outer product of points, each (lat, lon) float64.

    ``lat`` is (n, 1) and ``lon`` (1, m) for broadcasting. Units: ``lsm`` 0–1, ``elevation``
    m, ``precip_multiplier`` and ``aridity`` dimensionless, ``p_annual`` mm day-1, ``slt``,
    ``tvh``, ``tvl`` integer codes, ``cvh``, ``cvl`` 0–1.
    """

    lat: FloatArray
    lon: FloatArray
    lsm: FloatArray
    elevation: FloatArray
    precip_multiplier: FloatArray
    p_annual: FloatArray
    aridity: FloatArray
    slt: FloatArray
    cvh: FloatArray
    cvl: FloatArray
    tvh: FloatArray
    tvl: FloatArray

    @property
    def land(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.lsm >= 0.5)


class Geography:
    """Static fields of a seeded world (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._table = land_table()
        self._memo: Memo[Statics] = Memo(16)
        self._precip: Memo[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = Memo(4)

    def field(self, lattice: Lattice, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """A static unit-variance random field at outer-product points (n, m)."""
        return lattice.sample(self.seed, None, lat, lon).astype(np.float64)

    def land_fraction(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
        """``lsm`` (0–1) at outer-product points (n, m)."""
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        f = _bilinear_table(self._table, la, lo)
        noise = self.field(Lattice("coast", 0.5), la, lo)
        return np.asarray(
            np.clip(0.5 + 2.0 * (f - 0.5) + 0.3 * noise * 4.0 * f * (1.0 - f), 0.0, 1.0)
        )

    def precip_fields(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``lsm`` and the precipitation-climate multiplier at outer-product points, float32
        (lat, lon): the light subset of :meth:`statics` that fine precipitation grids need."""
        la = np.ascontiguousarray(lat, dtype=np.float64)
        lo = np.ascontiguousarray(lon, dtype=np.float64)

        def make() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
            lsm = self.land_fraction(la, lo).astype(np.float32)
            mult = np.exp(
                0.35 * Lattice("pclim", 4.0).sample(self.seed, None, la, lo) - np.float32(0.06)
            )
            return lsm, mult.astype(np.float32)

        return self._precip.get((la.tobytes(), lo.tobytes()), make)

    def statics(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> Statics:
        """All static fields at outer-product points (memoised per point set)."""
        la = np.ascontiguousarray(lat, dtype=np.float64)
        lo = np.ascontiguousarray(lon, dtype=np.float64)
        k = (la.tobytes(), lo.tobytes())
        return self._memo.get(k, lambda: self._compute(la, lo))

    def _compute(self, lat: FloatArray, lon: FloatArray) -> Statics:
        lat2 = lat[:, None] + np.zeros((1, lon.size))
        lsm = self.land_fraction(lat, lon)
        land = lsm >= 0.5

        def noise(tag: str, spacing: float) -> FloatArray:
            return self.field(Lattice(tag, spacing), lat, lon)

        h = lsm * (
            30.0 + 1800.0 * ndtr(noise("orog", 6.0)) ** 3 + 1500.0 * ndtr(noise("peaks", 1.5)) ** 8
        )
        h = h + 2000.0 * np.clip((-lat2 - 70.0) / 10.0, 0.0, 1.0)
        mult = np.exp(0.35 * noise("pclim", 4.0) - 0.06)
        sea, land_p = _precip_factors(lat[:, None], 15.0 + 30.44 * np.arange(12)[:, None, None])
        p_annual = (sea.mean(axis=0) + lsm * (land_p.mean(axis=0) - sea.mean(axis=0))) * mult
        aridity = np.clip(1.0 - p_annual / 3.0, 0.0, 1.0)
        slt = self._soil_type(noise("soil", 3.0), noise("organic", 2.0), lat2, land)
        cvh, cvl, tvh, tvl = self._vegetation(
            noise("veg_high", 2.0), noise("veg_low", 2.0), lat2, aridity, land
        )
        return Statics(
            lat=lat[:, None],
            lon=lon[None, :],
            lsm=lsm,
            elevation=np.asarray(h),
            precip_multiplier=mult,
            p_annual=p_annual,
            aridity=aridity,
            slt=slt,
            cvh=cvh,
            cvl=cvl,
            tvh=tvh,
            tvl=tvl,
        )

    @staticmethod
    def _soil_type(
        n_soil: FloatArray, n_org: FloatArray, lat: FloatArray, land: npt.NDArray[np.bool_]
    ) -> FloatArray:
        u = ndtr(n_soil)
        slt = 1.0 + np.searchsorted(np.array([0.18, 0.50, 0.72, 0.90]), u).astype(np.float64)
        slt = np.where((np.abs(lat) > 50.0) & (n_org > 1.2), 6.0, slt)
        slt = np.where((np.abs(lat) < 15.0) & (n_org > 1.4), 7.0, slt)
        return np.where(land, slt, 0.0)

    @staticmethod
    def _vegetation(
        n_high: FloatArray,
        n_low: FloatArray,
        lat: FloatArray,
        aridity: FloatArray,
        land: npt.NDArray[np.bool_],
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        alat = np.abs(lat)
        wet = 1.0 - aridity
        cold = np.clip((alat - 60.0) / 15.0, 0.0, 1.0)
        cvh = np.clip(0.85 * wet * (1.0 - cold) - 0.1 + 0.15 * n_high, 0.0, 0.95)
        cvl = np.clip((1.0 - cvh) * (0.55 + 0.35 * wet + 0.1 * n_low), 0.0, 1.0 - cvh)
        tvh = np.select(
            [alat < 20.0, alat > 50.0, n_high > 0.3, n_high > -0.5],
            [
                np.full_like(lat, 6.0),
                np.where(n_high > 0, 3.0, 4.0),
                np.full_like(lat, 5.0),
                np.full_like(lat, 18.0),
            ],
            19.0,
        )
        tvl = np.select(
            [alat > 62.0, aridity > 0.7, n_low > 0.4, n_low > -0.4],
            [
                np.full_like(lat, 9.0),
                np.where(n_low > 0, 11.0, 17.0),
                np.full_like(lat, 1.0),
                np.full_like(lat, 2.0),
            ],
            7.0,
        )
        tvh = np.where(land & (cvh > 0.0), tvh, 0.0)
        tvl = np.where(land & (cvl > 0.0), tvl, 0.0)
        return np.where(land, cvh, 0.0), np.where(land, cvl, 0.0), tvh, tvl

    def soil_properties(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike, *, mask: bool = True
    ) -> dict[str, FloatArray]:
        """Porosity, field capacity and wilting point (m3 m-3) at outer-product points.

        ``SOIL_TABLE[slt]`` times per-point factors ``1 + 0.04·N`` (porosity),
        ``1 + 0.06·N`` (field capacity), ``1 + 0.10·N`` (wilting point) from independent
        1° fields, then ordered: ``fc ≤ porosity − 0.04``, ``wp ≤ fc − 0.08``. NaN over sea
        (``lsm < 0.5``) unless ``mask`` is False, in which case sea points get the soil type
        their soil field would give on land.
        """
        st = self.statics(lat, lon)
        la, lo = st.lat[:, 0], st.lon[0, :]
        every = np.ones(st.lsm.shape, dtype=bool)
        raw = self._soil_type(
            self.field(Lattice("soil", 3.0), la, lo),
            self.field(Lattice("organic", 2.0), la, lo),
            st.lat + 0 * st.lsm,
            every,
        )
        codes = raw.astype(np.intp)
        table = np.array([(np.nan, np.nan, np.nan)] + [SOIL_TABLE[k] for k in range(1, 8)])
        sat = table[codes, 0] * (1.0 + 0.04 * self.field(Lattice("porosity", 1.0), la, lo))
        fc = table[codes, 1] * (1.0 + 0.06 * self.field(Lattice("field_capacity", 1.0), la, lo))
        wp = table[codes, 2] * (1.0 + 0.10 * self.field(Lattice("wilting_point", 1.0), la, lo))
        fc = np.minimum(fc, sat - 0.04)
        wp = np.minimum(wp, fc - 0.08)
        keep = st.land if mask else every
        return {
            "porosity": np.where(keep, sat, np.nan),
            "field_capacity": np.where(keep, fc, np.nan),
            "wilting_point": np.where(keep, wp, np.nan),
        }
