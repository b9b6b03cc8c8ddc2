"""The CMR side of the Earthdata replica: collections, granule records, searches and UMM items.

Pure (no server, no files): :class:`Collection` and :class:`Granule` describe what the replica
serves, :class:`CmrQuery` parses and validates a ``granules.umm_json`` / ``collections.umm_json``
search the way CMR does and pages its results, and :func:`umm_g` / :func:`umm_c` build the UMM-G
1.6.6 / UMM-C items of a result page. :mod:`smda_twin.earthdata` wires them to the HTTP server,
the clock and the generated granule files.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from smda_twin.formats import gldas as gldas_format
from smda_twin.formats import smap as smap_format
from smda_twin.httpbase import HttpError, Response

__all__ = [
    "COLLECTIONS",
    "CRID",
    "DAY",
    "MAX_PAGE_SIZE",
    "CmrQuery",
    "Collection",
    "Granule",
    "cmr_error",
    "search_response",
    "umm_c",
    "umm_g",
]

MAX_PAGE_SIZE = 2000  # items; the real CMR refuses larger pages
DAY = timedelta(days=1)
CRID = "R19240"  # composite release ID of the current SMAP L3 releases
_UMM_JSON = "application/vnd.nasa.cmr.umm_results+json;version=1.6.6; charset=utf-8"


# -- collections and granules --------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """One CMR collection the replica serves, and where its files live on the data host.

    ``path_template`` is formatted with the granule start time (``{t:%Y}``...) and ``name``;
    ``south``/``north`` bound its coverage in degrees north (it spans -180…180 °E).
    """

    short_name: str
    version: str
    provider: str
    concept_id: str
    entry_title: str
    clock_product: str  # "smap" or "gldas": the clock's publication rule
    step: timedelta  # one granule per step, starting at 00 UTC
    south: float
    north: float
    path_template: str
    path_regex: str  # named groups y, m, d (or y, j: day of year)
    media_type: str
    file_format: str

    def starts(self, day: date) -> list[datetime]:
        """Start times of the granules of ``day`` (UTC)."""
        first = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return [first + i * self.step for i in range(round(DAY / self.step))]


_SMAP_DIR = r"/SMAP/{}\.{}/(?P<y>\d{{4}})\.(?P<m>\d{{2}})\.(?P<d>\d{{2}})/[^/]+"

COLLECTIONS: dict[str, Collection] = {
    c.short_name: c
    for c in (
        Collection(
            short_name="SPL3SMP_E",
            version="006",
            provider="NSIDC_CPRD",
            concept_id="C3300000006-NSIDC_CPRD",
            entry_title="SMAP Enhanced L3 Radiometer Global and Polar Grid Daily 9 km EASE-Grid "
            "Soil Moisture V006",
            clock_product="smap",
            step=DAY,
            south=-85.044,
            north=85.044,
            path_template="/SMAP/SPL3SMP_E.006/{t:%Y.%m.%d}/{name}",
            path_regex=_SMAP_DIR.format("SPL3SMP_E", "006"),
            media_type="application/x-hdf5",
            file_format="HDF5",
        ),
        Collection(
            short_name="SPL3SMP",
            version="009",
            provider="NSIDC_CPRD",
            concept_id="C3300000009-NSIDC_CPRD",
            entry_title="SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture V009",
            clock_product="smap",
            step=DAY,
            south=-85.044,
            north=85.044,
            path_template="/SMAP/SPL3SMP.009/{t:%Y.%m.%d}/{name}",
            path_regex=_SMAP_DIR.format("SPL3SMP", "009"),
            media_type="application/x-hdf5",
            file_format="HDF5",
        ),
        Collection(
            short_name="GLDAS_NOAH025_3H",
            version="2.1",
            provider="GES_DISC",
            concept_id="C3300000021-GES_DISC",
            entry_title="GLDAS Noah Land Surface Model L4 3 hourly 0.25 x 0.25 degree V2.1",
            clock_product="gldas",
            step=timedelta(hours=3),
            south=-60.0,
            north=90.0,
            path_template="/data/GLDAS/GLDAS_NOAH025_3H.2.1/{t:%Y}/{t:%j}/{name}",
            path_regex=r"/data/GLDAS/GLDAS_NOAH025_3H\.2\.1/(?P<y>\d{4})/(?P<j>\d{3})/[^/]+",
            media_type="application/x-netcdf",
            file_format="netCDF-4",
        ),
    )
}


@dataclass(frozen=True)
class Granule:
    """One file of a collection: the collection and the granule's start time (UTC)."""

    collection: Collection
    start: datetime

    @property
    def end(self) -> datetime:
        """Last instant the granule covers (UTC): one ``step`` after ``start``, less 1 ms."""
        return self.start + self.collection.step - timedelta(milliseconds=1)

    @property
    def name(self) -> str:
        """The producer's file name."""
        return _filename(self.collection.short_name, self.start)

    @property
    def path(self) -> str:
        """URL path of the file on the data host."""
        return self.collection.path_template.format(t=self.start, name=self.name)

    @property
    def concept_id(self) -> str:
        """Stable and unique: the collection's number (last two digits) and the start hour."""
        number = self.collection.concept_id.split("-")[0][-2:]
        return f"G4{number}{self.start:%Y%m%d%H}-{self.collection.provider}"

    @property
    def sort_key(self) -> tuple[int, str]:
        """CMR's order and search-after position: start time (ms since 1970) and concept ID."""
        return int(self.start.timestamp() * 1000), self.concept_id


