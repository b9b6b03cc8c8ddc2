"""Publishing a day: one Cloud-Optimized GeoTIFF and one STAC item, under a root folder.

Layout under ``root`` (a local folder; serve it or sync it to object storage as is: every
STAC link is relative, and with ``base_url`` the documents also carry absolute ``self``
links and asset URLs)::

    cog/YYYY/smda_sm_YYYYMMDD.tif                   the day's COG
    stac/catalog.json                               catalog ``smda`` → the collection
    stac/smda-sm/collection.json                    collection ``smda-sm``: extent, one link per day
    stac/smda-sm/YYYY/smda_sm_YYYYMMDD.json         the day's item (projection + raster extensions)

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
secrets removed: :func:`public_provenance`). Overviews use nearest-neighbour resampling, so a
flag or count stays a valid value at every zoom level.

Each item covers its day (``datetime`` and ``start_datetime`` at 00:00 UTC, ``end_datetime``
23:59:59 UTC), carries the provenance as ``smda:provenance``, the projection extension v2.0.0
(``proj:code`` ``EPSG:4326`` — the successor of ``proj:epsg`` — ``proj:shape``,
``proj:transform``) on its properties and the raster extension v1.1.0 (``raster:bands``:
data type, nodata ``nan``, unit, scale, offset) plus STAC 1.1 ``bands`` names on its asset,
and the file extension v2.1.0 (``file:size``, ``file:checksum``: the COG's SHA-256 as a
multihash), which ``smda verify`` checks the COG against.

Everything is written atomically (temporary sibling, then rename), and the same inputs give
byte-identical files: GDAL writes no timestamps and the STAC documents carry no wall-clock
``created``/``updated`` times. Publishing a day writes its COG and item and rewrites only the
collection (its extent and one link per day, ~120 bytes a day) and the catalog — never the
other days' items.

One writer per root: the operations that publish hold the writer lock of the region's chain
(:mod:`smda.storage.locks`); the collection's read-modify-write is also locked on its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import pystac
import rasterio
import xarray as xr
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from smda.geo.grid import Grid
from smda.science.cycle import FLAG_LAND
from smda.storage.atomic import atomic_path, atomic_write_bytes
from smda.storage.chain import canonical_provenance
from smda.storage.integrity import file_digest, multihash
from smda.storage.locks import locked_file

__all__ = ["BANDS", "COLLECTION_ID", "BandSpec", "PublishedDay", "Publisher", "public_provenance"]

log = logging.getLogger(__name__)

COLLECTION_ID = "smda-sm"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
"""STAC file extension: ``file:size`` and ``file:checksum`` (multihash) of the COG asset."""
TILE = 256
"""COG tile size (pixels)."""
_ITEM = re.compile(r"smda_sm_(\d{8})\.json$")
_SECRET = re.compile(
    r"(^|[_\W])(password|passwd|pwd|secret|token|credentials?|api_?key|auth(orization)?|cookie"
    r"|session|sig(nature)?)($|[_\W])",
    re.I,
)
"""Names of keys (and URL query parameters) whose values are never published."""


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


@dataclass(frozen=True)
class PublishedDay:
    """Where a published day's files are."""

    cog: Path
    item: Path


