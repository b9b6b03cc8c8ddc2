"""Products of the world with realistic errors, and their skill against the truth.

Soil moisture products
----------------------
**ERA5-Land-like and GLDAS-like** (:class:`LandProduct`): each is a *separate system* — its own
run of :mod:`smda_twin.landmodel` with its own structure (:class:`LandProductSpec`: layer depths,
rates; no sub-cell tiles, no irrigation, no infiltration-excess runoff), its own soil map (the
ERA5 soil type's table values, not the truth's per-cell and per-tile soils), driven by its own
erroneous forcing:

- ERA5-Land (:data:`ERA5LAND`): ERA5's meteorology (:data:`smda_twin.reanalysis.ERA5_MET_ERRORS`,
  the very errors smda's features carry) and ERA5's ``tp``
  (:data:`smda_twin.rainfall.ERA5_TP_ERRORS`);
- GLDAS (:data:`GLDAS`): a GDAS-like meteorology whose biases are half shared with ERA5's
  (:data:`~smda_twin.reanalysis.GLDAS_MET_ERRORS`) and a 1° satellite–gauge precipitation half
  of whose error is MSWEP's (:data:`~smda_twin.rainfall.GLDAS_RAIN_ERRORS`).

Their errors are therefore partly correlated with each other and with smda's inputs, as the real
products' are, and are largest where the truth has what they lack (irrigation, intense storms,
heterogeneous soils). The served value is the product's top layer (0–7 cm, 0–10 cm), plus a
small diurnal term in its hourly values. Outside the world's region (where there is no truth)
land points get a climatological placeholder ``wp + (fc − wp)(0.35 + 0.15 cos(2π(doy − 100)/365.25))``
of the product's soil.

Retrievals and stations
-----------------------
SMAP (:class:`SmapErrors`, :mod:`smda_twin.smap`) and the stations' sensors
(:data:`ISMN_ERRORS`, :mod:`smda_twin.stations`) follow the generic error model
(:class:`ProductErrors`)::

    value(x, t) = offset + scale·θ(x, day(t)) + static_sd·B(x) + noise_sd·E(x, t)
                  + diurnal_amplitude·H(t, x)

- ``θ`` is the truth of the 0.25° cell containing x (SMAP) or the station's own column
  (stations), held constant through the UTC day;
- ``B`` is a time-invariant unit-variance field: smooth on a lattice of ``static_spacing``
  degrees, or independent per pixel/station when ``static_spacing`` is 0;
- ``E`` is a unit-variance error, AR(1) in time with lag-1 correlation ``noise_phi`` per step
  of ``noise_step_hours`` (``E_k = φ E_{k−1} + √(1−φ²) z_k``), spatially a lattice field of
  ``noise_spacing`` degrees, of which a fraction ``noise_white_fraction`` of the variance is
  instead independent per pixel;
- ``H = −cos(2π(LST − 15)/24)`` over the 24 hours of the UTC day (driest at 15 local solar
  time), which sums to exactly zero over the hours of a UTC day, so daily means are unaffected.

SMAP's noise further grows with vegetation water content (:class:`SmapErrors`).

:func:`true_skill` measures a product against the truth directly (correlation, TC-style error
SD, bias, scale), for tests and for scoring an OSSE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.geo.grid import Grid
from smda_twin.geography import SOIL_TABLE, Geography
from smda_twin.landmodel import Columns, ColumnState, DayForcing, Structure, step
from smda_twin.noise import BlockChain
from smda_twin.rainfall import RainProduct
from smda_twin.reanalysis import Reanalysis
from smda_twin.waterbalance import cell_land_mask, greenness, makkink_pet, region_window
from smda_twin.weather import Weather, day_of_year

__all__ = [
    "ERA5LAND",
    "GLDAS",
    "ISMN_ERRORS",
    "SMAP_ERRORS",
    "LandProduct",
    "LandProductSpec",
    "ProductErrors",
    "SmapErrors",
    "diurnal_term",
    "true_skill",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProductErrors:
    """Error parameters of a product (the formula is in the module docstring).

    Units: ``offset``, ``static_sd``, ``noise_sd``, ``diurnal_amplitude`` in m3 m-3;
    ``scale`` dimensionless; spacings in degrees; ``layer_depth_m`` is the layer the product
    represents (metadata; the error model says how it relates to the 0–5 cm truth).
    """

    offset: float = 0.0
    scale: float = 1.0
    static_sd: float = 0.0
    static_spacing: float = 0.0
    noise_sd: float = 0.0
    noise_phi: float = 0.0
    noise_step_hours: int = 24
    noise_spacing: float = 0.0
    noise_white_fraction: float = 0.0
    diurnal_amplitude: float = 0.0
    layer_depth_m: float = 0.05


@dataclass(frozen=True)
class SmapErrors(ProductErrors):
    """SMAP L3 retrieval errors: the generic model per EASE-Grid pixel and pass, plus
    vegetation, quality and coverage.

    ``noise_sd`` is the AM error SD over bare soil; it grows with the vegetation water content
    VWC (kg m-2) as ``noise_sd·(1 + veg_noise_per_kg·VWC)`` (the retrieval degrades under
    dense vegetation, VWC > 5 kg m-2), and the retrieval has a seasonal bias
    ``veg_bias_per_kg·(VWC − VWC_mean)`` (the vegetation correction is imperfect). PM
    retrievals have ``pm_noise_factor`` times more noise. A fraction
    ``not_recommended_fraction`` of retrievals (and all frozen, snow-covered or water-affected
    ones) have bit 0 of ``retrieval_qual_flag`` set; their noise SD is
    ``not_recommended_noise_factor`` times larger. ``missing_fraction`` of the pixels in a swath
    have no retrieval, and a fraction ``rfi_fraction`` of pixels sits under persistent radio
    frequency interference that removes ``rfi_missing`` of their retrievals. Retrievals are
    clipped to [valid_min, valid_max].
    """

    veg_noise_per_kg: float = 0.12
    veg_bias_per_kg: float = -0.003
    pm_noise_factor: float = 1.1
    not_recommended_fraction: float = 0.1
    not_recommended_noise_factor: float = 2.0
    missing_fraction: float = 0.03
    rfi_fraction: float = 0.03
    rfi_missing: float = 0.6
    valid_min: float = 0.02
    valid_max: float = 0.6


SMAP_ERRORS = SmapErrors(
    static_sd=0.02,
    noise_sd=0.035,
    noise_spacing=0.3,
    noise_white_fraction=0.4,
)
"""SMAP L3 (9 km): unbiased on average, per-pixel bias SD 0.02, noise SD 0.03 (AM, bare soil;
0.048 at VWC 5 kg m-2) with 60 % of its variance on a 0.3° (~36 km radiometer footprint) field,
white in time; ubRMSE ≈ 0.04 m3 m-3 at typical sites (the mission requirement)."""

ISMN_ERRORS = ProductErrors(
    static_sd=0.02,
    noise_sd=0.02,
    noise_phi=0.99,
    noise_step_hours=1,
    diurnal_amplitude=0.005,
)
"""The stations' sensors (0.05 m): a calibration bias (SD 0.02 per station), hourly AR(1) noise
(SD 0.01, φ 0.99 per hour) and a small diurnal cycle, on top of the station's own column (its
representativeness error is physical: :mod:`smda_twin.waterbalance`)."""


@dataclass(frozen=True)
class LandProductSpec:
    """How a model-based soil moisture product is made (module docstring)."""

    structure: Structure
    rain: str
    """The precipitation product driving it (a name of :attr:`smda_twin.world.World.rain`)."""
    met: str
    """The meteorology driving it (a name of :attr:`smda_twin.world.World.met`)."""
    soil_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Multipliers of the soil table's (porosity, field capacity, wilting point)."""
    layer_depth_m: float = 0.05
    diurnal_amplitude: float = 0.0