def _filename(short_name: str, start: datetime) -> str:
    """The producer's file name (the format modules own the naming)."""
    if short_name == "SPL3SMP_E":
        return smap_format.spl3smp_e_filename(start.date(), CRID, 1)
    if short_name == "SPL3SMP":
        return smap_format.spl3smp_filename(start.date(), CRID, 1)
    return gldas_format.gldas_filename(start)


# -- query parsing -------------------------------------------------------------------------------

_Range = tuple[datetime | None, datetime | None]

_GRANULE_PARAMS = frozenset(
    [
        "short_name",
        "version",
        "provider",
        "entry_title",
        "concept_id",
        "collection_concept_id",
        "temporal",
        "bounding_box",
        "readable_granule_name",
        "downloadable",
        "online_only",
        "page_size",
        "page_num",
        "sort_key",
    ]
)
# has_granules and cloud_hosted are accepted and true of every twin collection
_COLLECTION_PARAMS = frozenset(
    [
        "short_name",
        "version",
        "provider",
        "entry_title",
        "concept_id",
        "temporal",
        "bounding_box",
        "keyword",
        "has_granules",
        "cloud_hosted",
        "downloadable",
        "page_size",
        "page_num",
    ]
)
_TEXT_PARAMS = ("short_name", "version", "provider", "entry_title", "readable_granule_name")
_OPTIONS = {f"options[{p}][{o}]" for p in _TEXT_PARAMS for o in ("ignore_case", "pattern")}
_OPTIONS.add("options[temporal][exclude_boundary]")
#: granule sort keys the twin implements (all order granules by time; ``-`` = newest first)
_SORT_KEYS = ("start_date", "end_date")


