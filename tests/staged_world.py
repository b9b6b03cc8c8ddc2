"""Stage a twin world's products straight into a :class:`~smda.storage.store.Store` (no HTTP replicas).

Ingest through the twin's replicas costs seconds per day (and is tested in ``tests/ingest``);
tests and benchmarks that need *staged history* — training, the state chain, evaluation,
flows — use this module instead. It writes what ingest would write, with the same layout,
variable names, units, ledger records and provenance (:meth:`Store.write_staged`):

========== ================================================= ===================================
source     staged variables (lat, lon) per day               made from
========== ================================================= ===================================
era5       t2m_mean/min/max, d2m_mean (K), ssrd_sum (J m-2),  :meth:`World.era5_series` at the
           wind_mean (m s-1), sp_mean (Pa), tp_sum (mm);      cell centres (accumulations over
           attrs ``expver`` and ``provisional``               valid times 00–23 UTC)
mswep      precipitation (mm day-1)                           :meth:`World.mswep_series` (MSWEP
                                                              final, conservatively regridded)
smap       soil_moisture (m3 m-3), count (uint16)             :meth:`World.product_daily`
era5land   swvl1_mean (m3 m-3)                                :meth:`World.product_daily`
gldas      soil_moisture (m3 m-3)                             :meth:`World.product_daily`
static     ``staged/<region>/static/era5_static.nc``:         :func:`smda.ingest.staging.era5.era5_static`
           orography, lsm, slt, cvh, cvl, tvh, tvl, land      of :meth:`World.invariants`
========== ================================================= ===================================

Only the world's *served* products are staged, never its true forcing or truth (the twin is
fraternal: smda must not see what drives the truth). Simplifications (documented, deliberate): ERA5 aggregates are taken at the cell centres rather
than as the mean of the four surrounding ERA5 points; SMAP ``count`` is 1 where the day has a
value (the per-pass counts ``count_am``/``count_pm`` are not staged); the raw files named in the
provenance are not written (names follow the providers', digests are of the day's data).
Days without any SMAP retrieval in the region are still staged (all NaN), as ingest does.

Provisional data: with ``today`` given, ERA5 days younger than 60 days are ERA5T
(``expver`` 0005, provisional) and MSWEP days younger than 10 days NRT (provisional), as the
providers publish them; without it everything is final.

Speed: a 4 × 4-cell region (:data:`TINY_REGION`) over ~120 days stages in a few seconds.

Typical use::

    from staged_world import TINY_REGION, stage_world, tiny_world

    world = tiny_world()
    store = Store(tmp_path / "data", world.grid)
    stage_world(store, world, date(2015, 2, 1), date(2015, 5, 31))   # + 29 days of MSWEP before
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.geo.grid import BBox
from smda.geo.regrid import conservative
from smda.ingest.staging.era5 import era5_static
from smda.ingest.staging.precipitation import mswep_weights
from smda.science.bundle import HyperParams
from smda.science.model import CVConfig, TrainConfig
from smda.storage.atomic import atomic_path
from smda.storage.iolock import HDF5_IO
from smda.storage.store import RawFile, Store
from smda_twin.precipitation import MSWEP_GRID
from smda_twin.world import World, WorldSpec

__all__ = [
    "ALL_SOURCES",
    "ERA5_HOURLY",
    "HISTORY_DAYS",
    "LABEL_SOURCES",
    "TINY_REGION",
    "TINY_TRAINING",
    "StagedWorld",
    "stage_static",
    "stage_world",
    "tiny_world",
    "twin_era5",
    "twin_inputs",
    "twin_precip",
    "twin_smap",
    "twin_static",
]

TINY_REGION = BBox(-100.0, 35.0, -99.0, 36.0)
"""A 1° × 1° all-land region of the interior USA: 4 × 4 cells of the 0.25° grid."""
TINY_TRAINING = TrainConfig(
    hyper=HyperParams(
        learning_rate=0.1,
        num_leaves=7,
        min_data_in_leaf=20,
        max_rounds=60,
        early_stopping_rounds=10,
        num_threads=1,
    ),
    cv=CVConfig(n_folds=4, block_deg=0.5),
    compare=(),
    dagger_rounds=0,
)
"""The tests' tiny model: about a second to train on the 4 × 4 cells of :data:`TINY_REGION`
(one thread, as the tests share two cores; blocked CV over its four 0.5° tiles; DAgger is tested
in tests/science/test_model.py). Vary it with :func:`dataclasses.replace`."""
ALL_SOURCES = ("era5", "mswep", "smap", "era5land", "gldas")
"""Every gridded daily source :func:`stage_world` can stage."""
LABEL_SOURCES = ("smap", "era5land", "gldas")
"""The label products (smap is also the operational assimilated input)."""
HISTORY_DAYS = 30
"""Days of MSWEP history (ending at D) the default feature spec needs."""
ERA5_HOURLY = ["t2m", "d2m", "u10", "v10", "sp", "ssrd"]

_CHUNK_DAYS = 32  # days of hourly ERA5-like fields made at once
_ERA5T_DAYS = 60  # ERA5T (expver 0005) until final ERA5 replaces it (smda.ingest.sources.era5)
_MSWEP_NRT_DAYS = 10  # MSWEP NRT revision window (smda.ingest.sources.mswep)


def tiny_world(seed: int = 7, region: BBox = TINY_REGION, epoch: date = date(2015, 1, 1)) -> World:
    """A small, seeded twin world (default: 4 × 4 cells, products from 2015-01-01)."""
    return World(WorldSpec(seed=seed, region=region, epoch=epoch))


def _time(start: date, end: date) -> pd.DatetimeIndex:
    return pd.date_range(start, end, name="time")


def _era5_aggregates(
    world: World, first: date, n: int, *, tp: bool
) -> dict[str, npt.NDArray[np.floating]]:
    """Daily aggregates (n, lat, lon) of the ``n`` days from ``first`` as ingest makes them."""
    g = world.grid
    names = ERA5_HOURLY + (["tp"] if tp else [])
    h = world.era5_series(first, n, g.lats, g.lons, names)
    out = {
        "t2m_mean": h["t2m"].mean(axis=1),
        "t2m_min": h["t2m"].min(axis=1),
        "t2m_max": h["t2m"].max(axis=1),
        "d2m_mean": h["d2m"].mean(axis=1),
        "ssrd_sum": h["ssrd"].sum(axis=1),
        "wind_mean": np.hypot(h["u10"], h["v10"]).mean(axis=1),
        "sp_mean": h["sp"].mean(axis=1),
    }
    if tp:
        out["tp_sum"] = np.maximum(h["tp"].sum(axis=1) * 1000.0, 0.0)
    return out


def twin_era5(world: World, start: date, end: date, *, tp: bool = True) -> xr.Dataset:
    """ERA5 daily aggregates like :func:`smda.ingest.staging.era5.era5_daily` on ``world.grid``:
    (time, lat, lon) float32 for ``start … end``; ``tp_sum`` (mm) from ERA5's own
    precipitation when ``tp``. The hourly fields are made ``_CHUNK_DAYS`` days at a time
    (bounded memory for big regions; the world's days are independent)."""
    g = world.grid
    n = (end - start).days + 1
    parts = [
        _era5_aggregates(world, start + timedelta(days=i), min(_CHUNK_DAYS, n - i), tp=tp)
        for i in range(0, n, _CHUNK_DAYS)
    ]
    units = {"t2m_mean": "K", "t2m_min": "K", "t2m_max": "K", "d2m_mean": "K"}
    units |= {"ssrd_sum": "J m-2", "wind_mean": "m s-1", "sp_mean": "Pa", "tp_sum": "mm"}
    dims = ("time", "lat", "lon")
    data = {
        name: (dims, np.concatenate([p[name] for p in parts]), {"units": units[name]})
        for name in parts[0]
    }
    coords = {"time": _time(start, end), "lat": g.lats, "lon": g.lons}
    return xr.Dataset(data, coords=coords).astype(np.float32)


def twin_precip(world: World, start: date, end: date) -> xr.DataArray:
    """MSWEP final daily precipitation (mm day-1) conservatively regridded onto
    ``world.grid`` as ingest stages it: (time, lat, lon) float32."""
    g = world.grid
    window = MSWEP_GRID.subset(g.bounds)
    n = (end - start).days + 1
    field01 = world.mswep_series(start, n, window)
    values = conservative(field01, window, g, weights=mswep_weights(window, g))
    coords = {"time": _time(start, end), "lat": g.lats, "lon": g.lons}
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "lat", "lon"),
        coords=coords,
        name="precipitation",
        attrs={"units": "mm day-1"},
    )


