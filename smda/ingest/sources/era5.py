"""ERA5 forcings and ERA5-Land soil moisture from the Copernicus CDS (``cdsapi``).

- ``era5``: hourly single-level forcings (t2m, d2m, ssrd, u10, v10, sp, tp) for month-sized
  requests over the region, staged as daily aggregates on the grid; ``expver`` is tracked per
  day (ERA5T "0005" is provisional and is re-checked once it is old enough to have become final
  ERA5 "0001"). The ERA5 invariants are staged once as static fields (:func:`stage_static`).
- ``era5land``: hourly ERA5-Land ``swvl1`` (0.1°), staged as daily means on the grid — a
  training-label product.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import numpy as np
import xarray as xr

from smda.ingest.readers.era5 import open_era5
from smda.ingest.retry import retry_call
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.ingest.sources.cds import cds, classify_cds, request_hash, retrieve
from smda.ingest.staging.era5 import era5_daily, era5_static
from smda.ingest.staging.labels import era5land_daily
from smda.storage.atomic import atomic_path
from smda.storage.iolock import HDF5_IO
from smda.storage.store import DayRecord, JsonMap, RawFile, sha256_file

__all__ = ["ERA5_FIRST_DAY", "ERA5_LAND_FIRST_DAY", "Era5LandSource", "Era5Source", "stage_static"]

LOG = logging.getLogger(__name__)

#: first day of the ERA5 hourly single-levels archive (the back extension to 1940)
ERA5_FIRST_DAY: Final[date] = date(1940, 1, 1)
#: first day of the ERA5-Land hourly archive
ERA5_LAND_FIRST_DAY: Final[date] = date(1950, 1, 1)
#: ERA5T is replaced by final ERA5 two to three months later: re-check provisional days this old
FINAL_AFTER_DAYS = 60
#: ERA5 accumulations of day D: the 24 hourly values with valid times 00:00–23:00 of D (the
#: 24 h ending 23:00 UTC), so a day needs only its own request and is staged as soon as it is
#: published (the exact 00–24 UTC window would wait for D+1's 00:00 field).
ACCUMULATION_WINDOW: Literal["valid_date"] = "valid_date"
#: how often (days) a still-provisional old day is re-checked
RECHECK_EVERY_DAYS = 7

FORCING_VARIABLES = [
    "2m_temperature",
    "2m_dewpoint_temperature",
    "surface_solar_radiation_downwards",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "surface_pressure",
    "total_precipitation",
]
INVARIANT_VARIABLES = [
    "geopotential",
    "land_sea_mask",
    "soil_type",
    "high_vegetation_cover",
    "low_vegetation_cover",
    "type_of_high_vegetation",
    "type_of_low_vegetation",
]


def _area(ctx: IngestContext) -> list[float]:
    """[N, W, S, E] of the grid window: the ERA5 points around every cell."""
    b = ctx.grid.bounds
    return [b.north, b.west, b.south, b.east]


def _day_digest(ds: xr.Dataset) -> str:
    """Digest of one day's data and its ``expver`` (ERA5T → final changes it even if values do not)."""
    digest = hashlib.sha256()
    if "expver" in ds.coords:
        digest.update(",".join(str(v) for v in np.atleast_1d(ds["expver"].values)).encode())
    for name in sorted(str(v) for v in ds.data_vars):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(ds[name].values).tobytes())
    return digest.hexdigest()


def _open_cached(path: Path, ctx: IngestContext, source: str) -> xr.Dataset:
    """Open a (month-sized) raw file once for all the days staged from it (the last file of
    each source kept: ERA5 and ERA5-Land are staged concurrently)."""
    key = (str(path), path.stat().st_mtime_ns)
    slot = f"{source}-open"
    with ctx.lock:
        last = ctx.cache.get(slot)
        if last is not None and last[0] == key:
            return last[1]  # type: ignore[no-any-return]
    ds = open_era5(path)
    with ctx.lock:
        ctx.cache[slot] = (key, ds)
    return ds


class _RawIndex:
    """Which raw file holds which day (``raw/<source>/.days.json``), to resume after a crash."""

    def __init__(self, path: Path) -> None:
        self.map = JsonMap(path)

    def files_for(self, days: Sequence[date]) -> dict[Path, list[date]] | None:
        known = self.map.load()
        out: dict[Path, list[date]] = {}
        for day in days:
            name = known.get(day.isoformat())
            path = self.map.path.parent / name if name else None
            if path is None or not path.exists():
                return None
            out.setdefault(path, []).append(day)
        return out

    def record(self, path: Path, days: Sequence[date]) -> None:
        self.map.update({d.isoformat(): path.name for d in days})