@dataclass
class CmrQuery:
    """A parsed CMR search: the filters, the page and the search-after position.

    ``temporal`` holds (from, to) UTC ranges (None: open), ``lat_ranges`` the (south, north)
    bounds of the bounding boxes in degrees north, ``page_size`` is in items, ``descending``
    is true for ``sort_key=-start_date`` (or ``-end_date``): newest granules first.
    """

    params: dict[str, list[str]]
    options: dict[str, bool]
    temporal: list[_Range]
    lat_ranges: list[tuple[float, float]]
    page_size: int
    page_num: int | None
    search_after: list[Any] | None
    descending: bool = False

    @classmethod
    def parse(
        cls, query: Mapping[str, list[str]], *, search_after: str | None, granules: bool
    ) -> CmrQuery:
        """Validate like CMR: every problem is listed in one 400 ``{"errors": [...]}``.

        ``query`` is the URL query (name → values), ``search_after`` the ``CMR-Search-After``
        request header, ``granules`` says whether this is a granule (not collection) search.
        """
        errors: list[str] = []
        params: dict[str, list[str]] = {}
        options: dict[str, bool] = {}
        allowed = _GRANULE_PARAMS if granules else _COLLECTION_PARAMS
        for key, values in query.items():
            name = key.removesuffix("[]")
            if name in _OPTIONS:
                options[name] = values[-1].lower() == "true"
            elif name.startswith("options["):
                errors.append(f"Parameter [{name}] with option was not recognized.")
            elif name not in allowed:
                errors.append(f"Parameter [{name}] was not recognized.")
            else:
                params.setdefault(name, []).extend(values)
        limits = {"short_name", "concept_id", "collection_concept_id", "provider", "entry_title"}
        if granules and not params.keys() & limits:
            errors.append(
                "The CMR does not allow querying across granules in all collections. To help "
                "optimize your search, you should limit your query using conceptId, provider, "
                "shortName, version or entryTitle."
            )
        ranges = (_parse_temporal(v, errors) for v in params.get("temporal", []))
        boxes = (_parse_bbox(v, errors) for v in params.get("bounding_box", []))
        size = params.get("page_size", ["10"])[-1]
        page_size = _parse_int(size, "page_size", 0, MAX_PAGE_SIZE, errors)
        page_num = None
        if "page_num" in params:
            page_num = _parse_int(params["page_num"][-1], "page_num", 1, 10**9, errors)
        after = _parse_search_after(search_after, errors)
        if search_after and page_num is not None:
            errors.append("page_num is not allowed with search-after")
        descending = _parse_sort(params.get("sort_key", []), errors)
        temporal = [r for r in ranges if r is not None]
        lat_ranges = [b for b in boxes if b is not None]
        if errors:
            raise HttpError(400, "bad request", json.dumps(errors))
        return cls(params, options, temporal, lat_ranges, page_size, page_num, after, descending)

    def _text_matches(self, name: str, value: str) -> bool:
        """CMR string matching: case-insensitive by default, wildcards with ``pattern``."""
        wanted = self.params.get(name)
        if not wanted:
            return True
        if self.options.get(f"options[{name}][ignore_case]", True):
            value, wanted = value.casefold(), [w.casefold() for w in wanted]
        if self.options.get(f"options[{name}][pattern]", False):
            return any(fnmatch.fnmatchcase(value, w) for w in wanted)
        return value in wanted

    def _ids(self, prefix: str) -> set[str]:
        ids = self.params.get("concept_id", []) + self.params.get("collection_concept_id", [])
        return {i for i in ids if i.startswith(prefix)}

    def collections(self, available: dict[str, Collection]) -> list[Collection]:
        """The collections the filters select (granule filters are applied later)."""
        result = []
        keywords = [k.casefold().strip("*") for k in self.params.get("keyword", [])]
        for c in available.values():
            values = (c.short_name, c.version, c.provider, c.entry_title)
            fields = zip(_TEXT_PARAMS[:4], values, strict=True)
            if not all(self._text_matches(name, value) for name, value in fields):
                continue
            if self._ids("C") and c.concept_id not in self._ids("C"):
                continue
            if self._ids("G") and not any(i.endswith("-" + c.provider) for i in self._ids("G")):
                continue
            if not all(k in f"{c.short_name} {c.entry_title}".casefold() for k in keywords):
                continue
            if self.intersects_lat(c.south, c.north) and self._flag("has_granules", True):
                result.append(c)
        return result

    def _flag(self, name: str, default: bool) -> bool:
        return self.params.get(name, [str(default)])[-1].lower() == "true"

    def matches_granule(self, g: Granule) -> bool:
        """Whether ``g`` passes the granule filters (IDs, name, flags, temporal ranges)."""
        if self._ids("G") and g.concept_id not in self._ids("G"):
            return False
        if self._flag("online_only", False) or not self._flag("downloadable", True):
            return False  # every twin granule is downloadable
        if not self._text_matches("readable_granule_name", g.name):
            return False
        exclude = self.options.get("options[temporal][exclude_boundary]", False)
        for lo, hi in self.temporal or [(None, None)]:
            if exclude:
                ok = (lo is None or g.end > lo) and (hi is None or g.start < hi)
            else:
                ok = (lo is None or g.end >= lo) and (hi is None or g.start <= hi)
            if ok:
                return True
        return False

    def day_range(self, first: date, today: date) -> tuple[date, date]:
        """Days that can hold a match (a superset; exact times are checked per granule)."""
        if not self.temporal:
            return first, today
        los = [lo.date() if lo else first for lo, _ in self.temporal]
        his = [hi.date() if hi else today for _, hi in self.temporal]
        return max(first, min(los)), min(today, max(his))

    def intersects_lat(self, south: float, north: float) -> bool:
        """Whether ``south``…``north`` (degrees north) meets every bounding box."""
        return all(lo <= north and hi >= south for lo, hi in self.lat_ranges)

    def page(
        self, items: list[Any], key: Callable[[Any], tuple[int, str]], cap: int
    ) -> tuple[list[Any], str | None]:
        """The requested page and the ``CMR-Search-After`` value for the next one.

        ``items`` are sorted by ``key`` (descending when :attr:`descending`); ``cap`` is the
        largest page served (items).
        """
        size = min(self.page_size, cap)
        if self.search_after is not None:
            after = (int(self.search_after[0]), str(self.search_after[1]))

            def beyond(item: Any) -> bool:
                return key(item) < after if self.descending else key(item) > after

            start = next((i for i, item in enumerate(items) if beyond(item)), len(items))
        else:
            start = ((self.page_num or 1) - 1) * size
        page = items[start : start + size]
        return page, (json.dumps(list(key(page[-1]))) if page else None)