def twin_static(world: World) -> xr.Dataset:
    """Static fields (:func:`smda.ingest.staging.era5.era5_static`) of the world's ERA5 invariants
    at the 0.25° points around ``world.grid``'s cells, with ``land``."""
    g = world.grid
    plat = np.arange(g.lats[0] + 0.125, g.lats[-1] - 0.2, -0.25)
    plon = np.arange(g.lons[0] - 0.125, g.lons[-1] + 0.2, 0.25)
    points = xr.Dataset(
        {k: (("latitude", "longitude"), v) for k, v in world.invariants(plat, plon).items()},
        coords={"latitude": plat, "longitude": plon},
    )
    return era5_static(points, g)


def twin_smap(world: World, start: date, end: date) -> xr.Dataset:
    """Staged-like SMAP (time, lat, lon): ``soil_moisture`` (m3 m-3, NaN without a
    retrieval) and ``count`` (uint16, 1 where there is a value)."""
    sm = world.product_daily("smap", start, end)
    return xr.Dataset(
        {
            "soil_moisture": sm.astype(np.float32).assign_attrs(units="m3 m-3"),
            "count": sm.notnull().astype(np.uint16).assign_attrs(units="1"),
        }
    )


def twin_inputs(
    world: World, start: date, end: date, history: int = HISTORY_DAYS
) -> tuple[xr.Dataset, xr.DataArray, xr.Dataset]:
    """In-memory staged-like inputs on ``world.grid`` (the science tests' helper).

    Returns
    -------
    ERA5 daily aggregates (time, lat, lon) of ``start … end`` (without ``tp_sum``); MSWEP
    daily precipitation (mm day-1) from ``history − 1`` days before ``start`` to ``end``; the
    static fields (lat, lon) with ``land``.
    """
    precip = twin_precip(world, start - timedelta(days=history - 1), end)
    return twin_era5(world, start, end, tp=False), precip, twin_static(world)


