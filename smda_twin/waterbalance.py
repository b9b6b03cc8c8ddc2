"""The truth: surface (0–5 cm) soil moisture from a two-layer water balance of sub-cell tiles.

The truth of a 0.25° land cell is the mean surface-layer water content θ1 (m3 m-3) of its
``tiles`` equal-area tiles at the end of each UTC day, each tile a column of
:mod:`smda_twin.landmodel` with :data:`TRUTH_STRUCTURE` (a 0–5 cm layer over a 5–45 cm root zone,
infiltration-excess runoff from rain intensity, capillary exchange, snow, irrigation). It is
driven by the **true forcing**, which no replica serves and no staged file contains:

- ``P``: the true precipitation (:mod:`smda_twin.precipitation`) conservatively regridded from
  0.1° onto the cell, split between the tiles by daily factors ``exp(σ_r·z) / mean`` (σ_r =
  ``rain_tile_sd``; the tiles' mean is the cell's rain), and the hours it fell in
  (:meth:`~smda_twin.precipitation.Precipitation.storm_hours`);
- ``T``: the true daily mean 2 m temperature; ``Rs``: the true daily surface solar radiation
  (:meth:`smda_twin.weather.Weather.daily`); potential evaporation (Makkink)
  ``PET = max(0, 0.61·Δ/(Δ + γ)·Rs/2.45 − 0.12)`` mm with Δ the slope of the saturation vapour
  pressure curve at T (°C), Rs in MJ m-2, γ = 0.066 kPa °C-1.

What the model's features cannot see, by construction:

- **sub-cell heterogeneity**: each tile's porosity, field capacity and wilting point are the
  cell's (:meth:`smda_twin.geography.Geography.soil_properties`) times ``1 + soil_tile_sd·z``,
  its saturated conductivity the soil type's (:data:`KSAT_BY_SLT`) times ``exp(ksat_sd·z)``;
- **rain intensity** (storm hours) and the **root zone**;
- **irrigation** in the documented :data:`IRRIGATED_AREAS`: inside an area's box a cell's
  irrigated share is ``fraction·Φ(N)`` (N a static 1° field), and a tile is irrigated when a
  static uniform of its own is below that share; irrigated tiles are watered in the growing
  season (:mod:`smda_twin.landmodel`, step 5; days of year shifted by half a year south of the
  equator).

**Stations** (:mod:`smda_twin.stations`) are further columns, one per station, in the cell they
stand in: their own soil (``station_soil_sd``, own conductivity), their own point rain (the
cell's times ``exp(σ_s·z − σ_s²/2)`` daily, σ_s = ``station_rain_sd``), irrigated when their
cell is and a uniform of their own falls below its share. Their θ1 is what a perfect 5 cm
sensor would read: the stations' representativeness error is physical.

The integration starts ``spinup_days`` before the world's epoch with both layers half-way
between wilting point and field capacity and no snow, and is memoised in fixed blocks
(:class:`smda_twin.noise.BlockChain`), so any period after the epoch costs one pass. Sea cells
(ERA5-like land fraction below 0.5, the mean of the four ERA5 points around the cell) are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from smda.geo.grid import BBox, Grid
from smda.geo.regrid import conservative, conservative_weights
from smda_twin.geography import Geography
from smda_twin.landmodel import (
    Columns,
    ColumnState,
    DayForcing,
    Structure,
    irrigation_season,
    step,
)
from smda_twin.noise import BlockChain, Lattice, hash_normals, hash_uniforms, key
from smda_twin.precipitation import Precipitation, covering_window
from smda_twin.weather import Weather, day_of_year

__all__ = [
    "HIGH_PLAINS",
    "IRRIGATED_AREAS",
    "KSAT_BY_SLT",
    "TRUTH_STRUCTURE",
    "IrrigatedArea",
    "TruthModel",
    "TruthParams",
    "cell_land_mask",
    "greenness",
    "makkink_pet",
    "region_window",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class IrrigatedArea:
    """A documented irrigated area: cells in ``bbox`` are irrigated up to ``fraction``."""

    name: str
    bbox: BBox
    fraction: float


HIGH_PLAINS = IrrigatedArea("High Plains (Ogallala aquifer)", BBox(-103.0, 34.0, -98.0, 40.0), 0.6)
"""Centre-pivot irrigation over the Ogallala aquifer, in the demo region's north-east."""
IRRIGATED_AREAS = (HIGH_PLAINS,)
"""Where the truth is irrigated (no product's model irrigates)."""

KSAT_BY_SLT: dict[int, float] = {1: 30.0, 2: 13.0, 3: 7.0, 4: 3.0, 5: 1.5, 6: 10.0, 7: 8.0}
"""Median saturated hydraulic conductivity (mm h-1) per ERA5 soil type (coarse … organic),
loosely after Clapp & Hornberger (1978)."""

