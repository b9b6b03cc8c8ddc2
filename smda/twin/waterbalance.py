"""The truth: surface (0–5 cm) soil moisture from a daily bucket water balance.

Each land cell of the world's 0.25° grid carries a bucket of depth ``Z`` (50 mm of soil)
holding volumetric water θ (m3 m-3) between its wilting point ``wp`` and porosity ``sat``
(:meth:`smda.twin.geography.Geography.soil_properties`), and a snowpack ``SWE`` (mm). One
step per UTC day, with forcing from the world itself:

- ``P`` (mm): MSWEP final daily precipitation conservatively regridded from 0.1° onto the
  cell (:func:`smda.regrid.conservative`);
- ``T`` (°C): the mean of the 24 hourly 2 m temperatures; ``Rs`` (MJ m-2): the daily sum of
  the hourly surface solar radiation (:meth:`smda.twin.weather.Weather.daily`);
- potential evaporation (Makkink) ``PET = max(0, 0.61·Δ/(Δ + γ)·Rs/2.45 − 0.12)`` mm with
  ``Δ`` the slope of the saturation vapour pressure curve at T and γ = 0.066 kPa °C-1.

Step (s = (θ − wp)/(sat − wp), ``fc`` field capacity):

1. **Frozen day** (``T < 0 °C``): precipitation is added to the snowpack and θ is held
   constant — the liquid water of a frozen layer does not change (no infiltration,
   evaporation or drainage). This is the documented choice for winter.
2. Otherwise the snowpack melts at ``melt_rate·T`` mm (at most SWE); rain plus melt
   infiltrates except a runoff fraction ``runoff_coefficient·s²``:
   ``θ ← θ + (1 − k·s²)(P + melt)/Z``;
3. drainage: ``θ ← θ − drainage_rate·max(θ − fc, 0)``, then ``θ ← min(θ, sat)`` (saturation
   excess runs off);
4. evaporation: ``θ ← θ − et_coefficient·PET·clip((θ − wp)/(fc − wp), 0, 1)/Z``, then
   ``θ ← max(θ, wp)``.

The truth of a day is θ at the end of that UTC day, representative of the whole day; products
hold it constant through the day. The integration starts ``spinup_days`` before the world's
epoch from ``θ = wp + 0.5(fc − wp)``, ``SWE = 0``, and is memoised in fixed blocks
(:class:`smda.twin.noise.BlockChain`), so any period after the epoch costs one pass.
Sea cells (ERA5-like land fraction below 0.5, the mean of the four ERA5 points around the cell)
are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smda.grid import Grid
from smda.regrid import conservative, conservative_weights
from smda.twin.geography import Geography
from smda.twin.noise import BlockChain
from smda.twin.precipitation import Precipitation
from smda.twin.weather import Weather

__all__ = ["BucketParams", "TruthModel", "bucket_step", "covering_01", "makkink_pet"]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
State = tuple[FloatArray, FloatArray]


@dataclass(frozen=True)
class BucketParams:
    """Parameters of the surface bucket (see the module docstring)."""

    depth_mm: float = 50.0
    """Water-holding depth of the 0–5 cm layer (mm of soil)."""
    drainage_rate: float = 0.5
    """Fraction of the water above field capacity drained per day."""
    et_coefficient: float = 0.5
    """Fraction of PET drawn from the layer when unstressed."""
    runoff_coefficient: float = 0.6
    """Runoff fraction of rain at saturation (scales with relative saturation squared)."""
    melt_rate: float = 3.0
    """Degree-day snowmelt factor (mm °C-1 day-1)."""


def makkink_pet(t_mean_c: npt.ArrayLike, rs_mj: npt.ArrayLike) -> FloatArray:
    """Makkink potential evaporation (mm day-1) from mean temperature (°C) and daily
    surface solar radiation (MJ m-2)."""
    t = np.asarray(t_mean_c, dtype=np.float64)
    es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
    delta = 4098.0 * es / (t + 237.3) ** 2
    return np.asarray(
        np.maximum(0.0, 0.61 * delta / (delta + 0.066) * np.asarray(rs_mj) / 2.45 - 0.12)
    )


def bucket_step(
    state: State,
    precip: FloatArray,
    t_mean_c: FloatArray,
    pet: FloatArray,
    soil: dict[str, FloatArray],
    params: BucketParams,
) -> State:
    """One daily step of the bucket: returns the new (θ m3 m-3, SWE mm)."""
    theta, swe = state
    sat, fc, wp = soil["porosity"], soil["field_capacity"], soil["wilting_point"]
    z = params.depth_mm
    frozen = t_mean_c < 0.0
    melt = np.where(frozen, 0.0, np.minimum(swe, params.melt_rate * np.maximum(t_mean_c, 0.0)))
    new_swe = np.where(frozen, swe + precip, swe - melt)
    liquid = np.where(frozen, 0.0, precip + melt)
    s = np.clip((theta - wp) / (sat - wp), 0.0, 1.0)
    th = theta + (1.0 - params.runoff_coefficient * s * s) * liquid / z
    th = th - params.drainage_rate * np.maximum(th - fc, 0.0)
    th = np.minimum(th, sat)
    stress = np.clip((th - wp) / (fc - wp), 0.0, 1.0)
    th = np.maximum(th - params.et_coefficient * pet * stress / z, wp)
    return np.where(frozen, theta, th), new_swe


def covering_01(grid: Grid) -> Grid:
    """The window of the global 0.1° grid that covers the cells of ``grid``."""
    n_lat, n_lon = 1800, 3600
    north = 90.0 - grid.row0 * grid.res
    south = north - grid.nrows * grid.res
    r0 = int(np.floor((90.0 - north) / 0.1 + 1e-9))
    r1 = int(np.ceil((90.0 - south) / 0.1 - 1e-9))
    if grid.is_global or grid.ncols * grid.res >= 360.0 - 1e-9:
        return Grid(0.1, r0, 0, r1 - r0, n_lon)
    west = -180.0 + grid.col0 * grid.res
    c0 = int(np.floor((west + 180.0) / 0.1 + 1e-9))
    c1 = int(np.ceil((west + grid.ncols * grid.res + 180.0) / 0.1 - 1e-9))
    return Grid(0.1, min(r0, n_lat - 1), c0 % n_lon, r1 - r0, c1 - c0)


class TruthModel:
    """The memoised water balance over one grid (see the module docstring)."""

    def __init__(
        self,
        grid: Grid,
        geography: Geography,
        weather: Weather,
        precipitation: Precipitation,
        *,
        epoch: int,
        spinup_days: int,
        params: BucketParams,
    ) -> None:
        self.grid = grid
        self.geography = geography
        self.weather = weather
        self.precipitation = precipitation
        self.epoch = epoch
        self.params = params
        self.land = self._land_mask()
        soil = geography.soil_properties(grid.lats, grid.lons, mask=False)
        self.soil = {k: np.where(self.land, v, np.nan) for k, v in soil.items()}
        self.window = covering_01(grid)
        self._weights = conservative_weights(self.window, grid)
        cells = grid.nrows * grid.ncols
        block = int(np.clip(60_000_000 // (8 * cells), 1, 366))
        self.chain: BlockChain[State] = BlockChain(
            epoch - spinup_days, block, self._init, self._step, keep_from=epoch
        )

    def _land_mask(self) -> npt.NDArray[np.bool_]:
        g = self.grid
        lat_edges = 90.0 - (g.row0 + np.arange(g.nrows + 1)) * g.res
        lon_edges = -180.0 + (g.col0 + np.arange(g.ncols + 1)) * g.res
        lsm = self.geography.land_fraction(lat_edges, (lon_edges + 180.0) % 360.0 - 180.0)
        cell = 0.25 * (lsm[:-1, :-1] + lsm[1:, :-1] + lsm[:-1, 1:] + lsm[1:, 1:])
        return np.asarray(cell >= 0.5)

    def _init(self) -> State:
        sat, fc, wp = (self.soil[k] for k in ("porosity", "field_capacity", "wilting_point"))
        del sat
        return wp + 0.5 * (fc - wp), np.zeros_like(wp)

    def forcing(self, first: int, n_days: int) -> dict[str, FloatArray]:
        """Daily forcing on the grid: ``precip`` (mm), ``t_mean`` (°C), ``pet`` (mm), each
        (n_days, lat, lon) float64."""
        g = self.grid
        p01 = self.precipitation.mswep(first, n_days, self.window)
        precip = conservative(p01, self.window, g, weights=self._weights).astype(np.float64)
        met = self.weather.daily(first, n_days, g.lats, g.lons)
        t_mean = met["t2m_mean"].astype(np.float64) - 273.15
        pet = makkink_pet(t_mean, met["ssrd"].astype(np.float64) / 1e6)
        return {"precip": precip, "t_mean": t_mean, "pet": pet}

    def _step(self, first: int, n_days: int, state: State) -> tuple[F32, State]:
        g = self.grid
        out = np.empty((n_days, 2, g.nrows, g.ncols), dtype=np.float32)
        window_cells = self.window.nrows * self.window.ncols
        chunk = int(np.clip(30_000_000 // window_cells, 1, n_days))
        for c0 in range(0, n_days, chunk):
            nd = min(chunk, n_days - c0)
            f = self.forcing(first + c0, nd)
            for i in range(nd):
                state = bucket_step(
                    state, f["precip"][i], f["t_mean"][i], f["pet"][i], self.soil, self.params
                )
                out[c0 + i, 0] = np.where(self.land, state[0], np.nan)
                out[c0 + i, 1] = np.where(self.land, state[1], np.nan)
        return out, state

    def series(self, first: int, last: int) -> F32:
        """θ (m3 m-3) and SWE (mm) of days ``first … last``: float32 (n_days, 2, lat, lon)."""
        if first < self.epoch:
            raise ValueError(
                f"the truth starts at the world's epoch (day {self.epoch}); asked from day {first}"
            )
        return np.asarray(self.chain.get(first, last), dtype=np.float32)
