"""A day's state as a Cloud-Optimized GeoTIFF.

The COG (EPSG:4326, north-up, 0.25° cells on the bounds of the region grid, 256 × 256 tiles,
DEFLATE, overviews when the grid is larger than a tile, written by rio-cogeo) has four float32
bands, all NaN (the nodata value) over sea — cells without :data:`~smda.science.cycle.FLAG_LAND` or
without an analysis:

1. ``analysis``: surface (0–5 cm) soil moisture analysis, m3 m-3 (exactly the state's values);
2. ``uncertainty``: error standard deviation of the analysis, m3 m-3;
3. ``obs_count``: SMAP retrievals in the cell's daily mean (0 when none), unit 1;
4. ``flags``: the cycle's bit flags (1 land, 2 SMAP assimilated (nudged), 4 retrieval not
   matched, 8 forecast-only day, 16 state filled from climatology), an integer in float32.

Band descriptions and ``units`` band tags say the same (rio-cogeo forwards band tags, not
GDAL's unit type); dataset tags carry the day and the provenance (``SMDA_PROVENANCE``, JSON,
secrets removed: :func:`smda.storage.provenance.public_provenance`). Overviews use
nearest-neighbour resampling, so a flag or count stays a valid value at every zoom level.

Written atomically (temporary sibling, then rename); the same inputs give byte-identical files
(GDAL writes no timestamps).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import xarray as xr
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from smda.geo.grid import Grid
from smda.science.cycle import FLAG_LAND
from smda.storage.atomic import atomic_path
from smda.storage.chain import canonical_provenance

__all__ = ["BANDS", "TILE", "BandSpec", "cog_bands", "cog_tags", "grid_of", "write_cog"]

TILE = 256
"""COG tile size (pixels)."""


@dataclass(frozen=True)
class BandSpec:
    """One COG band: the state variable it holds, its description and unit."""

    name: str
    description: str
    unit: str


BANDS = (
    BandSpec("analysis", "surface (0-5 cm) soil moisture analysis", "m3 m-3"),
    BandSpec("uncertainty", "error standard deviation of the analysis", "m3 m-3"),
    BandSpec("obs_count", "SMAP retrievals in the cell's daily mean", "1"),
    BandSpec(
        "flags",
        "bit flags: 1 land, 2 SMAP assimilated, 4 retrieval not matched, "
        "8 forecast-only day, 16 state filled from climatology",
        "1",
    ),
)
"""The COG's bands, in order (band 1 first)."""


def grid_of(ds: xr.Dataset) -> Grid:
    """The window of the global grid that the (north-up) lat/lon coordinates are."""
    lat = np.asarray(ds["lat"].values, dtype=np.float64)
    lon = np.asarray(ds["lon"].values, dtype=np.float64)
    steps = np.abs(np.diff(lat)).tolist() + np.abs(np.diff(lon) % 360.0).tolist()
    res = float(steps[0]) if steps else 0.25
    n_lon = round(360.0 / res)
    row0 = round((90.0 - lat[0]) / res - 0.5)
    col0 = round((lon[0] + 180.0) / res - 0.5) % n_lon
    grid = Grid(res, row0, col0, lat.size, lon.size)
    if not (np.allclose(grid.lats, lat) and np.allclose(grid.lons, (lon + 180.0) % 360.0 - 180.0)):
        raise ValueError(
            f"the dataset's lat/lon ({lat.size} × {lon.size}) are not a north-up window of the "
            f"global {res}° grid: publish the state as the chain stores it"
        )
    return grid


def cog_bands(ds: xr.Dataset) -> npt.NDArray[np.float32]:
    """The COG's bands (band, lat, lon), float32, NaN over sea."""
    missing = [b.name for b in BANDS if b.name not in ds.data_vars]
    if missing:
        raise ValueError(f"cannot publish: the dataset lacks {missing} (read it from the chain)")
    stack = np.stack(
        [np.asarray(ds[b.name].transpose("lat", "lon").values, np.float32) for b in BANDS]
    )
    flags = np.asarray(ds["flags"].transpose("lat", "lon").values).astype(np.uint8)
    sea = ((flags & FLAG_LAND) == 0) | ~np.isfinite(stack[0])
    stack[:, sea] = np.nan
    return stack


def cog_tags(day: date, provenance: Mapping[str, Any]) -> dict[str, str]:
    """Dataset tags of a day's COG: the day, the provenance as JSON and its scalar entries."""
    tags = {"SMDA_DAY": day.isoformat(), "SMDA_PROVENANCE": canonical_provenance(provenance)}
    for key, value in provenance.items():
        if isinstance(value, str | int | float | bool):
            tags[f"SMDA_{re.sub(r'\W', '_', key).upper()}"] = (
                json.dumps(value) if isinstance(value, bool) else str(value)
            )
    return tags


def write_cog(
    target: Path, bands: npt.NDArray[np.float32], grid: Grid, tags: Mapping[str, str]
) -> None:
    """Write ``bands`` (band, lat, lon) as a COG at ``target`` atomically (see the module doc).

    Parameters
    ----------
    target:
        The COG's path.
    bands:
        float32 (len(BANDS), nrows, ncols), NaN = nodata.
    grid:
        The region grid the bands are on (north-up).
    tags:
        Dataset tags (strings).
    """
    profile = {
        "driver": "GTiff",
        "width": grid.ncols,
        "height": grid.nrows,
        "count": len(BANDS),
        "dtype": "float32",
        "crs": grid.crs,
        "transform": rasterio.Affine(*grid.transform),
        "nodata": np.nan,
    }
    dst_profile = cog_profiles.get("deflate")  # type: ignore[no-untyped-call]
    dst_profile.update(blockxsize=TILE, blockysize=TILE, num_threads=2)
    with MemoryFile() as mem:
        with mem.open(**profile) as src:
            src.write(bands)
            for i, band in enumerate(BANDS, start=1):
                src.set_band_description(i, band.name)
                src.update_tags(i, units=band.unit, long_name=band.description)
            src.update_tags(**tags)
        with mem.open() as src, atomic_path(target) as tmp:
            cog_translate(
                src,
                tmp,
                dst_profile,
                in_memory=True,
                quiet=True,
                forward_band_tags=True,
                overview_resampling="nearest",
            )
