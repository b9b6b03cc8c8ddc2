"""A daily two-layer land surface model of soil columns: the physics of the twin's truth and of
its ERA5-Land-like and GLDAS-like products.

One column is a surface layer (depth ``Z1``, whose water content θ1 is what SMAP, the stations and
the products' top layer see) over a root-zone layer (depth ``Z2``, θ2), with a snowpack ``SWE``.
Each column has its own soil (porosity ``sat``, field capacity ``fc``, wilting point ``wp``, all
m3 m-3, the same in both layers), saturated hydraulic conductivity ``ksat`` (mm h-1), vegetation
fraction ``veg`` (0–1, scaled each day by the season's greenness) and an irrigation switch. :class:`Structure` holds what differs between
models (layer depths, rates, which processes exist). One step of one UTC day, with ``P`` rain
(mm), ``T`` mean 2 m temperature (°C), ``PET`` potential evaporation (mm) and ``H`` the hours the
day's rain fell in:

1. **Frozen day** (``T < 0 °C``): precipitation adds to the snowpack, θ1 and θ2 are held (the
   liquid water of frozen soil does not change).
2. **Snowmelt** ``M = min(SWE, melt_rate·T)``; liquid input ``L = P + M``.
3. **Infiltration-excess runoff** (only if ``structure.infiltration_excess``): within the day
   the rain rate is taken as exponentially distributed around its mean ``i = P/H + M/24``
   (mm h-1); the part above the infiltration capacity ``f = ksat·(1 + 2(1 − s1))`` runs off, a
   fraction ``exp(−f/i)`` of ``L`` (Hortonian runoff: the same daily total makes more runoff when
   it falls in one hour than in twelve). ``s1 = (θ1 − wp)/(sat − wp)`` clipped to [0, 1].
4. **Saturation-excess runoff** of the rest: a fraction ``runoff_coefficient·s1^runoff_exponent``.
5. **Irrigation** (irrigated columns, day of year 121–258, ``T > 12 °C`` and root-zone relative
   wetness ``(θ2 − wp)/(fc − wp) < irrigation_trigger``): ``irrigation_mm`` is added to the
   infiltration (sprinklers: no runoff).
6. **Infiltration** into layer 1; water above saturation passes to layer 2 at once.
7. **Drainage** of layer 1 into layer 2, ``drainage_rate·max(θ1 − fc, 0)``, and **capillary
   exchange** ``diffusion_mm·(s2 − s1)`` mm from layer 2 to layer 1 (negative: downward), limited
   to what the giving layer holds above its wilting point.
8. **Deep drainage** of layer 2 ``deep_drainage_rate·max(θ2 − fc, 0)``; water above saturation
   in layer 2 leaves the column.
9. **Evapotranspiration**: bare-soil evaporation from layer 1,
   ``et_coefficient·PET·(1 − veg)·β1``, and transpiration from layer 2,
   ``et_coefficient·PET·veg·β2``, with ``β = clip((θ − floor)/(fc − floor), 0, 1)``; layer 1 can
   dry to ``residual·wp``, layer 2 to ``wp``.

Everything is vectorised over columns (1-D arrays); the caller owns the forcing and the state.
Science of the twin only: numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ColumnState", "Columns", "DayForcing", "Structure", "irrigation_season", "step"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Structure:
    """What a land model is made of: layer depths, rates and which processes it has."""

    surface_mm: float = 50.0
    """Depth of the surface layer (mm of soil): 0–5 cm."""
    root_mm: float = 400.0
    """Depth of the root-zone layer (mm of soil) below it."""
    drainage_rate: float = 0.5
    """Fraction of the surface layer's water above field capacity drained down per day."""
    deep_drainage_rate: float = 0.05
    """Fraction of the root zone's water above field capacity lost to deep drainage per day."""
    diffusion_mm: float = 4.0
    """Capillary exchange between the layers (mm day-1 per unit difference of relative wetness)."""
    et_coefficient: float = 0.8
    """Fraction of the potential evaporation drawn by unstressed soil and vegetation."""
    residual: float = 0.5
    """The surface layer dries down to ``residual·wp``."""
    runoff_coefficient: float = 0.5
    """Saturation-excess runoff fraction at saturation."""
    runoff_exponent: float = 2.0
    """Shape of the saturation-excess runoff curve in relative wetness."""
    infiltration_excess: bool = True
    """Whether rain intensity within the day makes Hortonian runoff (step 3)."""
    melt_rate: float = 3.0
    """Degree-day snowmelt factor (mm °C-1 day-1)."""
    irrigation_mm: float = 25.0
    """Water applied on an irrigation day (mm)."""
    irrigation_trigger: float = 0.5
    """Root-zone relative wetness below which an irrigated column is watered."""