def _parse_sort(values: list[str], errors: list[str]) -> bool:
    """Whether ``sort_key`` asks for newest first (the first key decides; CMR's default
    order, oldest first, without one)."""
    descending = False
    for i, value in enumerate(values):
        key = value.strip()
        if key.lstrip("+-") not in _SORT_KEYS:
            errors.append(
                f"The sort key [{key}] is not supported by the twin (use "
                f"{' or '.join(_SORT_KEYS)}, with '-' for descending)"
            )
        elif i == 0:
            descending = key.startswith("-")
    return descending


def _parse_search_after(raw: str | None, errors: list[str]) -> list[Any] | None:
    """The ``CMR-Search-After`` header value: a JSON ``[ms, concept_id]`` pair."""
    if not raw:
        return None
    try:
        after = json.loads(raw)
        if not isinstance(after, list) or len(after) != 2:
            raise ValueError
    except ValueError:
        errors.append(f"The search-after header value is invalid: {raw}")
        return None
    return after


def _parse_temporal(value: str, errors: list[str]) -> _Range | None:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        errors.append(f"temporal [{value}] must be 'from,to' (the twin has no periodic ranges)")
        return None
    bounds: list[datetime | None] = []
    for part in parts:
        if not part:
            bounds.append(None)
            continue
        try:
            t = datetime.fromisoformat(part)
        except ValueError:
            errors.append(f"temporal datetime is invalid: [{part}]")
            return None
        bounds.append(t if t.tzinfo else t.replace(tzinfo=UTC))
    lo, hi = bounds
    if lo and hi and lo > hi:
        errors.append(f"temporal start [{parts[0]}] is after end [{parts[1]}]")
    return lo, hi


def _parse_bbox(value: str, errors: list[str]) -> tuple[float, float] | None:
    """``W,S,E,N`` (degrees east/north) → (south, north); the twin filters on latitude only."""
    try:
        west, south, east, north = (float(v) for v in value.split(","))
    except ValueError:
        errors.append(f"bounding_box [{value}] must be 'W,S,E,N' (four numbers)")
        return None
    if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        errors.append(f"bounding_box [{value}] is outside -180…180 / -90…90 or south > north")
        return None
    return south, north


def _parse_int(value: str, name: str, low: int, high: int, errors: list[str]) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        errors.append(f"{name} must be a number between {low} and {high}")
        return low
    return number


# -- results -------------------------------------------------------------------------------------


def search_response(
    hits: int, items: list[dict[str, Any]], after: str | None, started: float
) -> Response:
    """A UMM-JSON result page with CMR's headers.

    ``hits`` counts all matches, ``after`` is the next ``CMR-Search-After`` value (None after
    an empty page) and ``started`` the :func:`time.perf_counter` value at the request's start.
    """
    took = round((time.perf_counter() - started) * 1000)  # ms
    headers = {
        "CMR-Hits": str(hits),
        "CMR-Took": str(took),
        "CMR-Request-Id": secrets.token_hex(16),
    }
    if after is not None:
        headers["CMR-Search-After"] = after
    response = Response.json({"hits": hits, "took": took, "items": items}, headers=headers)
    response.content_type = _UMM_JSON
    return response