ERA5LAND = LandProductSpec(
    structure=Structure(
        surface_mm=70.0,
        root_mm=210.0,
        drainage_rate=0.3,
        deep_drainage_rate=0.1,
        diffusion_mm=8.0,
        et_coefficient=0.7,
        residual=0.7,
        runoff_coefficient=0.5,
        runoff_exponent=2.0,
        infiltration_excess=False,
    ),
    rain="era5_tp",
    met="era5",
    layer_depth_m=0.07,
    diurnal_amplitude=0.003,
)
"""ERA5-Land swvl1 (0–7 cm over 7–28 cm), forced by ERA5's own meteorology and ``tp``."""

GLDAS = LandProductSpec(
    structure=Structure(
        surface_mm=100.0,
        root_mm=300.0,
        drainage_rate=0.25,
        deep_drainage_rate=0.08,
        diffusion_mm=6.0,
        et_coefficient=0.9,
        residual=0.6,
        runoff_coefficient=0.4,
        runoff_exponent=1.5,
        infiltration_excess=False,
    ),
    rain="gldas_rain",
    met="gldas_met",
    soil_scale=(0.95, 1.05, 1.1),
    layer_depth_m=0.10,
    diurnal_amplitude=0.002,
)
"""GLDAS Noah 0–10 cm over 10–40 cm, forced by a GDAS-like meteorology and a 1° satellite–gauge
precipitation."""


