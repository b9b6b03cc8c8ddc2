"""The STAC tree of the published days: where each file goes, and the documents.

Layout under ``root`` (a local folder or an object-storage prefix, :mod:`smda.storage.objects`;
every STAC link is relative, and with ``base_url`` the documents also carry absolute ``self``
links and asset URLs)::

    cog/YYYY/smda_sm_YYYYMMDD.tif                   the day's COG of analysis and uncertainty
    cog/YYYY/smda_sm_YYYYMMDD_flags.tif             the day's COG of flags and observation count
    cog/YYYY/smda_sm_YYYYMMDD.png                   its quick-look (:mod:`smda.storage.quicklook`)
    stac/catalog.json                               catalog ``smda`` → the collection
    stac/smda-sm/collection.json                    collection ``smda-sm``: extent, one link per day
    stac/smda-sm/YYYY/smda_sm_YYYYMMDD.json         the day's item (projection + raster extensions)

Each item covers its day (``datetime`` and ``start_datetime`` at 00:00 UTC, ``end_datetime``
23:59:59 UTC), carries the provenance as ``smda:provenance``, ``smda:provisional`` (true when an
input of the day was provisional — ERA5T, MSWEP NRT — so the day will be recomputed),
``smda:forecast_only``, one ``license`` link per source's terms of use (:data:`SOURCES`; the
product's ``license`` is ``other``), the projection extension v2.0.0 (``proj:code``
``EPSG:4326`` — the successor of ``proj:epsg`` — ``proj:shape``, ``proj:transform``) on its
properties, and one asset per COG (:data:`smda.storage.cog.COGS`: ``data`` and ``quality``) with
the raster extension v1.1.0 (``raster:bands``: data type, nodata, unit, scale, offset), STAC 1.1
``bands`` and ``eo:bands`` names (odc-stac and stackstac name the loaded bands by them), the
file extension v2.1.0 (``file:size``, ``file:checksum``: the COG's SHA-256 as a multihash),
which ``smda verify`` checks each COG against, and on the ``flags`` band the classification
extension v2.0.0 (``classification:bitfields``, from :data:`smda.science.flags.FLAGS`). The
day's quick-look PNG is its ``thumbnail`` asset (roles ``thumbnail`` and ``overview``).

The collection describes the assets of every item (``item_assets``) and summarises the
items' fields (``summaries``: ``smda:provisional``, ``smda:forecast_only``, the sources, the
bands).

With ``base_url`` (``SMDA_PRODUCTS_PUBLIC_URL``) every href — ``self``, ``root``, ``parent``,
``collection``, ``child``, ``item`` and the assets — is an absolute URL under it; without it
the tree is self-contained (relative links only).

The documents carry no wall-clock ``created``/``updated`` times, so the same inputs give
byte-identical files, and they are written atomically.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.classification import Bitfield, Classification, ClassificationExtension
from pystac.extensions.eo import EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension

from smda.geo.grid import Grid
from smda.science.flags import FLAGS
from smda.storage.cog import BANDS, COGS, CogSpec
from smda.storage.integrity import multihash
from smda.storage.objects import Files

__all__ = [
    "COLLECTION_ID",
    "FILE_EXTENSION",
    "SOURCES",
    "ProductTree",
    "Source",
    "add_cog_assets",
    "add_thumbnail_asset",
    "day_item",
    "extent_union",
    "linked_days",
    "write_catalog",
    "write_collection",
    "write_json",
]

COLLECTION_ID = "smda-sm"
FILE_EXTENSION = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
"""STAC file extension: ``file:size`` and ``file:checksum`` (multihash) of the COG asset."""
_ITEM = re.compile(r"smda_sm_(\d{8})\.json$")


@dataclass(frozen=True)
class Source:
    """An input of the product: who produces it, where, and its terms of use."""

    name: str
    producer: str
    url: str
    terms: str
    """URL of the terms of use (linked from every item as a ``license`` link)."""


SOURCES = (
    Source(
        "SMAP L3",
        "NASA NSIDC DAAC (SMAP L3)",
        "https://nsidc.org/data/spl3smp_e",
        "https://www.earthdata.nasa.gov/engage/open-data-services-software-policies/data-use-guidance",
    ),
    Source(
        "ERA5",
        "ECMWF / Copernicus Climate Change Service (ERA5)",
        "https://cds.climate.copernicus.eu",
        "https://cds.climate.copernicus.eu/licences/licence-to-use-copernicus-products",
    ),
    Source(
        "MSWEP",
        "GloH2O (MSWEP)",
        "https://www.gloh2o.org/mswep/",
        "https://www.gloh2o.org/mswep/",
    ),
)
"""The product's sources and their terms of use, the one place that names them: MSWEP's terms
restrict use, so the product's ``license`` is ``other`` and each item links every source's
terms."""


def item_name(day: date) -> str:
    """Name of a day's COG and item (without suffix), also the item id."""
    return f"smda_sm_{day:%Y%m%d}"


