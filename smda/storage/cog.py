"""A day's state as two Cloud-Optimized GeoTIFFs: continuous bands and integer bands.

One GeoTIFF holds one data type, so a day is two COGs (EPSG:4326, north-up, 0.25° cells on the
bounds of the region grid, 256 × 256 tiles, DEFLATE with a predictor, overviews down to one
tile, written by GDAL's COG driver), described by :data:`COGS`:

``data`` — ``smda_sm_YYYYMMDD.tif``, float32, nodata NaN, *average* overviews:
    1. ``analysis``: surface (0–5 cm) soil moisture analysis, m3 m-3 (exactly the state's values);
    2. ``uncertainty``: error standard deviation of the analysis, m3 m-3.
``flags`` — ``smda_sm_YYYYMMDD_flags.tif``, uint8, nodata 255, *nearest* overviews (a flag or a
count stays a valid value at every zoom level):
    1. ``flags``: the cycle's bit flags (:data:`smda.science.flags.FLAGS`; each flag is a band
       tag ``FLAG_<NAME>`` = "value: description");
    2. ``obs_count``: SMAP retrievals in the cell's daily mean (0 when none), unit 1.

Every band is nodata over sea — cells without :data:`~smda.science.flags.FLAG_LAND` or without
an analysis. Each band has a GDAL description (its name), a GDAL unit (``gdalinfo`` and QGIS show
it), and ``units``/``long_name`` band tags; dataset tags carry the day and the provenance
(``SMDA_PROVENANCE``, JSON, secrets removed: :func:`smda.storage.provenance.public_provenance`).

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
from rasterio.shutil import copy as gdal_copy

from smda.geo.grid import Grid
from smda.science.flags import FLAG_LAND, FLAGS
from smda.storage.atomic import atomic_path
from smda.storage.chain import canonical_provenance

__all__ = [
    "BANDS",
    "COGS",
    "DATA_COG",
    "FLAGS_COG",
    "TILE",
    "BandSpec",
    "CogSpec",
    "cog_bands",
    "cog_tags",
    "grid_of",
    "write_cog",
]

TILE = 256
"""COG tile size (pixels)."""


@dataclass(frozen=True)
class BandSpec:
    """One COG band: the state variable it holds, its description and unit."""

    name: str
    description: str
    unit: str


@dataclass(frozen=True)
class CogSpec:
    """One of a day's COGs: its STAC asset key, file suffix, data type, nodata, overview
    resampling and bands (band 1 first)."""

    key: str
    suffix: str
    title: str
    dtype: str
    nodata: float
    resampling: str
    bands: tuple[BandSpec, ...]


DATA_COG = CogSpec(
    key="data",
    suffix="",
    title="soil moisture analysis and uncertainty",
    dtype="float32",
    nodata=float("nan"),
    resampling="average",
    bands=(
        BandSpec("analysis", "surface (0-5 cm) soil moisture analysis", "m3 m-3"),
        BandSpec("uncertainty", "error standard deviation of the analysis", "m3 m-3"),
    ),
)
FLAGS_COG = CogSpec(
    key="quality",
    suffix="_flags",
    title="analysis flags and SMAP observation count",
    dtype="uint8",
    nodata=255,
    resampling="nearest",
    bands=(
        BandSpec("flags", "bit flags: " + ", ".join(f"{f.mask} {f.name}" for f in FLAGS), "1"),
        BandSpec("obs_count", "SMAP retrievals in the cell's daily mean", "1"),
    ),
)
COGS = (DATA_COG, FLAGS_COG)
"""A day's COGs."""
BANDS = tuple(b for cog in COGS for b in cog.bands)
"""All bands of a day, in the order of :data:`COGS`."""


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


def cog_bands(ds: xr.Dataset) -> dict[str, npt.NDArray[Any]]:
    """The bands of each COG of :data:`COGS` by key: (band, lat, lon) arrays of the COG's
    data type, nodata over sea.

    Raises
    ------
    ValueError
        If a variable is missing, or an observation count does not fit the flags COG.
    """
    missing = [b.name for b in BANDS if b.name not in ds.data_vars]
    if missing:
        raise ValueError(f"cannot publish: the dataset lacks {missing} (read it from the chain)")
    values = {b.name: np.asarray(ds[b.name].transpose("lat", "lon").values) for b in BANDS}
    flags = values["flags"].astype(np.uint8)
    sea = ((flags & FLAG_LAND) == 0) | ~np.isfinite(values["analysis"])
    count = np.where(sea, 0, values["obs_count"])
    if count.max(initial=0) >= FLAGS_COG.nodata:
        raise ValueError(
            f"an obs_count of {int(count.max())} does not fit the uint8 flags COG "
            f"(nodata {int(FLAGS_COG.nodata)})"
        )
    out = {}
    for cog in COGS:
        stack = np.stack([values[b.name].astype(cog.dtype) for b in cog.bands])
        stack[:, sea] = cog.nodata
        out[cog.key] = stack
    return out


def cog_tags(day: date, provenance: Mapping[str, Any]) -> dict[str, str]:
    """Dataset tags of a day's COG: the day, the provenance as JSON and its scalar entries."""
    tags = {"SMDA_DAY": day.isoformat(), "SMDA_PROVENANCE": canonical_provenance(provenance)}
    for key, value in provenance.items():
        if isinstance(value, str | int | float | bool):
            tags[f"SMDA_{re.sub(r'\W', '_', key).upper()}"] = (
                json.dumps(value) if isinstance(value, bool) else str(value)
            )
    return tags


def _band_tags(band: BandSpec) -> dict[str, str]:
    tags = {"units": band.unit, "long_name": band.description}
    if band.name == "flags":
        tags |= {f"FLAG_{f.name.upper()}": f"{f.mask}: {f.description}" for f in FLAGS}
    return tags


def write_cog(
    target: Path,
    spec: CogSpec,
    bands: npt.NDArray[Any],
    grid: Grid,
    tags: Mapping[str, str],
) -> None:
    """Write ``bands`` as the COG ``spec`` at ``target`` atomically (see the module doc).

    Parameters
    ----------
    target:
        The COG's path.
    spec:
        Which of :data:`COGS` it is.
    bands:
        (len(spec.bands), nrows, ncols) of ``spec.dtype``, ``spec.nodata`` = nodata.
    grid:
        The region grid the bands are on (north-up).
    tags:
        Dataset tags (strings).
    """
    profile = {
        "driver": "GTiff",
        "width": grid.ncols,
        "height": grid.nrows,
        "count": len(spec.bands),
        "dtype": spec.dtype,
        "crs": grid.crs,
        "transform": rasterio.Affine(*grid.transform),
        "nodata": spec.nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as src:
            src.write(bands)
            for i, band in enumerate(spec.bands, start=1):
                src.set_band_description(i, band.name)
                src.set_band_unit(i, band.unit)
                src.update_tags(i, **_band_tags(band))
            src.update_tags(**tags)
        with mem.open() as src, atomic_path(target) as tmp:
            gdal_copy(
                src,
                tmp,
                driver="COG",
                BLOCKSIZE=TILE,
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                OVERVIEWS="AUTO",
                OVERVIEW_RESAMPLING=spec.resampling.upper(),
                NUM_THREADS=2,
            )
