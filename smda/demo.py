"""The README's run command on the offline twin: fetch one day through the real clients.

Until the end-to-end demo exists (train → backfill → daily → publish), ``smda demo`` starts
the offline twin, then fetches one published day of each operational input — ERA5 hourly
forcings from the CDS replica with ``cdsapi``, SMAP L3 granules from the Earthdata replica with
``earthaccess``, the MSWEP daily file with ``requests`` — into ``<data_dir>/raw``, and reports
what it obtained.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from smda.atomic import atomic_path
from smda.clients import TIMEOUT, cds_client, earthdata_login, http_session
from smda.endpoints import Endpoints
from smda.grid import BBox

__all__ = ["FetchedFile", "fetch_one_day"]

LOG = logging.getLogger(__name__)

ERA5_VARIABLES = [
    "2m_temperature",
    "2m_dewpoint_temperature",
    "surface_solar_radiation_downwards",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "surface_pressure",
    "total_precipitation",
]


@dataclass(frozen=True)
class FetchedFile:
    source: str
    path: Path
    size: int


def fetch_one_day(endpoints: Endpoints, day: date, region: BBox, dest: Path) -> list[FetchedFile]:
    """Fetch ERA5, SMAP L3 (SPL3SMP_E) and MSWEP for ``day`` over ``region`` into ``dest``."""
    fetched: list[FetchedFile] = []
    dest.mkdir(parents=True, exist_ok=True)

    era5_target = dest / "era5" / f"era5_{day:%Y%m%d}.nc"
    era5_target.parent.mkdir(parents=True, exist_ok=True)
    client = cds_client(endpoints)
    with atomic_path(era5_target) as tmp:
        client.retrieve(
            "reanalysis-era5-single-levels",
            {
                "product_type": ["reanalysis"],
                "variable": ERA5_VARIABLES,
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
    fetched.append(FetchedFile("era5", era5_target, era5_target.stat().st_size))

    import earthaccess

    earthdata_login(endpoints)
    granules = earthaccess.search_data(
        short_name="SPL3SMP_E",
        version="006",
        temporal=(day.isoformat(), (day + timedelta(days=1)).isoformat()),
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