def _utc(day: date, at: time = time(0, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=UTC)


def _rel(target: Path, document: Path) -> str:
    """``target`` relative to the folder of ``document`` (a STAC relative href)."""
    rel = Path(os.path.relpath(target, document.parent)).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"


@dataclass(frozen=True)
class ProductTree:
    """Where the published files of a root are, and how documents link to them.

    Parameters
    ----------
    root:
        Folder of the published products (on object storage, the path that ``files`` maps onto
        its keys).
    base_url:
        Public URL at which ``root`` is served (no trailing slash), or None.
    files:
        Where the files really are (default: the local folder ``root``).
    """

    root: Path
    base_url: str | None = None
    files: Files | None = None

    @property
    def store(self) -> Files:
        """The files of the tree (:class:`smda.storage.objects.Files`)."""
        return self.files if self.files is not None else Files.at(self.root)

    @property
    def catalog_path(self) -> Path:
        return self.root / "stac" / "catalog.json"

    @property
    def collection_path(self) -> Path:
        return self.root / "stac" / COLLECTION_ID / "collection.json"

    def cog_path(self, day: date, spec: CogSpec = COGS[0]) -> Path:
        """The COG ``spec`` (default: the data COG) of ``day``."""
        return self.root / "cog" / f"{day:%Y}" / f"{item_name(day)}{spec.suffix}.tif"

    def item_path(self, day: date) -> Path:
        return self.root / "stac" / COLLECTION_ID / f"{day:%Y}" / f"{item_name(day)}.json"

    def quicklook_path(self, day: date) -> Path:
        """The quick-look PNG of ``day``, next to its COGs."""
        return self.root / "cog" / f"{day:%Y}" / f"{item_name(day)}.png"

    def url(self, path: Path) -> str | None:
        """The public URL of ``path`` (None without ``base_url``)."""
        if self.base_url is None:
            return None
        return f"{self.base_url}/{path.relative_to(self.root).as_posix()}"

    def href(self, target: Path, document: Path) -> str:
        """The href of ``target`` in ``document``: its URL, else a relative path."""
        return self.url(target) or _rel(target, document)

    def links(self, document: Path, links: Iterable[tuple[str, Path]]) -> list[pystac.Link]:
        """Links of ``document`` (``self`` too when served at ``base_url``)."""
        out = [
            pystac.Link(rel, self.href(target, document), media_type=pystac.MediaType.JSON)
            for rel, target in links
        ]
        if (url := self.url(document)) is not None:
            out.append(pystac.Link("self", url, media_type=pystac.MediaType.JSON))
        return out

    def read_collection(self) -> dict[str, Any] | None:
        """The collection document, or None before the first day is published."""
        raw = self.store.read_bytes(self.collection_path)
        if raw is None:
            return None
        document: dict[str, Any] = json.loads(raw)
        return document


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


def linked_days(collection: Mapping[str, Any] | None) -> list[date]:
    """The days of the collection's item links, ascending."""
    links = collection["links"] if collection else []
    found = (_ITEM.search(link["href"]) for link in links if link["rel"] == "item")
    days = (m.group(1) for m in found if m)
    return sorted(date(int(d[:4]), int(d[4:6]), int(d[6:])) for d in days)


def extent_union(collection: Mapping[str, Any] | None, grid: Grid) -> list[float]:
    """Bounding box of the collection's extent and the grid (the grid's alone when either
    crosses the antimeridian)."""
    new = _geometry(grid)[1]
    if collection is None:
        return new
    old: list[float] = collection["extent"]["spatial"]["bbox"][0]
    if old[0] > old[2] or new[0] > new[2]:
        return new
    return [min(old[0], new[0]), min(old[1], new[1]), max(old[2], new[2]), max(old[3], new[3])]


def write_json(tree: ProductTree, path: Path, document: Mapping[str, Any]) -> None:
    """Write a STAC document of ``tree`` atomically (not at all when the file already holds
    it)."""
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    if tree.store.read_bytes(path) == data:
        return
    tree.store.write_bytes(path, data)


def day_item(
    tree: ProductTree,
    day: date,
    grid: Grid,
    provenance: dict[str, Any],
    *,
    forecast_only: bool,
    provisional: bool,
) -> pystac.Item:
    """The STAC item of ``day`` without assets: geometry, times, provenance, projection,
    links (with the sources' terms of use)."""
    geometry, bbox = _geometry(grid)
    item = pystac.Item(
        id=item_name(day),
        geometry=geometry,
        bbox=bbox,
        datetime=_utc(day),
        start_datetime=_utc(day),
        end_datetime=_utc(day, time(23, 59, 59)),
        properties={
            "smda:provenance": provenance,
            "smda:provisional": provisional,
            "smda:forecast_only": forecast_only,
        },
        collection=COLLECTION_ID,
    )
    item.clear_links()
    item.add_links(
        tree.links(
            tree.item_path(day),
            [
                ("root", tree.catalog_path),
                ("parent", tree.collection_path),
                ("collection", tree.collection_path),
            ],
        )
    )
    item.add_links(_license_links())
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        epsg=4326, shape=[grid.nrows, grid.ncols], transform=list(grid.transform)
    )
    return item