class _CdsSource(Source):
    provider: ClassVar[str] = "cds"
    dataset: ClassVar[str]
    variables: ClassVar[list[str]]
    max_days_per_task: ClassVar[int] = 31

    def newest_available(self, ctx: IngestContext) -> date | None:
        def ask() -> date | None:
            end: datetime | None = cds(ctx).client.get_collection(self.dataset).end_datetime
            if end is None:
                return None
            end = end.astimezone(UTC) if end.tzinfo else end
            # a day is complete when its 23:00 field is published
            newest: date = end.date() if end.hour >= 23 else end.date() - timedelta(days=1)
            return newest

        return retry_call(
            ask,
            what=f"{self.name}: CDS catalogue of {self.dataset}",
            policy=ctx.policy,
            classify_error=classify_cds,
        )

    def request_for(self, days: tuple[date, ...], ctx: IngestContext) -> dict[str, Any]:
        request: dict[str, Any] = {
            "variable": list(self.variables),
            "year": sorted({f"{d:%Y}" for d in days}),
            "month": sorted({f"{d:%m}" for d in days}),
            "day": sorted({f"{d:%d}" for d in days}),
            "time": [f"{h:02d}:00" for h in range(24)],
            "area": _area(ctx),
            "data_format": "netcdf",
            "download_format": "unarchived",
        }
        if self.dataset == "reanalysis-era5-single-levels":
            request["product_type"] = ["reanalysis"]
        return request

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        raw_dir = ctx.store.raw_dir(self.name)
        index = _RawIndex(raw_dir / ".days.json")
        ledger = ctx.store.ledger(self.name)
        cached = index.files_for(task.days)
        if cached is not None and all(ledger.get(d) is None for d in task.days):
            # downloaded by an interrupted run but not staged yet: resume from the raw cache
            LOG.info("%s: staging from the raw cache", task.key)
            out: dict[date, list[RawFile]] = {}
            for path, days in cached.items():
                out.update(self._split_days(path, days, ctx))
            return out
        stem = f"{self.name}_{ctx.store.region}_{task.days[0]:%Y%m%d}_{task.days[-1]:%Y%m%d}_{request_hash(self.dataset, task.request)[:8]}"
        target = raw_dir / f"{stem}.nc"
        retrieve(
            self.dataset,
            task.request,
            target,
            ctx,
            what=f"{task.key} ({self.dataset})",
            check=open_era5,
        )
        if zipfile.is_zipfile(target):
            target = target.replace(target.with_suffix(".zip"))
        delivered = self._split_days(target, task.days, ctx)
        index.record(target, list(delivered))
        return delivered

    def _split_days(
        self, path: Path, wanted: Sequence[date], ctx: IngestContext
    ) -> dict[date, list[RawFile]]:
        ds = _open_cached(path, ctx, self.name)
        file_sha = sha256_file(path)
        size = path.stat().st_size
        days = np.asarray(ds["time"].values).astype("datetime64[D]")
        out: dict[date, list[RawFile]] = {}
        for day in wanted:
            sel = days == np.datetime64(day, "D")
            if not sel.any():
                continue
            part = ds.isel(time=np.flatnonzero(sel))
            expvers = (
                sorted({str(v) for v in np.atleast_1d(part["expver"].values)})
                if "expver" in part.coords
                else [""]
            )
            out[day] = [
                RawFile(
                    path=path,
                    name=path.name,
                    size=size,
                    sha256=file_sha,
                    version="expver=" + ",".join(expvers),
                    provisional="0005" in expvers,
                    part=day.isoformat(),
                    part_sha256=_day_digest(part),
                )
            ]
        return out

    def needs_refresh(self, day: date, record: DayRecord, ctx: IngestContext) -> bool:
        """Re-check an ERA5T day once final ERA5 may have replaced it (then weekly)."""
        if not record.provisional or (ctx.today - day).days < FINAL_AFTER_DAYS:
            return False
        checked = date.fromisoformat(record.checked_on) if record.checked_on else day
        return (ctx.today - checked).days >= RECHECK_EVERY_DAYS


class Era5Source(_CdsSource):
    name: ClassVar[str] = "era5"
    description: ClassVar[str] = (
        "ERA5 hourly single-level forcings (CDS), staged as daily aggregates"
    )
    dataset: ClassVar[str] = "reanalysis-era5-single-levels"
    variables: ClassVar[list[str]] = FORCING_VARIABLES
    first_day: ClassVar[date | None] = ERA5_FIRST_DAY

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        ds = _open_cached(files[0].path, ctx, self.name)
        staged = era5_daily(ds, day, ctx.grid, window=ACCUMULATION_WINDOW)
        staged.attrs["expver"] = files[0].version.removeprefix("expver=")
        return staged


class Era5LandSource(_CdsSource):
    name: ClassVar[str] = "era5land"
    description: ClassVar[str] = (
        "ERA5-Land swvl1 (CDS, 0.1°), staged as daily means (training label)"
    )
    dataset: ClassVar[str] = "reanalysis-era5-land"
    variables: ClassVar[list[str]] = ["volumetric_soil_water_layer_1"]
    first_day: ClassVar[date | None] = ERA5_LAND_FIRST_DAY

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        ds = _open_cached(files[0].path, ctx, self.name)
        staged = era5land_daily(ds, day, ctx.grid, window=ACCUMULATION_WINDOW)
        return staged if isinstance(staged, xr.Dataset) else staged.to_dataset(name="swvl1")


def stage_static(ctx: IngestContext) -> Path:
    """Fetch the ERA5 invariants once and stage the static fields (and land mask) on the grid."""
    target = ctx.store.static_path("era5_static")
    if target.exists():
        return target
    request = {
        "product_type": ["reanalysis"],
        "variable": INVARIANT_VARIABLES,
        "year": ["2020"],
        "month": ["01"],
        "day": ["01"],
        "time": ["00:00"],
        "area": _area(ctx),
        "data_format": "netcdf",
        "download_format": "unarchived",
    }
    raw = ctx.store.raw_dir("era5") / f"era5_invariants_{ctx.store.region}.nc"
    if not raw.exists():
        retrieve(
            "reanalysis-era5-single-levels",
            request,
            raw,
            ctx,
            what="era5 invariants",
            check=open_era5,
        )
    static = era5_static(open_era5(raw), ctx.grid)
    static.attrs["smda_source_file"] = raw.name
    static.attrs["smda_source_sha256"] = sha256_file(raw)
    static.attrs["smda_created"] = datetime.now(UTC).isoformat(timespec="seconds")
    with HDF5_IO, atomic_path(target) as tmp:
        static.to_netcdf(tmp)
    return target
