"""SMAP L3-like soil moisture retrievals on EASE-Grid 2.0 (M09 for SPL3SMP_E, M36 for SPL3SMP).

Only the world's region is simulated (the pixels whose centres fall in it); the rest of the
global arrays is fill (−9999 for floats, 65534 for flags).

Coverage
--------
SMAP flies a sun-synchronous orbit with an 8-day exact repeat of 117 orbits: consecutive
equator crossings are Δλ = 360°·8/117 ≈ 24.6° apart and the pattern shifts by 5/8·Δλ per day.
A pixel at (φ, λ) is inside the 1000 km swath of a pass when its distance to the nearest
ground track, ``min(p, Δλ − p)·111.32·cos φ`` km with ``p = (λ − λ₀ − shift(day) − κφ) mod Δλ``,
is below 500 km (κ = ±0.12 tilts the tracks; λ₀ differs between the AM and the PM pass). This
gives a 2–3-day revisit at mid-latitudes and daily coverage poleward of ~65°. A further
``missing_fraction`` of swath pixels has no retrieval.
The AM pass is descending at 06:00 local solar time at the equator, the PM pass ascending at
18:00; the overpass is 0.27 min per degree of latitude earlier (AM) or later (PM) away from
the equator. ``tb_time_seconds`` is seconds since 2000-01-01T12:00:00 UTC; the overpass is
placed on the granule's UTC day.

Values (per pixel i, pass p, day D, see :class:`smda_twin.products.SmapErrors`)
---------------------------------------------------------------------------
``soil_moisture = clip(offset + scale·truth(cell(i), D) + static_sd·b_i
+ veg_bias_per_kg·(VWC − VWC̄) + σ_p·(1 + veg_noise_per_kg·VWC)·k_i·e_{i,p,D}, valid_min,
valid_max)`` with ``b_i`` a static per-pixel normal, ``VWC`` the vegetation water content below
(``VWC̄ = 0.7·(6 cvh + 1.5 cvl)`` its seasonal mean), ``σ_AM = noise_sd``,
``σ_PM = pm_noise_factor·noise_sd``, ``k_i = not_recommended_noise_factor`` for retrievals not
recommended (else 1) and ``e = √w·white + √(1 − w)·L`` (w = ``noise_white_fraction``, L a
daily 0.3° field per pass): independent of the truth and of the other products. The truth is
the cell's mean over its sub-cell tiles (:mod:`smda_twin.waterbalance`).

Pixels under persistent radio-frequency interference (a static ``rfi_fraction`` of them) lose
a further ``rfi_missing`` of their retrievals.

Flags and ancillary fields
--------------------------
``retrieval_qual_flag`` (uint16): 0 recommended; 1 (bit 0: not recommended) for a random
``not_recommended_fraction`` of retrievals; 5 (bits 0 and 2: not recommended, retrieval not
successful) where frozen, snow-covered or over static water.
``surface_flag`` (uint16) bits: 0 static water body (3 % of pixels), 2 coastal proximity
(lsm < 0.95), 5 snow or ice (snowpack in the cell's water balance), 7 frozen ground from the
radiometer (2 m temperature at the overpass < 273.15 K), 8 frozen ground from the model (base
temperature of the day < 273.15 K), 9 mountainous terrain (elevation > 2000 m), 10 dense
vegetation (vegetation water content > 5 kg m-2).
``surface_temperature`` = 2 m temperature at the overpass −1 K (AM) or +1.5 K (PM);
``freeze_thaw_fraction = clip(273.65 − T, 0, 1)``; ``vegetation_water_content`` (kg m-2)
``= (6 cvh + 1.5 cvl)(0.4 + 0.6 g)`` with g a hemispheric greenness season;
``soil_moisture_error = σ_p·(1 + veg_noise_per_kg·vwc)·k_i``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from smda.geo.ease2 import EaseGrid
from smda.geo.grid import Grid
from smda_twin.geography import Geography
from smda_twin.noise import Lattice, Memo, hash_normals, hash_uniforms, key
from smda_twin.products import SmapErrors
from smda_twin.weather import States, Weather, day_of_year, diurnal_shape

__all__ = ["FLAG_FILL", "FLOAT_FILL", "PASSES", "SmapDay", "SmapSimulator"]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

FLOAT_FILL = -9999.0
"""Fill value of the float fields (and of ``tb_time_seconds``)."""
FLAG_FILL = 65534
"""Fill value of the uint16 flags."""
PASSES = ("AM", "PM")

FIELDS: dict[str, type[np.generic]] = {
    "soil_moisture": np.float32,
    "soil_moisture_error": np.float32,
    "retrieval_qual_flag": np.uint16,
    "surface_flag": np.uint16,
    "surface_temperature": np.float32,
    "freeze_thaw_fraction": np.float32,
    "vegetation_water_content": np.float32,
    "tb_time_seconds": np.float64,
}
"""The per-pass fields and their dtypes (names without the PM files' ``_pm`` suffix)."""

_DLAMBDA = 360.0 * 8.0 / 117.0
_LON0 = {"AM": 0.0, "PM": 0.84 * _DLAMBDA}
_TILT = {"AM": 0.12, "PM": -0.12}
_LST = {"AM": 6.0, "PM": 18.0}
_MIN_PER_DEG = {"AM": -0.27, "PM": 0.27}
_J2000_ORDINAL = date(2000, 1, 1).toordinal()


@dataclass(frozen=True)
class SmapDay:
    """One day of SMAP L3 retrievals on a global EASE-Grid 2.0.

    ``am`` and ``pm`` map the names of :data:`FIELDS` (without ``_pm``) to full-grid arrays
    (grid.nrows, grid.ncols), filled with :data:`FLOAT_FILL` / :data:`FLAG_FILL` where there
    is no retrieval. ``rows``/``cols`` give the simulated window (the region), for writers
    that want to avoid scanning the whole grid.
    """

    day: date
    grid: EaseGrid
    am: Mapping[str, npt.NDArray[np.generic]]
    pm: Mapping[str, npt.NDArray[np.generic]]
    rows: IntArray
    cols: IntArray

    def __getitem__(self, pass_name: str) -> Mapping[str, npt.NDArray[np.generic]]:
        return {"AM": self.am, "PM": self.pm}[pass_name]


@dataclass(frozen=True)
class _Window:
    rows: IntArray
    cols: IntArray
    lat: FloatArray  # (nr,)
    lon: FloatArray  # (nc,)
    cell_rows: IntArray  # row in the truth grid of each EASE row (−1 outside)
    cell_cols: IntArray
    land: npt.NDArray[np.bool_]  # (nr, nc) pixel is land with a truth cell
    static_bias: FloatArray  # (nr, nc) unit normals
    water: npt.NDArray[np.bool_]
    coastal: npt.NDArray[np.bool_]
    mountain: npt.NDArray[np.bool_]
    veg_max: FloatArray  # 6 cvh + 1.5 cvl
    rfi: npt.NDArray[np.bool_]  # pixel under persistent RFI


class SmapSimulator:
    """Simulates SMAP L3 retrievals of a world over its region (see the module docstring)."""

    def __init__(
        self, seed: int, errors: SmapErrors, grid: Grid, geography: Geography, weather: Weather
    ) -> None:
        self.seed = seed
        self.errors = errors
        self.grid = grid
        self.geography = geography
        self.weather = weather
        self._windows: Memo[_Window] = Memo(4)
        self._states: Memo[States] = Memo(2)

    def window(self, ease: EaseGrid) -> _Window:
        """The EASE pixels of the region and their static properties (memoised)."""
        return self._windows.get(ease.name, lambda: self._make_window(ease))

    def _make_window(self, ease: EaseGrid) -> _Window:
        rows, cols = ease.rows_cols_in_bbox(self.grid.bounds)
        lat, lon = ease.row_lats(rows), ease.col_lons(cols)
        r, _, rok = self.grid.locate(lat, np.full_like(lat, self.grid.lons[0]))
        _, c, cok = self.grid.locate(np.full_like(lon, self.grid.lats[0]), lon)
        cell_rows = np.where(rok, r, -1)
        cell_cols = np.where(cok, c, -1)
        st = self.geography.statics(lat, lon)
        k = key(self.seed, "smap_pixel", ease.name)
        water = hash_uniforms(k, rows[:, None], cols[None, :], 1) < 0.03
        return _Window(
            rows=rows,
            cols=cols,
            lat=lat,
            lon=lon,
            cell_rows=cell_rows,
            cell_cols=cell_cols,
            land=(cell_rows[:, None] >= 0) & (cell_cols[None, :] >= 0) & st.land,
            static_bias=hash_normals(k, rows[:, None], cols[None, :], 0),
            water=np.asarray(water),
            coastal=np.asarray(st.lsm < 0.95),
            mountain=np.asarray(st.elevation > 2000.0),
            veg_max=6.0 * st.cvh + 1.5 * st.cvl,
            rfi=np.asarray(
                hash_uniforms(k, rows[:, None], cols[None, :], 2) < self.errors.rfi_fraction
            ),
        )

    # -- geometry -------------------------------------------------------------------------------
    @staticmethod
    def covered(
        days: npt.NDArray[np.int64], pass_name: str, lat: FloatArray, lon: FloatArray
    ) -> npt.NDArray[np.bool_]:
        """Whether each pixel is inside the swath of a pass: (len(days), len(lat), len(lon))."""
        shift = ((5 * np.asarray(days, dtype=np.int64)) % 8) / 8.0 * _DLAMBDA
        offset = _LON0[pass_name] + _TILT[pass_name] * lat  # (nr,)
        p = (lon[None, None, :] - shift[:, None, None] - offset[None, :, None]) % _DLAMBDA
        dist = np.minimum(p, _DLAMBDA - p) * 111.32 * np.cos(np.deg2rad(lat))[None, :, None]
        return np.asarray(dist < 500.0)

    @staticmethod
    def overpass_hours(pass_name: str, lat: FloatArray, lon: FloatArray) -> FloatArray:
        """UTC hour (0–24) of the overpass on the granule's day: (len(lat), len(lon))."""
        local = _LST[pass_name] + _MIN_PER_DEG[pass_name] * lat[:, None] / 60.0
        return np.asarray((local - lon[None, :] / 15.0) % 24.0)

    # -- retrievals -----------------------------------------------------------------------------
    def retrievals(
        self,
        ease: EaseGrid,
        first: int,
        n_days: int,
        pass_name: str,
        truth: F32,
        snow: F32,
        names: tuple[str, ...] = tuple(FIELDS),
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Window arrays (n_days, n_rows, n_cols) of the fields ``names`` of one pass, with
        fill where there is no retrieval. ``truth``/``snow`` are the water balance's θ and SWE
        on the world grid for the same days."""
        e = self.errors
        w = self.window(ease)
        if w.rows.size == 0 or w.cols.size == 0:  # a region beyond the grid's ±85° latitude
            shape = (n_days, w.rows.size, w.cols.size)
            return {
                n: np.full(
                    shape, FLAG_FILL if FIELDS[n] is np.uint16 else FLOAT_FILL, dtype=FIELDS[n]
                )
                for n in names
            }
        days = np.arange(first, first + n_days, dtype=np.int64)
        k = key(self.seed, "smap", ease.name, pass_name)
        ok, not_rec = self._sampled(k, days, pass_name, w)
        t = truth[:, np.maximum(w.cell_rows, 0)][:, :, np.maximum(w.cell_cols, 0)]
        swe = snow[:, np.maximum(w.cell_rows, 0)][:, :, np.maximum(w.cell_cols, 0)]
        ok &= np.isfinite(t)

        hours = self.overpass_hours(pass_name, w.lat, w.lon)
        t2m, tbase = self._overpass_temperature(first, n_days, pass_name, w, hours)
        frozen = t2m < 273.15
        snowy = swe > 0.0
        bad = frozen | snowy | w.water[None]
        not_rec |= bad

        vwc = self.vegetation_water(days, w)
        k_i = np.where(not_rec, e.not_recommended_noise_factor, 1.0)
        sigma = self._noise_sd(pass_name, vwc) * k_i
        sm = e.offset + e.scale * t + e.static_sd * w.static_bias[None]
        sm = sm + e.veg_bias_per_kg * (vwc - 0.7 * w.veg_max[None])
        sm = np.clip(sm + sigma * self._noise(k, days, pass_name, w), e.valid_min, e.valid_max)

        out: dict[str, npt.NDArray[np.generic]] = {}

        def put(name: str, value: npt.ArrayLike) -> None:
            if name in names:
                dtype = FIELDS[name]
                fill = FLAG_FILL if dtype is np.uint16 else FLOAT_FILL
                out[name] = np.where(ok, np.broadcast_to(value, ok.shape), fill).astype(dtype)

        put("soil_moisture", sm)
        put("retrieval_qual_flag", np.where(bad, 5, np.where(not_rec, 1, 0)))
        if set(names) & {"soil_moisture_error", "surface_flag", "vegetation_water_content"}:
            put("soil_moisture_error", sigma)
            put("vegetation_water_content", vwc)
            surface = self._surface_flags(w, snowy, frozen, tbase, vwc)
            put("surface_flag", surface)
        put("surface_temperature", t2m + (1.5 if pass_name == "PM" else -1.0))
        put("freeze_thaw_fraction", np.clip(273.65 - t2m, 0.0, 1.0))
        if "tb_time_seconds" in names:
            put(
                "tb_time_seconds",
                (days[:, None, None] - _J2000_ORDINAL) * 86400.0 - 43200.0 + hours[None] * 3600.0,
            )
        return {name: out[name] for name in names}

    def _sampled(
        self, k: int, days: npt.NDArray[np.int64], pass_name: str, w: _Window
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Where a pass has a retrieval (its swath over land, less RFI and random gaps) and
        which retrievals are not recommended, (days, rows, cols) each."""
        e = self.errors
        cover = self.covered(days, pass_name, w.lat, w.lon) & w.land[None]
        at = (days[:, None, None], w.rows[None, :, None], w.cols[None, None, :])
        u = hash_uniforms(k, *at)
        missing = u < e.missing_fraction
        missing |= w.rfi[None] & (hash_uniforms(k, *at, 3) < e.rfi_missing)
        not_rec = (u >= e.missing_fraction) & (u < e.missing_fraction + e.not_recommended_fraction)
        return cover & ~missing, not_rec

    @staticmethod
    def _surface_flags(
        w: _Window,
        snowy: npt.NDArray[np.bool_],
        frozen: npt.NDArray[np.bool_],
        tbase: FloatArray,
        vwc: FloatArray,
    ) -> npt.NDArray[np.integer]:
        """``surface_flag`` bits of the module docstring."""
        return np.asarray(
            w.water[None] * 1
            + w.coastal[None] * (1 << 2)
            + snowy * (1 << 5)
            + frozen * (1 << 7)
            + (tbase < 273.15) * (1 << 8)
            + w.mountain[None] * (1 << 9)
            + (vwc > 5.0) * (1 << 10)
        )

    @staticmethod
    def vegetation_water(days: npt.NDArray[np.int64], w: _Window) -> FloatArray:
        """Vegetation water content (kg m-2) of the window's pixels, (days, rows, cols):
        ``(6 cvh + 1.5 cvl)(0.4 + 0.6 g)`` with g the hemispheric greenness season."""
        doy = day_of_year(days)[:, None, None]
        season = np.cos(2.0 * np.pi * (doy - 200.0) / 365.25) * np.sign(w.lat)[None, :, None]
        return np.asarray(w.veg_max[None] * (0.4 + 0.6 * (0.5 + 0.5 * season)))

    def _noise_sd(self, pass_name: str, vwc: FloatArray) -> FloatArray:
        """σ_p·(1 + veg_noise_per_kg·VWC) of recommended retrievals."""
        e = self.errors
        pass_sd = e.noise_sd * (e.pm_noise_factor if pass_name == "PM" else 1.0)
        return np.asarray(pass_sd * (1.0 + e.veg_noise_per_kg * vwc))

    def _noise(self, k: int, days: npt.NDArray[np.int64], pass_name: str, w: _Window) -> FloatArray:
        """The unit noise e = √w·white + √(1 − w)·L (module docstring), (days, rows, cols)."""
        e = self.errors
        white = hash_normals(
            k, days[:, None, None], w.rows[None, :, None], w.cols[None, None, :], 7
        )
        smooth = Lattice(f"smap_noise_{pass_name}", e.noise_spacing or 0.3).sample(
            self.seed, days, w.lat, w.lon
        )
        wf = e.noise_white_fraction
        return np.asarray(np.sqrt(wf) * white + np.sqrt(1.0 - wf) * smooth)

    def _overpass_temperature(
        self, first: int, n_days: int, pass_name: str, w: _Window, hours: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """2 m temperature at the overpass and the 00 UTC base temperature (K)."""
        states = self._states.get(
            (w.lat.size, w.lon.size, float(w.lat[0]), float(w.lon[0]), first, n_days),
            lambda: self.weather.states(first, n_days + 1, w.lat, w.lon),
        )
        frac = (hours / 24.0)[None]
        tb, dtr = states["tbase"].astype(np.float64), states["dtr"].astype(np.float64)
        t_base = tb[:-1] + frac * (tb[1:] - tb[:-1])
        d = dtr[:-1] + frac * (dtr[1:] - dtr[:-1])
        local = _LST[pass_name] + _MIN_PER_DEG[pass_name] * w.lat[:, None] / 60.0
        shape = diurnal_shape(local)[None]
        return t_base + 0.5 * d * shape, tb[:-1]

    def day(self, ease: EaseGrid, day: date, truth: F32, snow: F32) -> SmapDay:
        """Both passes of ``day`` on the full grid (``truth``/``snow``: (1, lat, lon))."""
        w = self.window(ease)
        passes: dict[str, dict[str, npt.NDArray[np.generic]]] = {}
        for p in PASSES:
            window = self.retrievals(ease, day.toordinal(), 1, p, truth, snow)
            full: dict[str, npt.NDArray[np.generic]] = {}
            for name, dtype in FIELDS.items():
                fill = FLAG_FILL if dtype is np.uint16 else FLOAT_FILL
                arr = np.full(ease.shape, fill, dtype=dtype)
                arr[np.ix_(w.rows, w.cols)] = window[name][0]
                full[name] = arr
            passes[p] = full
        return SmapDay(
            day=day, grid=ease, am=passes["AM"], pm=passes["PM"], rows=w.rows, cols=w.cols
        )

    def binned(self, ease: EaseGrid, first: int, n_days: int, truth: F32, snow: F32) -> F32:
        """Daily SMAP on the world grid: mean of the recommended AM and PM retrievals whose
        pixel centre lies in each cell; NaN without any. (n_days, lat, lon) float32."""
        w = self.window(ease)
        g = self.grid
        n_cells = g.nrows * g.ncols
        total = np.zeros((n_days, n_cells))
        count = np.zeros((n_days, n_cells))
        inside = (w.cell_rows[:, None] >= 0) & (w.cell_cols[None, :] >= 0)
        flat = (
            np.maximum(w.cell_rows, 0)[:, None] * g.ncols + np.maximum(w.cell_cols, 0)[None, :]
        )[inside]
        for p in PASSES:
            r = self.retrievals(
                ease, first, n_days, p, truth, snow, ("soil_moisture", "retrieval_qual_flag")
            )
            good = (r["retrieval_qual_flag"] == 0) & (r["soil_moisture"] != FLOAT_FILL)
            values = np.where(good, r["soil_moisture"], 0.0)
            for i in range(n_days):
                total[i] += np.bincount(flat, values[i][inside], minlength=n_cells)
                count[i] += np.bincount(flat, good[i][inside], minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        return mean.reshape(n_days, g.nrows, g.ncols).astype(np.float32)