def _license_links() -> list[pystac.Link]:
    return [
        pystac.Link("license", src.terms, media_type="text/html", title=f"{src.name} terms of use")
        for src in SOURCES
    ]


def _raster_bands(spec: CogSpec) -> list[dict[str, Any]]:
    """``raster:bands`` of the COG ``spec`` (the classification of the flags band included)."""
    nodata = NoDataStrings.NAN if math.isnan(spec.nodata) else int(spec.nodata)
    out = []
    for band in spec.bands:
        raster = RasterBand.create(
            nodata=nodata, data_type=DataType(spec.dtype), unit=band.unit, scale=1.0, offset=0.0
        ).to_dict()
        if band.name == "flags":
            raster["classification:bitfields"] = [b.to_dict() for b in _bitfields()]
        out.append(raster)
    return out


def _bitfields() -> list[Bitfield]:
    """The flags as classification v2.0.0 bit fields: one bit each, set or not."""
    return [
        Bitfield.create(
            offset=f.bit,
            length=1,
            name=f.name,
            description=f.description,
            classes=[
                Classification.create(value=0, name=f"not_{f.name}"),
                Classification.create(value=1, name=f.name, description=f.description),
            ],
        )
        for f in FLAGS
    ]


def _asset_fields(spec: CogSpec) -> dict[str, Any]:
    """What every item's asset of the COG ``spec`` holds: title, type, roles, bands."""
    return {
        "title": spec.title,
        "type": pystac.MediaType.COG,
        "roles": ["data"],
        "bands": [{"name": b.name, "description": b.description} for b in spec.bands],
        "eo:bands": [{"name": b.name, "description": b.description} for b in spec.bands],
        "raster:bands": _raster_bands(spec),
    }


def add_cog_assets(
    item: pystac.Item,
    tree: ProductTree,
    day: date,
    digests: Mapping[str, tuple[str, int] | None],
) -> None:
    """Add the COGs of ``day`` to its item (asset per :data:`~smda.storage.cog.COGS` key) with
    their bands and their size and checksum (the file extension: what ``smda verify`` checks
    each COG against)."""
    for spec in COGS:
        fields = _asset_fields(spec)
        asset = pystac.Asset(
            href=tree.href(tree.cog_path(day, spec), tree.item_path(day)),
            title=f"smda {spec.title} {day}",
            description="bands: "
            + "; ".join(f"{i} {b.name} ({b.unit})" for i, b in enumerate(spec.bands, 1)),
            media_type=fields.pop("type"),
            roles=fields.pop("roles"),
        )
        fields.pop("title")
        asset.extra_fields.update(fields)
        if (digest := digests.get(spec.key)) is not None:
            asset.extra_fields["file:size"] = digest[1]
            asset.extra_fields["file:checksum"] = multihash(digest[0])
        item.add_asset(spec.key, asset)
    RasterExtension.add_to(item)
    EOExtension.add_to(item)
    ClassificationExtension.add_to(item)
    if any(d is not None for d in digests.values()):
        item.stac_extensions.append(FILE_EXTENSION)


