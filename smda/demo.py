"""The README's run command on the offline twin: fetch one day through the real clients.

Until the end-to-end demo exists (train → backfill → daily → publish), ``smda demo`` starts
the offline twin, then fetches one published day of each operational input — ERA5 hourly
forcings from the CDS replica with ``cdsapi``, SMAP L3 granules from the Earthdata replica with
``earthaccess``, the MSWEP daily file with ``requests`` — into ``<data_dir>/raw``, and reports
what it obtained.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import xarray as xr

from smda.atomic import atomic_path
from smda.clients import TIMEOUT, cds_client, client_env, earthdata_login, http_session
from smda.endpoints import Endpoints
from smda.grid import GLOBAL_025, BBox
from smda.iolock import HDF5_IO
from smda.landmask import land_mask
from smda.sources.era5 import FORCING_VARIABLES

__all__ = ["FetchedFile", "fetch_one_day"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedFile:
    source: str
    path: Path
    size: int
    note: str = ""


def fetch_land_mask(client: Any, region: BBox, dest: Path) -> FetchedFile:
    """Fetch ERA5's land–sea mask for ``region`` and derive the analysis grid's land mask."""
    target = dest / "era5" / "era5_invariants_lsm.nc"
    with atomic_path(target) as tmp:
        client.retrieve(
            "reanalysis-era5-single-levels",
            {
                "product_type": ["reanalysis"],
                "variable": ["land_sea_mask"],
                "year": ["2020"],
                "month": ["01"],
                "day": ["01"],
                "time": ["00:00"],
                "area": [region.north, region.west, region.south, region.east],
                "data_format": "netcdf",
                "download_format": "unarchived",
            },
            str(tmp),
        )
    with HDF5_IO, xr.open_dataset(target) as ds:
        mask = land_mask(ds["lsm"].load(), GLOBAL_025.subset(region))
    note = f"{int(mask.sum())} of {mask.size} cells are land"
    return FetchedFile("era5 lsm", target, target.stat().st_size, note)


def fetch_one_day(endpoints: Endpoints, day: date, region: BBox, dest: Path) -> list[FetchedFile]:
    """Fetch ERA5, SMAP L3 (SPL3SMP_E) and MSWEP for ``day`` over ``region`` into ``dest``."""
    with client_env(endpoints):
        return _fetch(endpoints, day, region, dest)


def _fetch(endpoints: Endpoints, day: date, region: BBox, dest: Path) -> list[FetchedFile]:
    fetched: list[FetchedFile] = []
    dest.mkdir(parents=True, exist_ok=True)

    era5_target = dest / "era5" / f"era5_{day:%Y%m%d}.nc"
    era5_target.parent.mkdir(parents=True, exist_ok=True)
    client = cds_client(endpoints)
    fetched.append(fetch_land_mask(client, region, dest))
    with atomic_path(era5_target) as tmp:
        client.retrieve(
            "reanalysis-era5-single-levels",
            {
                "product_type": ["reanalysis"],
                "variable": FORCING_VARIABLES,
                "year": [f"{day:%Y}"],
                "month": [f"{day:%m}"],
                "day": [f"{day:%d}"],
                "time": [f"{h:02d}:00" for h in range(24)],
                "area": [region.north, region.west, region.south, region.east],
                "data_format": "netcdf",
                "download_format": "unarchived",
            },
            str(tmp),
        )
    if zipfile.is_zipfile(era5_target):
        # Mixed instantaneous + accumulated variables: the CDS answers with a ZIP.
        era5_target = era5_target.replace(era5_target.with_suffix(".zip"))
    fetched.append(FetchedFile("era5", era5_target, era5_target.stat().st_size))

    import earthaccess

    earthdata_login(endpoints)
    granules = earthaccess.search_data(
        short_name="SPL3SMP_E",
        version="006",
        temporal=(f"{day.isoformat()}T00:00:00Z", f"{day.isoformat()}T23:59:59Z"),
        bounding_box=(region.west, region.south, region.east, region.north),
    )
    smap_dir = dest / "smap"
    for path in earthaccess.download(granules, str(smap_dir), show_progress=False):
        p = Path(path)
        fetched.append(FetchedFile("smap", p, p.stat().st_size))

    url = endpoints.mswep.url_template.format(yyyy=f"{day:%Y}", ddd=f"{day:%j}")
    mswep_target = dest / "mswep" / f"{day:%Y%j}.nc"
    with (
        http_session(endpoints) as session,
        session.get(url, timeout=TIMEOUT, stream=True) as response,
    ):
        response.raise_for_status()
        with atomic_path(mswep_target) as tmp, tmp.open("wb") as fh:
            for chunk in response.iter_content(1 << 20):
                fh.write(chunk)
    fetched.append(FetchedFile("mswep", mswep_target, mswep_target.stat().st_size))
    return fetched