@dataclass(frozen=True)
class StagedWorld:
    """What :func:`stage_world` staged: the days per source and whether the static was."""

    days: dict[str, list[date]]
    static: bool

    def first(self, source: str) -> date:
        return self.days[source][0]

    def last(self, source: str) -> date:
        return self.days[source][-1]


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(
            np.asarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode()
        )
    return h.hexdigest()


def _raw_names(source: str, day: date) -> list[str]:
    """The providers' file names for ``day`` (what the ledger would list)."""
    if source == "era5":
        return [f"era5_{day:%Y%m}.nc"]
    if source == "era5land":
        return [f"era5land_{day:%Y%m}.nc"]
    if source == "mswep":
        return [f"{day:%Y%j}.nc"]
    if source == "smap":
        return [f"SMAP_L3_SM_P_E_{day:%Y%m%d}_R19240_001.h5"]
    return [f"GLDAS_NOAH025_3H.A{day:%Y%m%d}.{h:02d}00.021.nc4" for h in range(0, 24, 3)]


def _raw_files(
    store: Store, source: str, day: date, data: xr.Dataset, seed: int, today: date | None
) -> list[RawFile]:
    age = (today - day).days if today is not None else None
    era5t = source == "era5" and age is not None and age < _ERA5T_DAYS
    nrt = source == "mswep" and age is not None and age < _MSWEP_NRT_DAYS
    arrays = [np.ascontiguousarray(data[v].values) for v in sorted(map(str, data.data_vars))]
    files = []
    for name in _raw_names(source, day):
        digest = _digest(seed, name, *arrays)
        version = {"era5": f"expver={'0005' if era5t else '0001'}", "era5land": "expver=0001"}
        files.append(
            RawFile(
                path=store.root / "raw" / source / name,
                name=name,
                size=sum(a.nbytes for a in arrays),
                sha256=digest,
                version=version.get(source, f'"{digest[:16]}"'),
                provisional=era5t or nrt,
                part=day.isoformat() if source in ("era5", "era5land") else "",
                part_sha256=digest if source in ("era5", "era5land") else "",
            )
        )
    return files