def _public_url(url: str) -> str:
    """``url`` without user:password and without secret-looking query parameters."""
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET.search(k)
    ]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def public_provenance(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance without secrets: keys naming passwords, tokens, keys or credentials are
    dropped and user:password parts of URLs removed, at any depth."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items() if not _SECRET.search(str(k))}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, str) and "://" in value:
            return _public_url(value)
        return value

    cleaned: dict[str, Any] = json.loads(canonical_provenance(clean(provenance)))
    return cleaned


def _grid_of(ds: xr.Dataset) -> Grid:
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


def _bands(ds: xr.Dataset) -> npt.NDArray[np.float32]:
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


def _tags(day: date, provenance: Mapping[str, Any]) -> dict[str, str]:
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


def _name(day: date) -> str:
    """Name of a day's COG and item (without suffix), also the item id."""
    return f"smda_sm_{day:%Y%m%d}"


def _utc(day: date, at: time = time(0, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=UTC)


def _geometry(grid: Grid) -> tuple[dict[str, Any], list[float]]:
    """GeoJSON geometry and bbox of the grid (split in two at the antimeridian)."""
    b = grid.bounds

    def box(w: float, e: float) -> list[list[list[float]]]:
        return [[[w, b.south], [e, b.south], [e, b.north], [w, b.north], [w, b.south]]]

    geometry: dict[str, Any]
    if b.west > b.east:
        geometry = {
            "type": "MultiPolygon",
            "coordinates": [box(b.west, 180.0), box(-180.0, b.east)],
        }
    else:
        geometry = {"type": "Polygon", "coordinates": box(b.west, b.east)}
    return geometry, [b.west, b.south, b.east, b.north]


def _linked_days(collection: Mapping[str, Any] | None) -> list[date]:
    """The days of the collection's item links, ascending."""
    links = collection["links"] if collection else []
    found = (_ITEM.search(link["href"]) for link in links if link["rel"] == "item")
    days = (m.group(1) for m in found if m)
    return sorted(date(int(d[:4]), int(d[4:6]), int(d[6:])) for d in days)


def _extent_bbox(collection: Mapping[str, Any] | None) -> list[float] | None:
    if collection is None:
        return None
    bbox: list[float] = collection["extent"]["spatial"]["bbox"][0]
    return bbox


def _union(old: list[float] | None, new: list[float]) -> list[float]:
    """Bounding box of two (the new one alone when either crosses the antimeridian)."""
    if old is None or old[0] > old[2] or new[0] > new[2]:
        return new
    return [min(old[0], new[0]), min(old[1], new[1]), max(old[2], new[2]), max(old[3], new[3])]


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    if path.exists() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def _rel(target: Path, document: Path) -> str:
    """``target`` relative to the folder of ``document`` (a STAC relative href)."""
    rel = Path(os.path.relpath(target, document.parent)).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"


class Publisher:
    """Publishes days as COGs and a STAC catalog under ``root`` (see the module docstring).

    Parameters
    ----------
    root:
        Local folder of the published products.
    base_url:
        Public URL at which ``root`` is served (e.g. ``https://data.example.org/smda``): asset
        hrefs become absolute URLs and documents get ``self`` links. Without it the catalog is
        self-contained (relative links only).
    license:
        License of the product (SPDX identifier, or ``other``): it derives from ERA5
        (Copernicus licence), SMAP (NASA, open) and MSWEP (GloH2O terms).
    """

    def __init__(
        self, root: Path | str, *, base_url: str | None = None, license: str = "other"
    ) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.license = license
        self._lock = threading.Lock()

    # -- layout ---------------------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        return self.root / "stac" / "catalog.json"

    @property
    def collection_path(self) -> Path:
        return self.root / "stac" / COLLECTION_ID / "collection.json"

    def cog_path(self, day: date) -> Path:
        return self.root / "cog" / f"{day:%Y}" / f"{_name(day)}.tif"

    def item_path(self, day: date) -> Path:
        return self.root / "stac" / COLLECTION_ID / f"{day:%Y}" / f"{_name(day)}.json"

    def _url(self, path: Path) -> str | None:
        if self.base_url is None:
            return None
        return f"{self.base_url}/{path.relative_to(self.root).as_posix()}"

    def _links(self, document: Path, links: Iterable[tuple[str, Path]]) -> list[pystac.Link]:
        out = [
            pystac.Link(rel, _rel(target, document), media_type=pystac.MediaType.JSON)
            for rel, target in links
        ]
        if (url := self._url(document)) is not None:
            out.append(pystac.Link("self", url, media_type=pystac.MediaType.JSON))
        return out

    # -- publishing -----------------------------------------------------------------------------
    def publish(
        self, day: date, dataset: xr.Dataset, provenance: Mapping[str, Any]
    ) -> PublishedDay:
        """Publish the state of ``day`` (a :meth:`smda.storage.chain.StateChain.read` dataset).

        Parameters
        ----------
        day:
            The day.
        dataset:
            ``analysis``, ``uncertainty``, ``obs_count``, ``flags`` (lat, lon) on a north-up
            window of the global grid.
        provenance:
            What made the day (model version, inputs, code version); secrets are dropped.

        Raises
        ------
        ValueError
            If a variable is missing, the grid is not a window of the global grid, or the
            dataset is of another day.
        """
        stored_day = dataset.attrs.get("smda_day")
        if stored_day is not None and stored_day != day.isoformat():
            raise ValueError(f"the dataset is the state of {stored_day}, not of {day}")
        if dataset["lat"].size > 1 and dataset["lat"].values[0] < dataset["lat"].values[-1]:
            dataset = dataset.isel(lat=slice(None, None, -1))
        grid = _grid_of(dataset)
        public = public_provenance(provenance)
        write_cog(self.cog_path(day), _bands(dataset), grid, _tags(day, public))
        forecast_only = bool(dataset.attrs.get("smda_forecast_only", 0))
        item = self._item(day, grid, public, forecast_only, file_digest(self.cog_path(day)))
        _write_json(
            self.item_path(day), item.to_dict(include_self_link=True, transform_hrefs=False)
        )
        with self._lock, locked_file(self.collection_path):  # other processes too
            current = self._collection()
            days = sorted({*_linked_days(current), day})
            self._write_collection(days, _union(_extent_bbox(current), _geometry(grid)[1]))
            self._write_catalog()
        log.info("published %s: %s", day, self.cog_path(day))
        return PublishedDay(cog=self.cog_path(day), item=self.item_path(day))

    def unpublish(self, days: Iterable[date]) -> list[date]:
        """Withdraw days: their collection links first, then their items and COGs.

        Returns
        -------
        The days that had been published, ascending.
        """
        drop = set(days)
        removed = sorted(d for d in drop if self.item_path(d).exists() or self.cog_path(d).exists())
        with self._lock, locked_file(self.collection_path):  # other processes too
            current = self._collection()
            if current is not None:
                remaining = [d for d in _linked_days(current) if d not in drop]
                self._write_collection(remaining, current["extent"]["spatial"]["bbox"][0])
        for d in removed:
            self.item_path(d).unlink(missing_ok=True)
            self.cog_path(d).unlink(missing_ok=True)
        if removed:
            log.info("unpublished %d days from %s", len(removed), self.root)
        return removed

    def problem(self, day: date) -> str | None:
        """What is wrong with the published ``day``: None when the COG matches its item's
        ``file:size`` and ``file:checksum`` (older items: when GDAL reads it)."""
        cog, item_path = self.cog_path(day), self.item_path(day)
        if not cog.exists() or not item_path.exists():
            return "COG or STAC item missing"
        try:
            asset: dict[str, Any] = json.loads(item_path.read_text())["assets"]["data"]
        except (OSError, ValueError, KeyError) as exc:
            return f"the STAC item is unreadable ({exc})"
        if (got := file_digest(cog)) is None:
            return "COG missing"
        if "file:checksum" in asset:
            if asset.get("file:size") != got[1] or asset["file:checksum"] != multihash(got[0]):
                return "the COG's size or SHA-256 differs from its STAC item's file:checksum"
            return None
        try:
            with rasterio.open(cog) as src:
                src.read(1, out_shape=(1, 1))
        except Exception as exc:  # any GDAL failure means an unreadable COG
            return f"GDAL cannot read the COG ({exc})"
        return None

    def published_days(self) -> list[date]:
        """The days linked from the collection, ascending."""
        return _linked_days(self._collection())

    def _collection(self) -> dict[str, Any] | None:
        if not self.collection_path.exists():
            return None
        document: dict[str, Any] = json.loads(self.collection_path.read_text())
        return document

    # -- STAC documents -------------------------------------------------------------------------
    def _item(
        self,
        day: date,
        grid: Grid,
        provenance: dict[str, Any],
        forecast_only: bool,
        cog_digest: tuple[str, int] | None,
    ) -> pystac.Item:
        path = self.item_path(day)
        geometry, bbox = _geometry(grid)
        item = pystac.Item(
            id=_name(day),
            geometry=geometry,
            bbox=bbox,
            datetime=_utc(day),
            start_datetime=_utc(day),
            end_datetime=_utc(day, time(23, 59, 59)),
            properties={"smda:provenance": provenance, "smda:forecast_only": forecast_only},
            collection=COLLECTION_ID,
        )
        item.clear_links()
        item.add_links(
            self._links(
                path,
                [
                    ("root", self.catalog_path),
                    ("parent", self.collection_path),
                    ("collection", self.collection_path),
                ],
            )
        )
        ProjectionExtension.ext(item, add_if_missing=True).apply(
            epsg=4326, shape=[grid.nrows, grid.ncols], transform=list(grid.transform)
        )
        self._add_asset(item, day, path, cog_digest)
        return item

    def _add_asset(
        self, item: pystac.Item, day: date, item_path: Path, digest: tuple[str, int] | None
    ) -> None:
        """Add the COG of ``day`` to its item as asset ``data``, with its raster bands and its
        size and checksum (the file extension: what ``smda verify`` checks the COG against)."""
        cog = self.cog_path(day)
        asset = pystac.Asset(
            href=self._url(cog) or _rel(cog, item_path),
            title=f"smda soil moisture {day}",
            description="bands: " + "; ".join(f"{i} {b.name}" for i, b in enumerate(BANDS, 1)),
            media_type=pystac.MediaType.COG,
            roles=["data"],
        )
        asset.extra_fields["bands"] = [
            {"name": b.name, "description": b.description} for b in BANDS
        ]
        if digest is not None:
            asset.extra_fields["file:size"] = digest[1]
            asset.extra_fields["file:checksum"] = multihash(digest[0])
            item.stac_extensions.append(FILE_EXTENSION)
        item.add_asset("data", asset)
        RasterExtension.ext(asset, add_if_missing=True).apply(
            [
                RasterBand.create(
                    nodata=NoDataStrings.NAN,
                    data_type=DataType.FLOAT32,
                    unit=b.unit,
                    scale=1.0,
                    offset=0.0,
                )
                for b in BANDS
            ]
        )

    def _write_collection(self, days: list[date], bbox: list[float]) -> None:
        """Rewrite the collection: one item link per day, the days' interval and ``bbox``."""
        interval: list[list[datetime | None]] = (
            [[_utc(days[0]), _utc(days[-1], time(23, 59, 59))]] if days else [[None, None]]
        )
        collection = pystac.Collection(
            id=COLLECTION_ID,
            title="smda daily surface soil moisture (0.25°)",
            description=_DESCRIPTION,
            extent=pystac.Extent(
                pystac.SpatialExtent([bbox]),
                pystac.TemporalExtent(interval),
            ),
            license=self.license,
            keywords=["soil moisture", "SMAP", "ERA5", "MSWEP", "data assimilation"],
            providers=_PROVIDERS,
        )
        collection.clear_links()
        collection.add_links(
            self._links(
                self.collection_path,
                [("root", self.catalog_path), ("parent", self.catalog_path)],
            )
        )
        document = collection.to_dict(include_self_link=True, transform_hrefs=False)
        document["links"] += [
            {"rel": "item", "href": f"./{d:%Y}/{_name(d)}.json", "type": pystac.MediaType.GEOJSON}
            for d in days
        ]
        _write_json(self.collection_path, document)

    def _write_catalog(self) -> None:
        catalog = pystac.Catalog(
            id="smda",
            title="smda",
            description="Products of smda, the daily soil-moisture data-assimilation system.",
        )
        catalog.clear_links()
        catalog.add_links(
            self._links(
                self.catalog_path,
                [("root", self.catalog_path), ("child", self.collection_path)],
            )
        )
        _write_json(
            self.catalog_path, catalog.to_dict(include_self_link=True, transform_hrefs=False)
        )


_DESCRIPTION = (
    "Seamless daily surface (0-5 cm) soil moisture (m3 m-3) on the 0.25° grid by ML-DA: a "
    "LightGBM model driven by ERA5 and MSWEP steps forward from the previous analysis and is "
    "nudged toward SMAP L3 retrievals. One COG per day; bands: "
    + "; ".join(f"{i} {b.name} ({b.unit})" for i, b in enumerate(BANDS, 1))
    + ". Nodata: NaN (sea). Flags: "
    + BANDS[3].description
    + "."
)
_PROVIDERS = [
    pystac.Provider("smda", roles=[pystac.ProviderRole.PROCESSOR, pystac.ProviderRole.HOST]),
    pystac.Provider(
        "NASA NSIDC DAAC (SMAP L3)",
        roles=[pystac.ProviderRole.PRODUCER],
        url="https://nsidc.org/data/spl3smp_e",
    ),
    pystac.Provider(
        "ECMWF / Copernicus Climate Change Service (ERA5)",
        roles=[pystac.ProviderRole.PRODUCER],
        url="https://cds.climate.copernicus.eu",
    ),
    pystac.Provider(
        "GloH2O (MSWEP)", roles=[pystac.ProviderRole.PRODUCER], url="https://www.gloh2o.org/mswep/"
    ),
]
