"""Products derived from the truth with known, independent errors, and their true skill.

Every product follows one error model (parameters in :class:`ProductErrors`)::

    product(x, t) = offset + scale·truth(cell(x), day(t)) + static_sd·B(x) + noise_sd·E(x, t)
                    + diurnal_amplitude·H(t, x)

- ``truth`` is the world's daily truth (m3 m-3) of the 0.25° cell containing x, held constant
  through the UTC day;
- ``B`` is a time-invariant unit-variance field: smooth on a lattice of ``static_spacing``
  degrees, or independent per pixel/station when ``static_spacing`` is 0;
- ``E`` is a unit-variance error, AR(1) in time with lag-1 correlation ``noise_phi`` per step
  of ``noise_step_hours`` (``E_k = φ E_{k−1} + √(1−φ²) z_k``), spatially a lattice field of
  ``noise_spacing`` degrees, of which a fraction ``noise_white_fraction`` of the variance is
  instead independent per pixel;
- ``H = −cos(2π(LST − 15)/24)`` over the 24 hours of the UTC day (driest at 15 local solar
  time), which sums to exactly zero over the hours of a UTC day, so daily means are unaffected.

All random numbers are keyed by (seed, product, day, position), independent of the truth and
of every other product, so triple collocation's assumptions hold (a product's errors are
independent of the truth and of the other products' errors). ERA5's own ``swvl1`` is the
ERA5-Land product evaluated at ERA5 points (same errors): do not put both in one triplet.

:func:`true_skill` measures a product against the truth directly (correlation, TC-style error
SD, bias, scale), for tests and for scoring an OSSE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.grid import Grid
from smda.twin.geography import Geography
from smda.twin.noise import BlockChain, Lattice, hash_normals, interpolate, key
from smda.twin.weather import day_of_year

__all__ = [
    "ERA5LAND_ERRORS",
    "GLDAS_ERRORS",
    "ISMN_ERRORS",
    "SMAP_ERRORS",
    "ModelProduct",
    "ProductErrors",
    "SmapErrors",
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
    quality and coverage.

    ``noise_sd`` is the AM error SD; PM retrievals have ``pm_noise_factor`` times more. A
    fraction ``not_recommended_fraction`` of retrievals (and all frozen, snow-covered or
    water-affected ones) have bit 0 of ``retrieval_qual_flag`` set; their noise SD is
    ``not_recommended_noise_factor`` times larger. ``missing_fraction`` of the pixels in a
    swath have no retrieval (RFI). Retrievals are clipped to [valid_min, valid_max].
    """

    pm_noise_factor: float = 1.1
    not_recommended_fraction: float = 0.1
    not_recommended_noise_factor: float = 2.0
    missing_fraction: float = 0.03
    valid_min: float = 0.02
    valid_max: float = 0.6


SMAP_ERRORS = SmapErrors(
    static_sd=0.02,
    noise_sd=0.045,
    noise_spacing=0.3,
    noise_white_fraction=0.4,
)
"""SMAP L3 (9 km): unbiased on average, per-pixel bias SD 0.02, noise SD 0.045 (AM) with
60 % of its variance on a 0.3° (~36 km radiometer footprint) field, white in time."""

ERA5LAND_ERRORS = ProductErrors(
    offset=0.08,
    scale=0.7,
    static_sd=0.02,
    static_spacing=2.0,
    noise_sd=0.03,
    noise_phi=0.8,
    noise_spacing=1.0,
    diurnal_amplitude=0.003,
    layer_depth_m=0.07,
)
"""ERA5-Land swvl1 (0–7 cm): wet-biased, range-compressed, smooth AR(1) error (φ 0.8/day)."""

GLDAS_ERRORS = ProductErrors(
    offset=0.04,
    scale=0.85,
    static_sd=0.03,
    static_spacing=2.0,
    noise_sd=0.045,
    noise_phi=0.9,
    noise_spacing=1.5,
    diurnal_amplitude=0.002,
    layer_depth_m=0.10,
)
"""GLDAS Noah 0–10 cm: another bias and scale, a larger error with a longer memory (φ 0.9)."""

ISMN_ERRORS = ProductErrors(
    static_sd=0.03,
    noise_sd=0.035,
    noise_phi=0.99,
    noise_step_hours=1,
    diurnal_amplitude=0.005,
)
"""ISMN stations (0.05 m): representativeness error — a per-station bias (SD 0.03), hourly
AR(1) noise (SD 0.035, φ 0.99 per hour, a memory of about four days) and a small diurnal
cycle."""