def umm_g(
    granule: Granule,
    *,
    size: int,
    produced: datetime,
    data_base_url: str,
    checksum: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The UMM-G 1.6.6 search item of ``granule``.

    ``size`` is the file's size in bytes, ``produced`` its production time (UTC),
    ``data_base_url`` the data host's base URL (the download link is relative to it) and
    ``checksum`` the file's (UMM-G algorithm name, hex digest), e.g. ``("SHA-256", "…")``.
    """
    c = granule.collection
    info: dict[str, Any] = {
        "Name": granule.name,
        "SizeInBytes": size,
        "Size": size / 2**20,
        "SizeUnit": "MB",
        "Format": c.file_format,
    }
    if checksum is not None:
        info["Checksum"] = {"Value": checksum[1], "Algorithm": checksum[0]}
    return {
        "meta": {
            "concept-type": "granule",
            "concept-id": granule.concept_id,
            "revision-id": 1,
            "native-id": f"{c.short_name}.{c.version}:{granule.name}",
            "provider-id": c.provider,
            "format": "application/vnd.nasa.cmr.umm+json",
            "revision-date": _iso(produced),
            "collection-concept-id": c.concept_id,
        },
        "umm": {
            "GranuleUR": f"{c.short_name}.{c.version}:{granule.name}",
            "CollectionReference": {"ShortName": c.short_name, "Version": c.version},
            "TemporalExtent": {
                "RangeDateTime": {
                    "BeginningDateTime": _iso(granule.start),
                    "EndingDateTime": _iso(granule.end),
                }
            },
            "SpatialExtent": _spatial(c),
            "DataGranule": {
                "ArchiveAndDistributionInformation": [info],
                "DayNightFlag": "Unspecified",
                "Identifiers": [
                    {"Identifier": granule.name, "IdentifierType": "ProducerGranuleId"}
                ],
                "ProductionDateTime": _iso(produced),
            },
            "RelatedUrls": [
                {
                    "URL": data_base_url + granule.path,
                    "Type": "GET DATA",
                    "Description": f"Download {granule.name}",
                    "MimeType": c.media_type,
                },
            ],
            "MetadataSpecification": {
                "URL": "https://cdn.earthdata.nasa.gov/umm/granule/v1.6.6",
                "Name": "UMM-G",
                "Version": "1.6.6",
            },
        },
    }


def umm_c(c: Collection, *, first_day: date, data_base_url: str) -> dict[str, Any]:
    """The UMM-C search item of ``c``: data from ``first_day`` on, files under ``data_base_url``."""
    return {
        "meta": {
            "concept-type": "collection",
            "concept-id": c.concept_id,
            "revision-id": 1,
            "native-id": f"{c.short_name}.{c.version}",
            "provider-id": c.provider,
            "format": "application/vnd.nasa.cmr.umm+json",
            "has-granules": True,
        },
        "umm": {
            "ShortName": c.short_name,
            "Version": c.version,
            "EntryTitle": c.entry_title,
            "Abstract": f"{c.entry_title} (offline twin replica: synthetic data).",
            "TemporalExtents": [
                {
                    "RangeDateTimes": [{"BeginningDateTime": f"{first_day}T00:00:00.000Z"}],
                    "EndsAtPresentFlag": True,
                }
            ],
            "SpatialExtent": _spatial(c),
            "ArchiveAndDistributionInformation": {
                "FileDistributionInformation": [{"FormatType": "Native", "Format": c.file_format}]
            },
            "RelatedUrls": [
                {
                    "URL": data_base_url + c.path_template.split("{")[0],
                    "Type": "GET DATA",
                    "URLContentType": "DistributionURL",
                }
            ],
        },
    }


def cmr_error(status: int, title: str, detail: str) -> dict[str, Any]:
    """CMR's error body ``{"errors": [...]}`` (``detail`` may already be a JSON list)."""
    try:
        errors = json.loads(detail)
    except ValueError:
        errors = None
    if not isinstance(errors, list):
        errors = [f"{title}: {detail}" if detail else title]
    return {"errors": errors}


def _spatial(c: Collection) -> dict[str, Any]:
    box = {
        "WestBoundingCoordinate": -180.0,
        "EastBoundingCoordinate": 180.0,
        "NorthBoundingCoordinate": c.north,
        "SouthBoundingCoordinate": c.south,
    }
    return {"HorizontalSpatialDomain": {"Geometry": {"BoundingRectangles": [box]}}}


def _iso(t: datetime) -> str:
    """``t`` as CMR writes times: UTC, millisecond precision, ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
