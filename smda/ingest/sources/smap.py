"""SMAP L3 radiometer soil moisture (``SPL3SMP_E`` 9 km, or ``SPL3SMP`` 36 km) via earthaccess.

Per day: find the day's granule (one CMR search per month; the highest production counter
``_NNN`` wins), download it with size and integrity checks (the CMR checksum, or an HDF5 read),
read the AM and PM retrievals with their flags — only the band of grid rows the region needs —
keep recommended-quality retrievals only (frozen, snow and water cells excluded), and bin them
from EASE-Grid 2.0 onto the 0.25° grid (mean and count of valid retrievals per cell) through a
precomputed index.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, ClassVar, Final

import xarray as xr

from smda.geo import ease2
from smda.geo.ease2 import EaseGrid
from smda.ingest.readers.smap import check_hdf5, read_spl3smp
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.ingest.sources.earthdata import (
    batch_search,
    download_granule,
    granule_day,
    granule_url,
    newest_granule_day,
)
from smda.ingest.staging.smap import SmapBinIndex, bin_smap
from smda.storage.store import RawFile

__all__ = ["SMAP_FIRST_DAY", "SmapSource"]

PRODUCTS = {"SPL3SMP_E": ("006", ease2.M09), "SPL3SMP": ("009", ease2.M36)}
#: first day of the SMAP L3 radiometer archives (SPL3SMP and SPL3SMP_E alike)
SMAP_FIRST_DAY: Final[date] = date(2015, 3, 31)


class SmapSource(Source):
    name: ClassVar[str] = "smap"
    provider: ClassVar[str] = "earthdata"
    description: ClassVar[str] = "SMAP L3 SPL3SMP_E (9 km) AM+PM retrievals, binned to 0.25°"
    first_day: ClassVar[date | None] = SMAP_FIRST_DAY

    def __init__(self, short_name: str = "SPL3SMP_E") -> None:
        if short_name not in PRODUCTS:
            raise ValueError(f"unknown SMAP product {short_name!r}; choose {', '.join(PRODUCTS)}")
        self.short_name = short_name
        self.version, self.ease = PRODUCTS[short_name]

    def newest_available(self, ctx: IngestContext) -> date | None:
        return newest_granule_day(ctx, self.short_name, self.version)

    def request_for(self, days: tuple[date, ...], ctx: IngestContext) -> dict[str, Any]:
        b = ctx.grid.bounds
        return {
            "short_name": self.short_name,
            "version": self.version,
            "days": [d.isoformat() for d in days],
            "bounding_box": [b.west, b.south, b.east, b.north],
        }

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        granules = batch_search(ctx, task, self.short_name, self.version)
        best: dict[date, Any] = {}
        for granule in granules:
            day = granule_day(granule)
            name = granule_url(granule).rsplit("/", 1)[-1]
            if day in task.days and (
                day not in best or name > granule_url(best[day]).rsplit("/", 1)[-1]
            ):
                best[day] = granule
        out: dict[date, list[RawFile]] = defaultdict(list)
        for day, granule in sorted(best.items()):
            out[day].append(
                download_granule(ctx, granule, ctx.store.raw_dir(self.name), check=check_hdf5)
            )
        return dict(out)

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        index = _index(self.ease, ctx)
        granule = read_spl3smp(files[0].path, rows=index.row_band if index.size else None)
        if granule.grid != index.ease:  # not the product's grid: bin what the file holds
            index = _index(granule.grid, ctx)
            granule = read_spl3smp(files[0].path)
        return bin_smap(granule.passes, index, first_row=granule.first_row)


def _index(ease: EaseGrid, ctx: IngestContext) -> SmapBinIndex:
    """The bin index of ``ease`` onto the run's grid (built once per run)."""
    index: SmapBinIndex = ctx.memo(
        f"smap-index-{ease.name}", lambda: SmapBinIndex.build(ease, ctx.grid)
    )
    return index