def diurnal_term(hours_utc: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """``H = −cos(2π(LST − 15)/24)`` (broadcasts): zero mean over the 24 UTC hours."""
    lst = np.asarray(hours_utc, dtype=np.float64) + np.asarray(lon, dtype=np.float64) / 15.0
    return np.asarray(-np.cos(2.0 * np.pi * (lst - 15.0) / 24.0))


@dataclass
class _ArLattice:
    """A unit-variance AR(1) lattice field over a fixed node window, memoised by blocks."""

    lattice: Lattice
    phi: float
    seed: int
    lat_nodes: npt.NDArray[np.int64]
    lon_nodes: npt.NDArray[np.int64]
    origin: int
    chain: BlockChain[FloatArray] = field(init=False)

    def __post_init__(self) -> None:
        self.chain = BlockChain(self.origin, 366, self._init, self._step)

    def _white(self, first: int, n_days: int) -> FloatArray:
        k = key(self.seed, self.lattice.tag, "ar1")
        days = np.arange(first, first + n_days, dtype=np.int64)
        return hash_normals(
            k, days[:, None, None], self.lat_nodes[None, :, None], self.lon_nodes[None, None, :]
        )

    def _init(self) -> FloatArray:
        return np.asarray(self._white(self.origin - 1, 1)[0])

    def _step(self, first: int, n_days: int, state: FloatArray) -> tuple[FloatArray, FloatArray]:
        z = self._white(first, n_days)
        out = np.empty_like(z)
        innov = np.sqrt(1.0 - self.phi**2)
        for i in range(n_days):
            state = self.phi * state + innov * z[i]
            out[i] = state
        return out, state


class ModelProduct:
    """A gridded model-like product (ERA5-Land, GLDAS) at any points inside the truth's
    region; outside it, land points get a climatological placeholder (no truth there)."""

    def __init__(
        self,
        name: str,
        errors: ProductErrors,
        *,
        seed: int,
        grid: Grid,
        geography: Geography,
        epoch: int,
    ) -> None:
        self.name = name
        self.errors = errors
        self.seed = seed
        self.grid = grid
        self.geography = geography
        self.epoch = epoch
        self._static = Lattice(f"{name}_static", errors.static_spacing or 1.0)
        noise = Lattice(f"{name}_noise", errors.noise_spacing or 1.0)
        bounds = grid.bounds
        probe_lat = np.linspace(bounds.south - 0.5, bounds.north + 0.5, 64)
        width = grid.ncols * grid.res
        probe_lon = bounds.west - 0.5 + np.linspace(0.0, min(width + 1.0, 360.0), 256)
        b_lat, b_lon = noise.weights(probe_lat, probe_lon)
        self._ar = _ArLattice(
            noise, errors.noise_phi, seed, b_lat.nodes, np.unique(b_lon.nodes), epoch
        )
        self._lon_index = np.full(noise.n_lon, -1, dtype=np.intp)
        self._lon_index[self._ar.lon_nodes] = np.arange(self._ar.lon_nodes.size)

    def noise(self, first: int, n_days: int, lat: FloatArray, lon: FloatArray) -> F32:
        """The unit-variance error E at points (all inside the region): (n_days, lat, lon)."""
        bands = self._ar.lattice.weights(lat, lon)
        li = bands[0].nodes - self._ar.lat_nodes[0]
        ci = self._lon_index[bands[1].nodes]
        if li.min() < 0 or li.max() >= self._ar.lat_nodes.size or ci.min() < 0:
            raise ValueError(
                f"points outside the {self.name} error window of region {self.grid.bounds}"
            )
        values = self._ar.chain.get(first, first + n_days - 1)[:, li][:, :, ci]
        return interpolate(values, bands)

    def daily(
        self, first: int, n_days: int, lat: npt.ArrayLike, lon: npt.ArrayLike, truth: F32
    ) -> F32:
        """Daily values (m3 m-3) at outer-product points: (n_days, lat, lon) float32.

        ``truth`` is the truth on ``self.grid`` for the same days (n_days, grid lat, grid lon).
        Inside the region: the error model of the module docstring (without the diurnal
        term). Land outside it (or where the cell has no truth): ``offset + scale·θ_clim +
        static`` with ``θ_clim = wp + (fc − wp)(0.35 + 0.15 cos(2π(doy − 100)/365.25))``.
        Sea (``lsm < 0.5`` at the point): NaN.
        """
        e = self.errors
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        st = self.geography.statics(la, lo)
        static = e.static_sd * self._static_field(la, lo)
        rows, _, rok = self.grid.locate(la, np.full_like(la, self.grid.lons[0]))
        _, cols, cok = self.grid.locate(np.full_like(lo, self.grid.lats[0]), lo)
        out = np.full((n_days, la.size, lo.size), np.nan, dtype=np.float32)
        ri, ci = np.flatnonzero(rok), np.flatnonzero(cok)
        if ri.size and ci.size:
            t = truth[:, rows[ri]][:, :, cols[ci]]
            eps = e.noise_sd * self.noise(first, n_days, la[ri], lo[ci])
            inside = e.offset + e.scale * t + static[np.ix_(ri, ci)] + eps
            block = out[:, ri[:, None], ci[None, :]]
            out[:, ri[:, None], ci[None, :]] = np.where(np.isfinite(t), inside, block)
        missing = np.isnan(out) & st.land[None]
        if missing.any():
            soil = self.geography.soil_properties(la, lo)
            doy = day_of_year(np.arange(first, first + n_days))[:, None, None]
            season = 0.35 + 0.15 * np.cos(2.0 * np.pi * (doy - 100.0) / 365.25)
            clim = soil["wilting_point"] + (soil["field_capacity"] - soil["wilting_point"]) * season
            out = np.where(missing, (e.offset + e.scale * clim + static).astype(np.float32), out)
        return out

    def _static_field(self, lat: FloatArray, lon: FloatArray) -> FloatArray:
        if self.errors.static_spacing > 0:
            return self._static.sample(self.seed, None, lat, lon).astype(np.float64)
        k = key(self.seed, self.name, "static_points")
        return hash_normals(k, np.round(lat * 1e4)[:, None], np.round(lon * 1e4)[None, :])

    def hourly(
        self, day: int, lat: npt.ArrayLike, lon: npt.ArrayLike, truth: F32, hours: npt.ArrayLike
    ) -> F32:
        """Values at ``hours`` (UTC, of ``day``) at points: the daily value plus the diurnal
        term; (len(hours), lat, lon) float32. ``truth`` is (1, grid lat, grid lon)."""
        daily = self.daily(day, 1, lat, lon, truth)[0]
        h = np.asarray(hours, dtype=np.float64)
        wave = diurnal_term(h[:, None], np.asarray(lon, dtype=np.float64)[None, :])
        wave32 = (self.errors.diurnal_amplitude * wave).astype(np.float32)
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