def _daily(world: World, source: str, start: date, end: date) -> xr.Dataset:
    """The (time, lat, lon) dataset of ``source`` as staged (names and units of ingest)."""
    if source == "era5":
        return twin_era5(world, start, end)
    if source == "mswep":
        return twin_precip(world, start, end).to_dataset()
    if source == "smap":
        return twin_smap(world, start, end)
    if source == "era5land":
        sm = world.product_daily("era5land", start, end).astype(np.float32)
        return sm.rename("swvl1_mean").assign_attrs(units="m3 m-3").to_dataset()
    if source == "gldas":
        sm = world.product_daily("gldas", start, end).astype(np.float32)
        return sm.rename("soil_moisture").assign_attrs(units="m3 m-3").to_dataset()
    raise ValueError(f"stage_world cannot stage {source!r}; choose from {ALL_SOURCES}")


def _stage_source(
    store: Store,
    world: World,
    source: str,
    span: tuple[date, date],
    today: date | None,
    skip: set[date],
) -> list[date]:
    series = _daily(world, source, *span)
    days = [d.date() for d in pd.DatetimeIndex(series["time"].values)]
    with store.ledger(source).batch():  # one ledger save per source, not one per day
        for i, day in enumerate(days):
            if day in skip:
                continue
            one = series.isel(time=i, drop=True)
            files = _raw_files(store, source, day, one, world.spec.seed, today)
            if source == "era5":
                expver = files[0].version.removeprefix("expver=")
                one = one.assign_attrs(expver=expver, provisional=int(expver == "0005"))
            store.write_staged(source, day, one, files, request={"twin": "staged_world"})
    return [d for d in days if d not in skip]


def stage_static(store: Store, world: World) -> None:
    """Write ``staged/<region>/static/era5_static.nc`` as ``smda.ingest.sources.era5.stage_static``."""
    static = twin_static(world)
    static.attrs.update(
        smda_source_file=f"era5_invariants_{store.region}.nc",
        smda_source_sha256=_digest(world.spec.seed, "invariants", static["orography"].values),
        smda_created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with HDF5_IO, atomic_path(store.static_path("era5_static")) as tmp:
        static.to_netcdf(tmp)


def stage_world(
    store: Store,
    world: World,
    start: date,
    end: date,
    *,
    sources: Iterable[str] = ALL_SOURCES,
    history_days: int = HISTORY_DAYS,
    static: bool = True,
    today: date | None = None,
    skip: Sequence[tuple[str, date]] = (),
) -> StagedWorld:
    """Stage the world's daily products of ``start … end`` into ``store`` as ingest would.

    Parameters
    ----------
    store:
        The target store; its grid must be ``world.grid``.
    world:
        The twin world (its products exist from ``world.spec.epoch``).
    start, end:
        Days to stage (inclusive).
    sources:
        Any of :data:`ALL_SOURCES`.
    history_days:
        MSWEP is staged from ``history_days − 1`` days before ``start`` so that every day of
        the period has its precipitation history (1: no extra days).
    static:
        Also stage the static fields (with the land mask).
    today:
        The providers' "today": marks ERA5T and MSWEP NRT days provisional (module doc).
    skip:
        ``(source, day)`` pairs *not* to stage (to make gaps).

    Returns
    -------
    :class:`StagedWorld` with the staged days per source.
    """
    if store.grid != world.grid:
        raise ValueError(f"store grid {store.grid} is not the world's grid {world.grid}")
    staged: dict[str, list[date]] = {}
    for source in sources:
        first = start - timedelta(days=history_days - 1) if source == "mswep" else start
        gaps = {d for s, d in skip if s == source}
        staged[source] = _stage_source(store, world, source, (first, end), today, gaps)
    if static:
        stage_static(store, world)
    return StagedWorld(staged, static)