def diurnal_term(hours_utc: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """``H = −cos(2π(LST − 15)/24)`` (broadcasts): zero mean over the 24 UTC hours."""
    lst = np.asarray(hours_utc, dtype=np.float64) + np.asarray(lon, dtype=np.float64) / 15.0
    return np.asarray(-np.cos(2.0 * np.pi * (lst - 15.0) / 24.0))


class LandProduct:
    """A model-based product over the world's region: its own land model run (module docstring).

    The run covers the land cells of ``grid`` from ``spinup_days`` before ``epoch``, in the
    same blocks as the truth (the true rain of a block is made once for all of them).
    """

    def __init__(
        self,
        name: str,
        spec: LandProductSpec,
        *,
        grid: Grid,
        geography: Geography,
        weather: Weather,
        rain: RainProduct,
        met: Reanalysis,
        epoch: int,
        spinup_days: int,
        block: int,
    ) -> None:
        self.name = name
        self.spec = spec
        self.grid = grid
        self.geography = geography
        self.weather = weather
        self.rain = rain
        self.met = met
        self.epoch = epoch
        self.land = cell_land_mask(grid, geography)
        self.cells = np.flatnonzero(self.land.reshape(-1))
        self.window = region_window(grid)
        self.soil = self._soil(grid.lats, grid.lons)
        st = geography.statics(grid.lats, grid.lons)
        veg = np.clip(st.cvh + st.cvl, 0.0, 1.0).reshape(-1)[self.cells]
        self._lat = (st.lat + 0.0 * st.lsm).reshape(-1)[self.cells]
        flat = {k: v.reshape(-1)[self.cells] for k, v in self.soil.items()}
        self.columns = Columns(
            flat["porosity"],
            flat["field_capacity"],
            flat["wilting_point"],
            np.full(self.cells.size, 10.0),
            veg,
            np.zeros(self.cells.size, dtype=bool),
        )
        self.chain: BlockChain[ColumnState] = BlockChain(
            epoch - spinup_days, block, self.columns.initial, self._step, keep_from=epoch
        )

    def _soil(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> dict[str, FloatArray]:
        """The product's soil map: the soil type's table values times ``soil_scale``."""
        st = self.geography.statics(lat, lon)
        codes = np.where(st.land, st.slt, 0).astype(np.intp)
        table = np.array([(np.nan, np.nan, np.nan)] + [SOIL_TABLE[k] for k in range(1, 8)])
        scale = self.spec.soil_scale
        sat, fc, wp = (table[codes, i] * scale[i] for i in range(3))
        fc = np.minimum(fc, sat - 0.04)
        return {"porosity": sat, "field_capacity": fc, "wilting_point": np.minimum(wp, fc - 0.08)}

    def _step(self, first: int, n_days: int, state: ColumnState) -> tuple[F32, ColumnState]:
        g = self.grid
        rain = self.rain.at_points(first, n_days, g.lats, g.lons, window=self.window)
        met = self.weather.daily(first, n_days, g.lats, g.lons)
        t_k, ssrd = self.met.daily(met["t2m_mean"], met["ssrd"], first, g.lats, g.lons)
        t_mean = t_k.astype(np.float64) - 273.15
        pet = makkink_pet(t_mean, ssrd.astype(np.float64) / 1e6)
        days = np.arange(first, first + n_days)
        green = greenness(days, self._lat)[:, :, 0]

        def pick(values: npt.ArrayLike) -> FloatArray:
            return np.asarray(values, dtype=np.float64).reshape(n_days, -1)[:, self.cells]

        p, t, e = pick(rain), pick(t_mean), pick(pet)
        out = np.empty((n_days, self.cells.size), dtype=np.float32)
        for i in range(n_days):
            day = DayForcing(p[i], t[i], e[i], np.full(self.cells.size, 12.0), green[i])
            state = step(state, day, self.columns, self.spec.structure)
            out[i] = state.surface
        return out, state

    def series(self, first: int, last: int) -> F32:
        """The product's top layer (m3 m-3) on the grid, float32 (n_days, lat, lon), NaN over
        sea; days from the epoch on."""
        raw = np.asarray(self.chain.get(first, last), dtype=np.float32)
        out = np.full((raw.shape[0], self.grid.nrows * self.grid.ncols), np.nan, np.float32)
        out[:, self.cells] = raw
        return out.reshape(raw.shape[0], self.grid.nrows, self.grid.ncols)

    def daily(self, first: int, n_days: int, lat: npt.ArrayLike, lon: npt.ArrayLike) -> F32:
        """Daily values (m3 m-3) at outer-product points, (n_days, lat, lon) float32: the run's
        value of the cell containing the point inside the region, the placeholder of the
        module docstring on land outside it, NaN over sea (``lsm < 0.5`` at the point)."""
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        st = self.geography.statics(la, lo)
        rows, _, rok = self.grid.locate(la, np.full_like(la, self.grid.lons[0]))
        _, cols, cok = self.grid.locate(np.full_like(lo, self.grid.lats[0]), lo)
        out = np.full((n_days, la.size, lo.size), np.nan, dtype=np.float32)
        ri, ci = np.flatnonzero(rok), np.flatnonzero(cok)
        if ri.size and ci.size and first >= self.epoch:
            values = self.series(first, first + n_days - 1)
            out[:, ri[:, None], ci[None, :]] = values[:, rows[ri]][:, :, cols[ci]]
        missing = np.isnan(out) & st.land[None]
        if missing.any():
            soil = self._soil(la, lo)
            doy = day_of_year(np.arange(first, first + n_days))[:, None, None]
            season = 0.35 + 0.15 * np.cos(2.0 * np.pi * (doy - 100.0) / 365.25)
            wp, fc = soil["wilting_point"], soil["field_capacity"]
            out = np.where(missing, (wp + (fc - wp) * season).astype(np.float32), out)
        return np.where(st.land[None], out, np.float32(np.nan))

    def hourly(self, day: int, lat: npt.ArrayLike, lon: npt.ArrayLike, hours: npt.ArrayLike) -> F32:
        """Values at ``hours`` (UTC, of ``day``) at points: the daily value plus the diurnal
        term; (len(hours), lat, lon) float32."""
        daily = self.daily(day, 1, lat, lon)[0]
        h = np.asarray(hours, dtype=np.float64)
        wave = diurnal_term(h[:, None], np.asarray(lon, dtype=np.float64)[None, :])
        wave32 = (self.spec.diurnal_amplitude * wave).astype(np.float32)
        out = np.empty((h.size, *daily.shape), dtype=np.float32)
        for i in range(h.size):
            np.add(daily, wave32[i][None, :], out=out[i])
        return out


def true_skill(product: xr.DataArray, truth: xr.DataArray, *, dim: str = "time") -> xr.Dataset:
    """Skill of a product against the truth, per position, over ``dim``.

    Both arrays must share coordinates; only times where both are finite count. Returns a
    Dataset with ``n`` (count), ``rho`` (Pearson correlation with the truth), ``beta``
    (regression slope of product on truth), ``err_sd`` (SD of the product's error in its own
    units: ``sqrt(var(x) − cov(x, T)²/var(T))``, which is what triple collocation estimates),
    ``bias`` (mean(x − T)) and ``ubrmsd`` (SD of x − T), all float64 (ddof = 1).
    """
    x, t = xr.align(product.astype(np.float64), truth.astype(np.float64), join="exact")
    both = x.notnull() & t.notnull()
    x = x.where(both)
    t = t.where(both)
    n = both.sum(dim)
    xm, tm = x.mean(dim), t.mean(dim)
    dx, dt = x - xm, t - tm
    denom = n - 1
    cov = (dx * dt).sum(dim) / denom
    var_x = (dx * dx).sum(dim) / denom
    var_t = (dt * dt).sum(dim) / denom
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cov / np.sqrt(var_x * var_t)
        beta = cov / var_t
        err = np.sqrt(np.maximum(var_x - cov * cov / var_t, 0.0))
    diff = (x - t).where(both)
    return xr.Dataset(
        {
            "n": n,
            "rho": rho,
            "beta": beta,
            "err_sd": err,
            "bias": diff.mean(dim),
            "ubrmsd": diff.std(dim, ddof=1),
        }
    )