TRUTH_STRUCTURE = Structure(
    surface_mm=50.0,
    root_mm=400.0,
    drainage_rate=0.5,
    deep_drainage_rate=0.05,
    diffusion_mm=2.0,
    et_coefficient=1.0,
    residual=0.5,
    runoff_coefficient=0.3,
    runoff_exponent=3.0,
    infiltration_excess=True,
)
"""The truth's land model: 0–5 cm over 5–45 cm, Hortonian runoff, irrigation."""


@dataclass(frozen=True)
class TruthParams:
    """How the truth is made (module docstring)."""

    structure: Structure = TRUTH_STRUCTURE
    tiles: int = 4
    soil_tile_sd: float = 0.08
    ksat_sd: float = 0.8
    rain_tile_sd: float = 0.35
    station_soil_sd: float = 0.2
    station_rain_sd: float = 0.8
    irrigated: tuple[IrrigatedArea, ...] = field(default=IRRIGATED_AREAS)


def makkink_pet(t_mean_c: npt.ArrayLike, rs_mj: npt.ArrayLike) -> FloatArray:
    """Makkink potential evaporation (mm day-1) from mean temperature (°C) and daily
    surface solar radiation (MJ m-2)."""
    t = np.asarray(t_mean_c, dtype=np.float64)
    es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
    delta = 4098.0 * es / (t + 237.3) ** 2
    return np.asarray(
        np.maximum(0.0, 0.61 * delta / (delta + 0.066) * np.asarray(rs_mj) / 2.45 - 0.12)
    )


def greenness(days: npt.ArrayLike, lat: npt.ArrayLike) -> FloatArray:
    """Seasonal share of the vegetation cover that is green (0.4–1), (days, lat, 1):
    ``0.4 + 0.6·(0.5 + 0.5·cos(2π(doy − 200)/365.25)·sign(lat))``."""
    doy = day_of_year(np.asarray(days))[:, None, None]
    season = np.cos(2.0 * np.pi * (doy - 200.0) / 365.25) * np.sign(np.asarray(lat))[None, :, None]
    return np.asarray(0.4 + 0.6 * (0.5 + 0.5 * season))


def cell_land_mask(grid: Grid, geography: Geography) -> npt.NDArray[np.bool_]:
    """Land cells of ``grid``: the mean ERA5-like land fraction of the four corner points ≥ 0.5."""
    lat_edges = 90.0 - (grid.row0 + np.arange(grid.nrows + 1)) * grid.res
    lon_edges = -180.0 + (grid.col0 + np.arange(grid.ncols + 1)) * grid.res
    lsm = geography.land_fraction(lat_edges, (lon_edges + 180.0) % 360.0 - 180.0)
    cell = 0.25 * (lsm[:-1, :-1] + lsm[1:, :-1] + lsm[:-1, 1:] + lsm[1:, 1:])
    return np.asarray(cell >= 0.5)


def region_window(grid: Grid) -> Grid:
    """The window of the 0.1° grid that the region's forcing and products are made on: the
    cells of ``grid`` plus 1.3° around them (room for the coarse products' smoothing)."""
    return covering_window(grid.lats, grid.lons, margin=1.3)


