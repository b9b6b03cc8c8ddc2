"""GLDAS Noah 0.25° 3-hourly soil moisture (``GLDAS_NOAH025_3H`` 2.1) via earthaccess.

A training-label product (latency 1.5–4 months, never an operational input): the eight
3-hourly granules of a day (found by one CMR search per month) are downloaded with size and
integrity checks (the CMR checksum, or a netCDF read), ``SoilMoi0_10cm_inst`` (kg m-2) is
converted to m3 m-3 (÷ 100 for the 0–10 cm layer), and the daily mean is staged on the grid.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import ClassVar, Final

import xarray as xr

from smda.ingest.readers.gldas import open_gldas
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.ingest.sources.earthdata import (
    batch_search,
    download_granule,
    granule_day,
    newest_granule_day,
)
from smda.ingest.staging.labels import gldas_daily
from smda.storage.store import RawFile

__all__ = ["GLDAS_FIRST_DAY", "GldasSource"]

#: first day of GLDAS Noah 2.1 (``GLDAS_NOAH025_3H`` v2.1)
GLDAS_FIRST_DAY: Final[date] = date(2000, 1, 1)


def _check(path: Path) -> None:
    open_gldas(path).close()


class GldasSource(Source):
    name: ClassVar[str] = "gldas"
    provider: ClassVar[str] = "earthdata"
    description: ClassVar[str] = (
        "GLDAS Noah 2.1 0–10 cm soil moisture (3-hourly), daily means (training label)"
    )
    short_name = "GLDAS_NOAH025_3H"
    version = "2.1"
    first_day: ClassVar[date | None] = GLDAS_FIRST_DAY

    def newest_available(self, ctx: IngestContext) -> date | None:
        return newest_granule_day(ctx, self.short_name, self.version, lookback=120)

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        granules = batch_search(ctx, task, self.short_name, self.version)
        out: dict[date, list[RawFile]] = defaultdict(list)
        for granule in granules:
            day = granule_day(granule)
            if day in task.days:
                out[day].append(
                    download_granule(ctx, granule, ctx.store.raw_dir(self.name), check=_check)
                )
        return {d: sorted(files, key=lambda f: f.name) for d, files in out.items()}

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        fields = [open_gldas(f.path) for f in files]
        return gldas_daily(fields, ctx.grid).to_dataset(name="soil_moisture")