@dataclass(frozen=True)
class Columns:
    """Static properties of N columns, each a 1-D array of length N."""

    sat: FloatArray
    fc: FloatArray
    wp: FloatArray
    ksat: FloatArray
    """Saturated hydraulic conductivity (mm h-1)."""
    veg: FloatArray
    """Vegetation fraction (0–1)."""
    irrigated: BoolArray

    @property
    def size(self) -> int:
        return int(self.sat.size)

    def initial(self) -> ColumnState:
        """Both layers half-way between wilting point and field capacity, no snow."""
        theta = self.wp + 0.5 * (self.fc - self.wp)
        return ColumnState(theta.copy(), theta.copy(), np.zeros_like(theta))


@dataclass(frozen=True)
class ColumnState:
    """θ1, θ2 (m3 m-3) and SWE (mm) of each column."""

    surface: FloatArray
    root: FloatArray
    swe: FloatArray


@dataclass(frozen=True)
class DayForcing:
    """One day's forcing of each column (1-D arrays of length N, or scalars)."""

    precip: FloatArray
    """Rain and snowfall (mm day-1)."""
    t_mean: FloatArray
    """Mean 2 m temperature (°C)."""
    pet: FloatArray
    """Potential evaporation (mm day-1)."""
    storm_hours: FloatArray
    """Hours over which the day's rain fell (1–24)."""
    greenness: float | FloatArray = 1.0
    """Seasonal fraction (0–1) of the vegetation cover that transpires."""
    irrigation_day: bool | BoolArray = False
    """Whether the day lies in the irrigation season (:func:`irrigation_season`)."""


def irrigation_season(day_of_year: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Days of year 121–258 (May–mid-September, northern-hemisphere growing season)."""
    doy = np.asarray(day_of_year)
    return np.asarray((doy >= 121) & (doy <= 258))


def _relative(theta: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    return np.asarray(np.clip((theta - low) / (high - low), 0.0, 1.0))


def step(state: ColumnState, f: DayForcing, c: Columns, s: Structure) -> ColumnState:
    """One daily step of every column (module docstring); returns the new state."""
    z1, z2 = s.surface_mm, s.root_mm
    frozen = f.t_mean < 0.0
    warm = np.maximum(f.t_mean, 0.0)
    melt = np.where(frozen, 0.0, np.minimum(state.swe, s.melt_rate * warm))
    swe = np.where(frozen, state.swe + f.precip, state.swe - melt)
    liquid = np.where(frozen, 0.0, f.precip + melt)
    s1 = _relative(state.surface, c.wp, c.sat)
    infiltrating = liquid
    if s.infiltration_excess:
        rate = f.precip / np.maximum(f.storm_hours, 1.0) + melt / 24.0
        capacity = c.ksat * (1.0 + 2.0 * (1.0 - s1))
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            excess = np.where(rate > 0.0, np.exp(-capacity / np.maximum(rate, 1e-9)), 0.0)
        infiltrating = liquid * (1.0 - excess)
    infiltrating = infiltrating * (1.0 - s.runoff_coefficient * s1**s.runoff_exponent)
    wet2 = _relative(state.root, c.wp, c.fc)
    water = c.irrigated & np.asarray(f.irrigation_day) & (f.t_mean > 12.0)
    water &= wet2 < s.irrigation_trigger
    infiltrating = infiltrating + np.where(water, s.irrigation_mm, 0.0)

    th1 = state.surface + infiltrating / z1
    th2 = state.root + np.maximum(th1 - c.sat, 0.0) * z1 / z2
    th1 = np.minimum(th1, c.sat)
    down = s.drainage_rate * np.maximum(th1 - c.fc, 0.0) * z1
    exchange = s.diffusion_mm * (_relative(th2, c.wp, c.sat) - _relative(th1, c.wp, c.sat))
    exchange = np.clip(
        exchange, -np.maximum(th1 - c.wp, 0.0) * z1, np.maximum(th2 - c.wp, 0.0) * z2
    )
    th1 = th1 + (exchange - down) / z1
    th2 = th2 + (down - exchange) / z2
    th2 = th2 - s.deep_drainage_rate * np.maximum(th2 - c.fc, 0.0)
    th2 = np.minimum(th2, c.sat)
    th1 = np.minimum(th1, c.sat)

    floor1 = s.residual * c.wp
    veg = c.veg * f.greenness
    evap = s.et_coefficient * f.pet * (1.0 - veg) * _relative(th1, floor1, c.fc)
    transp = s.et_coefficient * f.pet * veg * _relative(th2, c.wp, c.fc)
    th1 = np.maximum(th1 - evap / z1, floor1)
    th2 = np.maximum(th2 - transp / z2, c.wp)
    return ColumnState(np.where(frozen, state.surface, th1), np.where(frozen, state.root, th2), swe)