THUMBNAIL: dict[str, Any] = {
    "title": "quick-look",
    "description": "the analysis on a fixed scale of 0-0.5 m3 m-3 (YlGnBu), sea in grey",
    "type": pystac.MediaType.PNG,
    "roles": ["thumbnail", "overview"],
}
"""What every item's ``thumbnail`` asset holds besides its href (and the collection's
``item_assets`` announce)."""


def add_thumbnail_asset(item: pystac.Item, tree: ProductTree, day: date) -> None:
    """Add the quick-look PNG of ``day`` to its item as asset ``thumbnail``."""
    item.add_asset(
        "thumbnail",
        pystac.Asset(
            href=tree.href(tree.quicklook_path(day), tree.item_path(day)),
            title=f"quick-look of the soil moisture analysis of {day}",
            description=THUMBNAIL["description"],
            media_type=THUMBNAIL["type"],
            roles=THUMBNAIL["roles"],
        ),
    )


def write_collection(
    tree: ProductTree, days: list[date], bbox: list[float], *, license: str
) -> None:
    """Rewrite the collection: one item link per day, the days' interval and ``bbox``."""
    interval: list[list[datetime | None]] = (
        [[_utc(days[0]), _utc(days[-1], time(23, 59, 59))]] if days else [[None, None]]
    )
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="smda daily surface soil moisture (0.25°)",
        description=_DESCRIPTION,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent(interval)),
        license=license,
        keywords=["soil moisture", "SMAP", "ERA5", "MSWEP", "data assimilation"],
        providers=_PROVIDERS,
    )
    collection.clear_links()
    collection.add_links(
        tree.links(
            tree.collection_path,
            [("root", tree.catalog_path), ("parent", tree.catalog_path)],
        )
    )
    collection.add_links(_license_links())
    document = collection.to_dict(include_self_link=True, transform_hrefs=False)
    document["stac_extensions"] = [
        RasterExtension.get_schema_uri(),
        EOExtension.get_schema_uri(),
        ClassificationExtension.get_schema_uri(),
    ]
    document["item_assets"] = {spec.key: _asset_fields(spec) for spec in COGS}
    document["item_assets"]["thumbnail"] = dict(THUMBNAIL)
    document["summaries"] = _SUMMARIES
    document["links"] += [
        {
            "rel": "item",
            "href": tree.href(tree.item_path(d), tree.collection_path),
            "type": pystac.MediaType.GEOJSON,
        }
        for d in days
    ]
    write_json(tree, tree.collection_path, document)


def write_catalog(tree: ProductTree) -> None:
    """Write the root catalog (one child: the collection)."""
    catalog = pystac.Catalog(
        id="smda",
        title="smda",
        description="Products of smda, the daily soil-moisture data-assimilation system.",
    )
    catalog.clear_links()
    catalog.add_links(
        tree.links(
            tree.catalog_path,
            [("root", tree.catalog_path), ("child", tree.collection_path)],
        )
    )
    write_json(
        tree, tree.catalog_path, catalog.to_dict(include_self_link=True, transform_hrefs=False)
    )


_DESCRIPTION = (
    "Seamless daily surface (0-5 cm) soil moisture (m3 m-3) on the 0.25° grid by ML-DA: a "
    "LightGBM model driven by ERA5 and MSWEP steps forward from the previous analysis and is "
    "nudged toward SMAP L3 retrievals. Two COGs per day: "
    + "; ".join(
        f"{spec.key} ({spec.dtype}, nodata {spec.nodata}): "
        + ", ".join(f"{b.name} ({b.unit})" for b in spec.bands)
        for spec in COGS
    )
    + ". Nodata over sea. Flags: "
    + ", ".join(f"{f.mask} {f.name}" for f in FLAGS)
    + ". Days made from provisional inputs (ERA5T, MSWEP NRT) have smda:provisional true and "
    "are recomputed when the final inputs arrive. Terms of use: those of each source (license "
    "links)."
)
_PROVIDERS = [
    pystac.Provider("smda", roles=[pystac.ProviderRole.PROCESSOR, pystac.ProviderRole.HOST]),
    *(
        pystac.Provider(s.producer, roles=[pystac.ProviderRole.PRODUCER], url=s.url)
        for s in SOURCES
    ),
]
_SUMMARIES: dict[str, Any] = {
    "smda:provisional": [False, True],
    "smda:forecast_only": [False, True],
    "smda:sources": [s.name for s in SOURCES],
    "platform": ["SMAP"],
    "bands": [{"name": b.name, "description": b.description, "unit": b.unit} for b in BANDS],
}