class TruthModel:
    """The memoised true water balance of a region's land cells and stations."""

    def __init__(
        self,
        grid: Grid,
        geography: Geography,
        weather: Weather,
        precipitation: Precipitation,
        *,
        epoch: int,
        spinup_days: int,
        params: TruthParams,
        sites: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.grid = grid
        self.geography = geography
        self.weather = weather
        self.precipitation = precipitation
        self.epoch = epoch
        self.params = params
        self.seed = geography.seed
        self.land = cell_land_mask(grid, geography)
        soil = geography.soil_properties(grid.lats, grid.lons, mask=False)
        self.soil = {k: np.where(self.land, v, np.nan) for k, v in soil.items()}
        self.cells = np.flatnonzero(self.land.reshape(-1))
        rows, cols, _ = grid.locate(
            np.array([s[0] for s in sites], dtype=np.float64),
            np.array([s[1] for s in sites], dtype=np.float64),
        )
        self.site_cells = np.asarray(rows * grid.ncols + cols, dtype=np.intp)
        self.irrigated_share = self._irrigated_share()
        self.columns = self._columns()
        self.window = region_window(grid)
        self._weights = conservative_weights(self.window, grid)
        n_cols = self.columns.size
        block = int(np.clip(40_000_000 // (8 * 8 * max(n_cols, 1)), 1, 366))
        self.chain: BlockChain[ColumnState] = BlockChain(
            epoch - spinup_days, block, self.columns.initial, self._step, keep_from=epoch
        )

    # -- columns --------------------------------------------------------------------------------
    @property
    def n_tiles(self) -> int:
        return self.params.tiles

    def _cell_fields(self) -> dict[str, FloatArray]:
        """Per land cell (n_land,): soil, vegetation cover, soil type, latitude."""
        g = self.grid
        st = self.geography.statics(g.lats, g.lons)
        flat = {
            "sat": self.soil["porosity"],
            "fc": self.soil["field_capacity"],
            "wp": self.soil["wilting_point"],
            "veg": np.clip(st.cvh + st.cvl, 0.0, 1.0),
            "slt": st.slt,
            "lat": st.lat + 0.0 * st.lsm,
        }
        return {k: np.asarray(v, dtype=np.float64).reshape(-1)[self.cells] for k, v in flat.items()}

    def _irrigated_share(self) -> FloatArray:
        """Irrigated share of each cell (lat, lon), 0 outside :attr:`TruthParams.irrigated`."""
        g = self.grid
        share = np.zeros(g.shape)
        lat2, lon2 = np.meshgrid(g.lats, g.lons, indexing="ij")
        noise = Lattice("irrigation", 1.0).sample(self.seed, None, g.lats, g.lons)
        for area in self.params.irrigated:
            b = area.bbox
            inside = (lat2 >= b.south) & (lat2 <= b.north)
            lon_rel = (lon2 - b.west) % 360.0
            inside &= lon_rel <= (b.east - b.west) % 360.0
            share = np.maximum(share, np.where(inside, area.fraction * ndtr(noise), 0.0))
        return np.where(self.land, share, 0.0)

    def _columns(self) -> Columns:
        """Tiles (tile-major: column ``k·n_land + i`` is tile k of land cell i), then stations."""
        p = self.params
        cell = self._cell_fields()
        n_land, n_tiles = self.cells.size, p.tiles
        k = key(self.seed, "truth_columns")
        tile_idx = np.arange(n_tiles)[:, None]
        cell_idx = self.cells[None, :]

        def z(what: int) -> FloatArray:
            return hash_normals(k, what, tile_idx, cell_idx).reshape(-1)

        site_idx = np.arange(self.site_cells.size)
        site_land = np.searchsorted(self.cells, self.site_cells)

        def zs(what: int) -> FloatArray:
            return hash_normals(k, what, -1, site_idx)

        base = {name: np.tile(cell[name], n_tiles) for name in cell}
        site = {name: cell[name][site_land] for name in cell}
        sd_t, sd_s = p.soil_tile_sd, p.station_soil_sd
        sat = np.concatenate([base["sat"] * (1 + sd_t * z(0)), site["sat"] * (1 + sd_s * zs(0))])
        fc = np.concatenate([base["fc"] * (1 + sd_t * z(1)), site["fc"] * (1 + sd_s * zs(1))])
        wp = np.concatenate([base["wp"] * (1 + sd_t * z(2)), site["wp"] * (1 + sd_s * zs(2))])
        fc = np.minimum(fc, sat - 0.04)
        wp = np.clip(np.minimum(wp, fc - 0.08), 0.01, None)
        slt = np.concatenate([base["slt"], site["slt"]]).astype(np.intp)
        ksat_med = np.array([KSAT_BY_SLT.get(int(s), 8.0) for s in slt])
        ksat = ksat_med * np.exp(p.ksat_sd * np.concatenate([z(3), zs(3)]))
        share = self.irrigated_share.reshape(-1)
        u = np.concatenate(
            [
                hash_uniforms(k, 4, tile_idx, cell_idx).reshape(-1),
                hash_uniforms(k, 4, -1, site_idx),
            ]
        )
        cell_share = np.concatenate([np.tile(share[self.cells], n_tiles), share[self.site_cells]])
        veg = np.concatenate([base["veg"], site["veg"]])
        self._column_lat = np.concatenate([base["lat"], site["lat"]])
        self._column_cell = np.concatenate([np.tile(np.arange(n_land), n_tiles), site_land])
        return Columns(sat, fc, wp, ksat, veg, np.asarray(u < cell_share))

    # -- forcing --------------------------------------------------------------------------------
    def forcing(self, first: int, n_days: int) -> dict[str, FloatArray]:
        """Daily true forcing on the grid, each (n_days, lat, lon) float64: ``precip`` (mm),
        ``t_mean`` (°C), ``pet`` (mm), ``ssrd`` (J m-2), ``storm_hours`` (h)."""
        g = self.grid
        p01 = self.precipitation.true_daily(first, n_days, self.window)
        precip = conservative(p01, self.window, g, weights=self._weights).astype(np.float64)
        met = self.weather.daily(first, n_days, g.lats, g.lons)
        t_mean = met["t2m_mean"].astype(np.float64) - 273.15
        ssrd = met["ssrd"].astype(np.float64)
        return {
            "precip": precip,
            "t_mean": t_mean,
            "pet": makkink_pet(t_mean, ssrd / 1e6),
            "ssrd": ssrd,
            "storm_hours": self.precipitation.storm_hours(first, n_days, g.lats, g.lons).astype(
                np.float64
            ),
        }

    def _column_forcing(self, first: int, n_days: int) -> dict[str, npt.NDArray[np.generic]]:
        """The forcing of every column, each (n_days, n_columns)."""
        p = self.params
        f = self.forcing(first, n_days)
        per_cell = {k: v.reshape(n_days, -1)[:, self.cells] for k, v in f.items()}
        cols: dict[str, npt.NDArray[np.generic]] = {
            k: v[:, self._column_cell] for k, v in per_cell.items()
        }
        days = np.arange(first, first + n_days, dtype=np.int64)
        k = key(self.seed, "truth_rain")
        n_land, n_tiles = self.cells.size, p.tiles
        z = hash_normals(
            k, days[:, None, None], np.arange(n_tiles)[None, :, None], self.cells[None, None, :]
        )
        factor = np.exp(p.rain_tile_sd * z)
        factor /= factor.mean(axis=1, keepdims=True)
        n_sites = self.site_cells.size
        zs = hash_normals(k, days[:, None], -1, np.arange(n_sites)[None, :])
        site_factor = np.exp(p.station_rain_sd * zs - 0.5 * p.station_rain_sd**2)
        cols["precip"] = cols["precip"] * np.concatenate(
            [factor.reshape(n_days, n_tiles * n_land), site_factor], axis=1
        )
        lat = self._column_lat
        cols["greenness"] = greenness(days, lat)[:, :, 0]
        doy = day_of_year(days)[:, None]
        shifted = np.where(lat[None, :] < 0.0, (doy + 182.0 - 1.0) % 365.0 + 1.0, doy)
        cols["irrigation_day"] = irrigation_season(shifted)
        return cols

    # -- integration ----------------------------------------------------------------------------
    def _step(self, first: int, n_days: int, state: ColumnState) -> tuple[F32, ColumnState]:
        n_land, n_tiles = self.cells.size, self.params.tiles
        f = self._column_forcing(first, n_days)
        out = np.empty((n_days, 3 * n_land + self.site_cells.size), dtype=np.float32)
        tiles = n_land * n_tiles
        for i in range(n_days):
            day = DayForcing(
                precip=f["precip"][i],
                t_mean=f["t_mean"][i],
                pet=f["pet"][i],
                storm_hours=f["storm_hours"][i],
                greenness=f["greenness"][i],
                irrigation_day=f["irrigation_day"][i],
            )
            state = step(state, day, self.columns, self.params.structure)
            out[i, :n_land] = state.surface[:tiles].reshape(n_tiles, n_land).mean(axis=0)
            out[i, n_land : 2 * n_land] = state.swe[:tiles].reshape(n_tiles, n_land).mean(axis=0)
            out[i, 2 * n_land : 3 * n_land] = (
                state.root[:tiles].reshape(n_tiles, n_land).mean(axis=0)
            )
            out[i, 3 * n_land :] = state.surface[tiles:]
        return out, state

    def _raw(self, first: int, last: int) -> F32:
        if first < self.epoch:
            raise ValueError(
                f"the truth starts at the world's epoch (day {self.epoch}); asked from day {first}"
            )
        return np.asarray(self.chain.get(first, last), dtype=np.float32)

    def series(self, first: int, last: int) -> F32:
        """θ1 (m3 m-3), SWE (mm) and θ2 (m3 m-3) of days ``first … last`` on the grid:
        float32 (n_days, 3, lat, lon), NaN over sea."""
        raw = self._raw(first, last)
        n_land = self.cells.size
        g = self.grid
        out = np.full((raw.shape[0], 3, g.nrows * g.ncols), np.nan, dtype=np.float32)
        for j in range(3):
            out[:, j, self.cells] = raw[:, j * n_land : (j + 1) * n_land]
        return out.reshape(raw.shape[0], 3, g.nrows, g.ncols)

    def station_column(self, index: int) -> int:
        """Index in :attr:`columns` of station ``index``'s column."""
        return self.params.tiles * self.cells.size + index

    def stations(self, first: int, last: int) -> F32:
        """θ1 (m3 m-3) of the station columns, float32 (n_days, n_stations)."""
        return self._raw(first, last)[:, 3 * self.cells.size :]
