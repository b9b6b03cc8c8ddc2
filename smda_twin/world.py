"""The offline twin's synthetic world: a seeded, *fraternal* twin of the Earth with a known truth.

``World(WorldSpec(seed=..., region=..., epoch=...))`` is a pure function of its spec: the same
spec gives bitwise identical arrays, another seed a different world, and asking for a day never
depends on what was asked before (every random number is keyed by seed, quantity and day,
:mod:`smda_twin.noise`).

The truth and what is served are kept apart. The **truth** (:meth:`World.truth`,
:mod:`smda_twin.waterbalance`) is a two-layer water balance of sub-cell tiles with
intensity-dependent runoff, irrigation and snow, driven by a **true forcing**
(:mod:`smda_twin.precipitation`, :mod:`smda_twin.weather`) that no replica serves and no staged
file contains. Everything served is a **product** of it with its own documented errors
(:attr:`World.error_params`, ``smda twin params``):

- static fields: ERA5 invariants (:meth:`World.invariants`) on real geography
  (:mod:`smda_twin.geography`);
- meteorology: hourly ERA5 (:meth:`World.era5_hourly`): the true weather with reanalysis
  errors (:mod:`smda_twin.reanalysis`);
- precipitation: MSWEP at 0.1° (final and NRT with revisions) and ERA5's ``tp``
  (:mod:`smda_twin.rainfall`);
- soil moisture products: ERA5-Land and GLDAS from their own land-model runs with their own
  forcing (:mod:`smda_twin.products`, :meth:`World.era5land_hourly`, :meth:`World.gldas_3h`),
  SMAP L3 retrievals (:meth:`World.smap_l3e`, :meth:`World.smap_l3`, :mod:`smda_twin.smap`)
  and ISMN stations measuring their own point (:meth:`World.stations`,
  :meth:`World.station_hourly`, :mod:`smda_twin.stations`);
- their skill against the truth (:meth:`World.true_skill`).

Only scoring may read the truth (``smda evaluate``, the benchmarks, the twin's own tests).

Units follow the providers: K, Pa, m s-1, J m-2, m (ERA5 tp), mm day-1 (MSWEP), m3 m-3
(soil moisture), kg m-2 (GLDAS). The truth and the products exist from ``spec.epoch`` on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.geo.ease2 import M09, M36, EaseGrid
from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda_twin.geography import Geography
from smda_twin.precipitation import MSWEP_GRID, Precipitation
from smda_twin.products import (
    ERA5LAND,
    GLDAS,
    ISMN_ERRORS,
    SMAP_ERRORS,
    LandProduct,
    LandProductSpec,
    ProductErrors,
    SmapErrors,
    diurnal_term,
    true_skill,
)
from smda_twin.rainfall import (
    ERA5_TP_ERRORS,
    GLDAS_RAIN_ERRORS,
    MSWEP_ERRORS,
    MSWEP_NRT_ERRORS,
    NrtErrors,
    RainErrors,
    RainProduct,
    era5_tp,
    mswep_nrt,
)
from smda_twin.reanalysis import ERA5_MET_ERRORS, GLDAS_MET_ERRORS, MetErrors, Reanalysis
from smda_twin.smap import SmapDay, SmapSimulator
from smda_twin.stations import Station, StationNetwork
from smda_twin.waterbalance import TruthModel, TruthParams, cell_land_mask
from smda_twin.weather import ACCUMULATED, INSTANT, Weather

__all__ = [
    "DEMO_REGION",
    "ERA5LAND_VARIABLES",
    "ERA5_VARIABLES",
    "GLDAS_SHAPE",
    "INVARIANTS",
    "PRODUCTS",
    "SECOND_REGION",
    "World",
    "WorldSpec",
]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]

DEMO_REGION = BBox(-105.0, 30.0, -95.0, 40.0)
"""The demo region (30–40° N, 105–95° W): the US southern Great Plains, semi-arid to
sub-humid, all land, with irrigation over the High Plains aquifer in its north-east."""
SECOND_REGION = BBox(110.0, 25.0, 120.0, 35.0)
"""A second climate for the OSSE (25–35° N, 110–120° E): south-east China, humid subtropical
monsoon with summer rains and denser vegetation."""

INVARIANTS = ("z", "lsm", "slt", "cvh", "cvl", "tvh", "tvl")
"""ERA5 invariant short names served by :meth:`World.invariants`."""
ERA5_VARIABLES = (*INSTANT, *ACCUMULATED, "tp", "swvl1", *INVARIANTS)
"""Short names :meth:`World.era5_hourly` serves."""
ERA5LAND_VARIABLES = (*INSTANT, *ACCUMULATED, "tp", "swvl1")
"""Short names :meth:`World.era5land_hourly` serves."""
PRODUCTS = ("smap", "era5land", "gldas", "ismn")
"""Names of the soil moisture products."""
GLDAS_SHAPE = (600, 1440)
"""GLDAS 0.25° grid: latitude −59.875 … 89.875 (ascending), longitude −179.875 … 179.875."""

_GLDAS_FILL = -9999.0
_G = 9.80665


@dataclass(frozen=True)
class WorldSpec:
    """Everything that defines a world (frozen: a world is a function of its spec).

    Parameters
    ----------
    seed:
        Seed of every random number.
    region:
        Where the truth and the soil moisture products exist (the rest of the globe has
        weather, precipitation and invariants only).
    epoch:
        Start of the truth and of the products (the water balances spin up before it).
    spinup_days:
        Days of water-balance spin-up before ``epoch`` (the root zone needs about a year).
    truth:
        How the truth is made (:class:`smda_twin.waterbalance.TruthParams`).
    mswep, mswep_nrt, era5_tp, gldas_rain:
        Errors of the precipitation products (:mod:`smda_twin.rainfall`).
    era5_met, gldas_met:
        Errors of the meteorological products (:mod:`smda_twin.reanalysis`).
    era5land, gldas:
        The land models behind the ERA5-Land-like and GLDAS-like products.
    smap, ismn:
        Errors of the SMAP retrievals and of the stations' sensors.
    n_stations:
        Number of ISMN-like stations in the region.
    """

    seed: int = 42
    region: BBox = DEMO_REGION
    epoch: date = date(2015, 1, 1)
    spinup_days: int = 365
    truth: TruthParams = field(default_factory=TruthParams)
    mswep: RainErrors = MSWEP_ERRORS
    mswep_nrt: NrtErrors = MSWEP_NRT_ERRORS
    era5_tp: RainErrors = ERA5_TP_ERRORS
    gldas_rain: RainErrors = GLDAS_RAIN_ERRORS
    era5_met: MetErrors = ERA5_MET_ERRORS
    gldas_met: MetErrors = GLDAS_MET_ERRORS
    era5land: LandProductSpec = ERA5LAND
    gldas: LandProductSpec = GLDAS
    smap: SmapErrors = SMAP_ERRORS
    ismn: ProductErrors = ISMN_ERRORS
    n_stations: int = 12


def _points(lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    return la, (lo + 180.0) % 360.0 - 180.0


def _check(variables: Sequence[str], valid: Sequence[str], what: str) -> None:
    unknown = [v for v in variables if v not in valid]
    if unknown:
        raise ValueError(f"{what} has no variable(s) {unknown}; valid short names: {list(valid)}")


class World:
    """A seeded synthetic world (see the module docstring)."""

    def __init__(self, spec: WorldSpec | None = None) -> None:
        self.spec = spec or WorldSpec()
        s = self.spec
        self.grid: Grid = GLOBAL_025.subset(s.region)
        """The smda 0.25° grid of the region (where the truth lives)."""
        self.geography = Geography(s.seed)
        self.weather = Weather(s.seed, self.geography)
        self.precipitation = Precipitation(s.seed, self.geography, self.weather)
        self.rain = {
            name: RainProduct(name, errors, self.precipitation)
            for name, errors in (
                ("mswep", s.mswep),
                ("era5_tp", s.era5_tp),
                ("gldas_rain", s.gldas_rain),
            )
        }
        """The precipitation products by name."""
        self.met = {
            "era5": Reanalysis("era5", s.era5_met, s.seed),
            "gldas_met": Reanalysis("gldas_met", s.gldas_met, s.seed),
        }
        """The meteorological products by name."""
        self._epoch = s.epoch.toordinal()
        land = cell_land_mask(self.grid, self.geography)
        self._stations = StationNetwork(
            s.seed, s.ismn, self.grid, self.geography, land, count=s.n_stations, epoch=self._epoch
        )
        self._truth = TruthModel(
            self.grid,
            self.geography,
            self.weather,
            self.precipitation,
            epoch=self._epoch,
            spinup_days=s.spinup_days,
            params=s.truth,
            sites=[(st.lat, st.lon) for st in self._stations.stations],
        )
        self._era5land, self._gldas = (
            LandProduct(
                name,
                spec,
                grid=self.grid,
                geography=self.geography,
                weather=self.weather,
                rain=self.rain[spec.rain],
                met=self.met[spec.met],
                epoch=self._epoch,
                spinup_days=s.spinup_days,
                block=self._truth.chain.block,
            )
            for name, spec in (("era5land", s.era5land), ("gldas", s.gldas))
        )
        self._smap = SmapSimulator(s.seed, s.smap, self.grid, self.geography, self.weather)

    # -- static ---------------------------------------------------------------------------------
    def invariants(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> dict[str, F32]:
        """ERA5 invariants at outer-product points: ``{short name: float32 (lat, lon)}``.

        ``z`` geopotential (m2 s-2), ``lsm`` land fraction (0–1), ``slt`` soil type (0 over
        sea, 1–7), ``cvh``/``cvl`` high/low vegetation cover (0–1), ``tvh``/``tvl``
        vegetation type codes (0 where there is none).
        """
        st = self.geography.statics(*_points(lat, lon))
        fields = {
            "z": st.elevation * _G,
            "lsm": st.lsm,
            "slt": st.slt,
            "cvh": st.cvh,
            "cvl": st.cvl,
            "tvh": st.tvh,
            "tvl": st.tvl,
        }
        return {k: np.asarray(v, dtype=np.float32) for k, v in fields.items()}

    def soil_properties(self) -> xr.Dataset:
        """Per-cell soil of the truth on :attr:`grid` (before the tiles' perturbations):
        ``porosity``, ``field_capacity``, ``wilting_point`` (m3 m-3, NaN over sea), ``slt``
        (soil type), ``land`` (bool) and ``irrigated`` (the irrigated share, 0–1)."""
        coords = self._coords()
        data = {k: (("lat", "lon"), v, {"units": "m3 m-3"}) for k, v in self._truth.soil.items()}
        slt = self.geography.statics(self.grid.lats, self.grid.lons).slt
        data["slt"] = (("lat", "lon"), slt, {"long_name": "ERA5 soil type"})
        data["land"] = (("lat", "lon"), self._truth.land, {})
        data["irrigated"] = (("lat", "lon"), self._truth.irrigated_share, {"units": "1"})
        return xr.Dataset(data, coords=coords)

    # -- ERA5 -----------------------------------------------------------------------------------
    def era5_series(
        self,
        first: date,
        n_days: int,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        variables: Sequence[str],
    ) -> dict[str, F32]:
        """ERA5 single-level fields at valid times 00…23 UTC of ``n_days`` days from ``first``.

        Parameters
        ----------
        lat, lon:
            1-D point coordinates (ERA5 uses multiples of 0.25°, latitude decreasing); fields
            are on their outer product. Any longitude convention.
        variables:
            Short names from :data:`ERA5_VARIABLES`: t2m, d2m (K), u10, v10 (m s-1), sp (Pa),
            ssrd, sshf, slhf (J m-2 over the hour ending at the valid time), tp (m, same),
            swvl1 (m3 m-3: the ERA5-Land product at these points; 0 over sea), and the
            invariants (constant in time). The meteorology carries ERA5's errors
            (``spec.era5_met``), ``tp`` is ERA5's own precipitation (``spec.era5_tp``).

        Returns
        -------
        ``{name: float32 (n_days, 24, lat, lon)}`` (invariants are read-only broadcast views).
        """
        _check(variables, ERA5_VARIABLES, "ERA5")
        la, lo = _points(lat, lon)
        d = first.toordinal()
        out: dict[str, F32] = {}
        met = [v for v in variables if v in INSTANT + ACCUMULATED]
        if met:
            true = self.weather.hourly(d, n_days, la, lo, met)
            out.update(self.met["era5"].hourly(true, d, la, lo))
        days = [first + timedelta(days=i) for i in range(n_days)]
        if "tp" in variables:
            tp = self.rain["era5_tp"]
            out["tp"] = np.stack([era5_tp(tp, day, la, lo, from_midnight=False) for day in days])
        if "swvl1" in variables:
            sea = ~self.geography.statics(la, lo).land
            layers = []
            for i in range(n_days):
                sm = self._era5land.hourly(d + i, la, lo, np.arange(24))
                layers.append(np.where(sea[None] | np.isnan(sm), np.float32(0.0), sm))
            out["swvl1"] = np.stack(layers)
        static = [v for v in variables if v in INVARIANTS]
        if static:
            inv = self.invariants(la, lo)
            shape = (n_days, 24, la.size, lo.size)
            out.update({k: np.broadcast_to(inv[k], shape) for k in static})
        return {v: out[v] for v in variables}

    def era5_hourly(
        self, day: date, lat: npt.ArrayLike, lon: npt.ArrayLike, variables: Sequence[str]
    ) -> dict[str, F32]:
        """:meth:`era5_series` of one day: ``{name: float32 (24, lat, lon)}``."""
        return {k: v[0] for k, v in self.era5_series(day, 1, lat, lon, variables).items()}

    def era5land_hourly(
        self, day: date, lat: npt.ArrayLike, lon: npt.ArrayLike, variables: Sequence[str]
    ) -> dict[str, F32]:
        """ERA5-Land fields at valid times 00…23 UTC of ``day`` at outer-product points
        (multiples of 0.1°): ``{name: float32 (24, lat, lon)}``, NaN over sea.

        Variables as :meth:`era5_hourly` (no invariants), with ERA5's meteorological errors,
        except that the accumulations (tp, ssrd, sshf, slhf) run from 00 UTC through the day:
        the value at 00 UTC is the previous day's total. ``swvl1`` is the ERA5-Land product
        (0–7 cm, :data:`smda_twin.products.ERA5LAND`).
        """
        _check(variables, ERA5LAND_VARIABLES, "ERA5-Land")
        la, lo = _points(lat, lon)
        d = day.toordinal()
        era5 = self.met["era5"]
        out: dict[str, F32] = {}
        inst = [v for v in variables if v in INSTANT]
        if inst:
            true = self.weather.hourly(d, 1, la, lo, inst)
            out.update({k: v[0] for k, v in era5.hourly(true, d, la, lo).items()})
        accum = [v for v in variables if v in ACCUMULATED]
        if accum:
            two = era5.hourly(self.weather.hourly(d - 1, 2, la, lo, accum), d - 1, la, lo)
            for k, v in two.items():
                acc = np.empty_like(v[1])
                acc[0] = v[0, 1:].sum(axis=0) + v[1, 0]
                np.cumsum(v[1, 1:], axis=0, out=acc[1:])
                out[k] = acc
        if "tp" in variables:
            out["tp"] = era5_tp(self.rain["era5_tp"], day, la, lo, from_midnight=True)
        if "swvl1" in variables:
            out["swvl1"] = self._era5land.hourly(d, la, lo, np.arange(24))
        sea = ~self.geography.statics(la, lo).land
        return {
            v: np.where(sea[None], np.float32(np.nan), out[v]).astype(np.float32) for v in variables
        }

    # -- MSWEP ----------------------------------------------------------------------------------
    def mswep_series(self, first: date, n_days: int, grid01: Grid = MSWEP_GRID) -> F32:
        """Final MSWEP daily precipitation (mm day-1, 00–24 UTC) of ``n_days`` days from
        ``first`` on a window of the global 0.1° grid: float32 (n_days, lat, lon)."""
        return self.rain["mswep"].on_window(first.toordinal(), n_days, grid01)

    def mswep_daily(self, day: date, grid01: Grid = MSWEP_GRID) -> F32:
        """Final MSWEP daily precipitation (mm day-1, 00–24 UTC) on a window of the global
        0.1° grid (default: all of it, 1800 × 3600): float32 (lat, lon)."""
        return np.asarray(self.mswep_series(day, 1, grid01)[0])

    def mswep_nrt(self, day: date, today: date, grid01: Grid = MSWEP_GRID) -> F32:
        """MSWEP NRT daily precipitation of ``day`` as published on ``today`` (mm day-1):
        revised daily in place, equal to :meth:`mswep_daily` from ``final_age_days`` on."""
        final = self.mswep_daily(day, grid01)
        return mswep_nrt(final, day, today, grid01, self.spec.seed, self.spec.mswep_nrt)

    def mswep_revision(self, day: date, today: date) -> int:
        """Revision number (0 … final_age_days, the last = final) of the NRT file of ``day``
        on ``today``."""
        age = (today - day).days
        if age < 0:
            raise ValueError(f"MSWEP NRT for {day} does not exist on {today} (it is in the future)")
        return min(age, self.spec.mswep_nrt.final_age_days)

    def forget_before(self, day: date) -> None:
        """Free the memoised days of the truth and of the land products before ``day``
        (:meth:`smda_twin.noise.BlockChain.forget_before`): what a day-by-day walk through a
        long period calls to keep its memory flat. Values are unchanged; an earlier day asked
        again is integrated anew from the spin-up."""
        for chain in (self._truth.chain, self._era5land.chain, self._gldas.chain):
            chain.forget_before(day.toordinal())

    # -- truth ----------------------------------------------------------------------------------
    def _truth_of(self, first: int, last: int | None = None, *, layer: int = 0) -> F32:
        series = self._truth.series(first, first if last is None else last)
        return series[:, layer]

    def _coords(self) -> dict[str, FloatArray]:
        return {"lat": self.grid.lats, "lon": self.grid.lons}

    def _time(self, start: date, end: date) -> pd.DatetimeIndex:
        return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D", name="time")

    def _cube(
        self, values: F32, start: date, end: date, name: str, attrs: dict[str, Any]
    ) -> xr.DataArray:
        return xr.DataArray(
            values,
            dims=("time", "lat", "lon"),
            coords={"time": self._time(start, end), **self._coords()},
            name=name,
            attrs=attrs,
        )

    def truth(self, start: date, end: date) -> xr.DataArray:
        """True 0–5 cm soil moisture (m3 m-3) of days ``start … end`` (inclusive, ≥ epoch)
        on :attr:`grid`: float32 (time, lat, lon), NaN over sea. Each value is the state at
        the end of the UTC day (:mod:`smda_twin.waterbalance`). For scoring only."""
        values = self._truth_of(start.toordinal(), end.toordinal())
        attrs = {"units": "m3 m-3", "long_name": "true surface (0-5 cm) soil moisture"}
        return self._cube(values, start, end, "soil_moisture", attrs)

    def root_zone(self, start: date, end: date) -> xr.DataArray:
        """True root-zone (5–45 cm) soil moisture (m3 m-3), like :meth:`truth`."""
        values = self._truth_of(start.toordinal(), end.toordinal(), layer=2)
        attrs = {"units": "m3 m-3", "long_name": "true root-zone (5-45 cm) soil moisture"}
        return self._cube(values, start, end, "root_zone", attrs)

    def snow(self, start: date, end: date) -> xr.DataArray:
        """Snow water equivalent (mm) of the truth's water balance, like :meth:`truth`."""
        values = self._truth_of(start.toordinal(), end.toordinal(), layer=1)
        return self._cube(values, start, end, "swe", {"units": "mm"})

    def true_forcing(self, start: date, end: date) -> xr.Dataset:
        """The truth's daily forcing on :attr:`grid` — which nothing serves: ``precip``
        (mm day-1), ``t2m`` (°C, daily mean), ``pet`` (mm day-1, Makkink) and
        ``storm_hours`` (h), each (time, lat, lon)."""
        first, last = start.toordinal(), end.toordinal()
        f = self._truth.forcing(first, last - first + 1)
        dims = ("time", "lat", "lon")
        coords = {"time": self._time(start, end), **self._coords()}
        return xr.Dataset(
            {
                "precip": (dims, f["precip"], {"units": "mm day-1"}),
                "t2m": (dims, f["t_mean"], {"units": "degC"}),
                "pet": (dims, f["pet"], {"units": "mm day-1"}),
                "storm_hours": (dims, f["storm_hours"], {"units": "h"}),
            },
            coords=coords,
        )

    # -- products -------------------------------------------------------------------------------
    @property
    def error_params(self) -> dict[str, Any]:
        """Every parameter of the truth and of the products' errors, by name."""
        s = self.spec
        return {
            "truth": s.truth,
            "mswep": s.mswep,
            "mswep_nrt": s.mswep_nrt,
            "era5_tp": s.era5_tp,
            "era5_met": s.era5_met,
            "gldas_rain": s.gldas_rain,
            "gldas_met": s.gldas_met,
            "era5land": s.era5land,
            "gldas": s.gldas,
            "smap": s.smap,
            "ismn": s.ismn,
        }

    def _smap_day(self, ease: EaseGrid, day: date) -> SmapDay:
        d = day.toordinal()
        return self._smap.day(ease, day, self._truth_of(d), self._truth_of(d, layer=1))

    def smap_l3e(self, day: date) -> SmapDay:
        """SPL3SMP_E-like retrievals of ``day`` on EASE-Grid 2.0 M09 (1624 × 3856), AM and
        PM passes (:mod:`smda_twin.smap`)."""
        return self._smap_day(M09, day)

    def smap_l3(self, day: date) -> SmapDay:
        """SPL3SMP-like retrievals of ``day`` on EASE-Grid 2.0 M36 (406 × 964)."""
        return self._smap_day(M36, day)

    def gldas_3h(self, time: datetime) -> F32:
        """GLDAS Noah ``SoilMoi0_10cm_inst`` (kg m-2 = 100 × m3 m-3) at ``time`` (UTC) on the
        GLDAS grid (600, 1440), latitude ascending; −9999 over sea and outside the region."""
        if time.tzinfo is not None:
            time = time.astimezone(UTC).replace(tzinfo=None)
        d = time.date().toordinal()
        g = self.grid
        hour = time.hour + time.minute / 60.0
        daily = self._gldas.daily(d, 1, g.lats, g.lons)[0]
        value = daily + self.spec.gldas.diurnal_amplitude * diurnal_term(hour, g.lons)[None, :]
        value = np.where(self._truth.land, value, np.nan)
        out = np.full(GLDAS_SHAPE, _GLDAS_FILL, dtype=np.float32)
        rows = 599 - g.rows  # GLDAS row i is latitude −59.875 + 0.25 i
        keep = (rows >= 0) & (rows < GLDAS_SHAPE[0])
        block = np.where(np.isfinite(value), 100.0 * value, _GLDAS_FILL).astype(np.float32)
        out[np.ix_(rows[keep], g.cols)] = block[keep]
        return out

    def stations(self) -> list[Station]:
        """The ISMN-like stations of the region (0.05 m sensors)."""
        return list(self._stations.stations)

    def station_hourly(self, station: Station, start: date, end: date) -> pd.DataFrame:
        """Hourly UTC series of a station for days ``start … end``: ``soil_moisture``
        (m3 m-3), ``soil_moisture_flag`` (G, D02 when freezing, C03 above saturation) and
        ``soil_moisture_orig_flag`` (M); see :mod:`smda_twin.stations`."""
        first, last = start.toordinal(), end.toordinal()
        column = self._truth.stations(first, last)[:, station.index].astype(np.float64)
        t2m = self.weather.hourly(first, last - first + 1, [station.lat], [station.lon], ["t2m"])[
            "t2m"
        ]
        porosity = float(self._truth.columns.sat[self._truth.station_column(station.index)])
        return self._stations.hourly(
            station, start, end, column, t2m[:, :, 0, 0].astype(np.float64), porosity
        )

    def ismn_daily(self, start: date, end: date) -> xr.DataArray:
        """Daily (UTC) means of the good (``G``) hourly values of every station, with at
        least 12 good hours: (time, station) m3 m-3, NaN otherwise."""
        columns = []
        for st in self.stations():
            df = self.station_hourly(st, start, end)
            good = df["soil_moisture"].where(df["soil_moisture_flag"] == "G")
            daily = good.resample("D").mean().where(good.resample("D").count() >= 12)
            columns.append(daily.to_numpy())
        return xr.DataArray(
            np.stack(columns, axis=1),
            dims=("time", "station"),
            coords={"time": self._time(start, end), "station": [s.id for s in self.stations()]},
            attrs={"units": "m3 m-3"},
        )

    def product_daily(self, name: str, start: date, end: date) -> xr.DataArray:
        """A product as daily values on :attr:`grid` (time, lat, lon), m3 m-3.

        ``smap``: mean of the recommended AM and PM M09 retrievals in each cell (NaN where
        none); ``era5land``/``gldas``: the product's run at the cell (the daily mean of its
        hourly values: the diurnal term averages out). For ``ismn`` use :meth:`ismn_daily`.
        """
        first, last = start.toordinal(), end.toordinal()
        n = last - first + 1
        if name == "smap":
            parts = []
            for c0 in range(0, n, 64):
                nd = min(64, n - c0)
                d0 = first + c0
                truth = self._truth_of(d0, d0 + nd - 1)
                snow = self._truth_of(d0, d0 + nd - 1, layer=1)
                parts.append(self._smap.binned(M09, d0, nd, truth, snow))
            values = np.concatenate(parts)
        elif name in ("era5land", "gldas"):
            model = self._era5land if name == "era5land" else self._gldas
            values = np.where(self._truth.land[None], model.series(first, last), np.nan)
            values = values.astype(np.float32)
        else:
            raise ValueError(
                f"no gridded daily product {name!r}; choose from smap, era5land, gldas"
            )
        return self._cube(values, start, end, name, {"units": "m3 m-3"})

    def true_skill(self, product: str | xr.DataArray, start: date, end: date) -> xr.Dataset:
        """Skill against the truth over ``start … end`` (:func:`smda_twin.products.true_skill`).

        ``product`` is a name from :data:`PRODUCTS` (for ``ismn``: per station, against the
        truth of the station's cell) or daily values on :attr:`grid` (time, lat, lon).
        """
        truth = self.truth(start, end)
        if isinstance(product, xr.DataArray):
            return true_skill(product.sel(time=truth.time), truth)
        if product == "ismn":
            obs = self.ismn_daily(start, end)
            lats = np.array([s.lat for s in self.stations()])
            lons = np.array([s.lon for s in self.stations()])
            rows, cols, _ = self.grid.locate(lats, lons)
            at = truth.values[:, rows, cols]
            return true_skill(obs, obs.copy(data=at))
        if product not in PRODUCTS:
            raise ValueError(f"unknown product {product!r}; choose from {list(PRODUCTS)}")
        return true_skill(self.product_daily(product, start, end), truth)

    def __repr__(self) -> str:
        s = self.spec
        return f"World(seed={s.seed}, region={s.region}, epoch={s.epoch}, grid={self.grid.shape})"
