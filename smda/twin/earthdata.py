"""Loopback replica of NASA Earthdata: Earthdata Login, CMR granule search and a DAAC data host.

Three :class:`~smda.twin.httpbase.ReplicaServer` instances share one request log and one
fault plan (provider ``"earthdata"``), as the real services are three different hosts:

**Earthdata Login** (HTTPS with a ``trustme`` CA, URL host ``localhost``; the CMR and data hosts
use ``127.0.0.1`` so that earthaccess never sends EDL credentials to them)::

    POST /api/users/find_or_create_token  Basic auth → access_token, token_type, expiration_date
    GET  /api/users/tokens                Basic auth → [{access_token, expiration_date}]
    GET  /profile, /api/users/{uid}       Bearer token (or Basic auth) → the user's profile
    GET  /api/v1/statuses                 service statuses, for ``earthaccess.status(system)``

**CMR search** (``cmr_base_url`` = ``http://127.0.0.1:PORT/search/``)::

    GET /search/granules.umm_json      short_name, version, provider, concept_id,
                                       temporal[] (from,to), bounding_box (W,S,E,N),
                                       readable_granule_name, page_size (0…2000), page_num;
                                       ``CMR-Hits`` header; search-after paging: the
                                       ``CMR-Search-After`` response header echoed back in the
                                       ``CMR-Search-After`` request header; an empty page ends
    GET /search/collections.umm_json   the same filters, for collections

Unknown parameters are refused with 400 and a CMR-style ``{"errors": [...]}`` body.

**Data host** (``data_base_url``; NSIDC and GES DISC layouts on one loopback host)::

    GET/HEAD /SMAP/SPL3SMP_E.006/YYYY.MM.DD/SMAP_L3_SM_P_E_YYYYMMDD_R19240_001.h5
    GET/HEAD /SMAP/SPL3SMP.009/YYYY.MM.DD/SMAP_L3_SM_P_YYYYMMDD_R19240_001.h5  (world with M36)
    GET/HEAD /data/GLDAS/GLDAS_NOAH025_3H.2.1/YYYY/DDD/GLDAS_NOAH025_3H.AYYYYMMDD.HHMM.021.nc4

Downloads need ``Authorization: Bearer <token>`` (401 otherwise). Files are generated from the
world on first use (once per granule, atomically, thread-safe) and cached in the work
directory; CMR reports their exact sizes. Only granules the clock has published are listed or
served (404 otherwise). The fault kind ``eula`` answers a download with the 403 "EULA
Acceptance Failure" that makes earthaccess raise ``EulaNotAccepted``.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import trustme

from smda.atomic import atomic_path
from smda.twin.clock import Clock
from smda.twin.faults import FaultPlan
from smda.twin.formats import gldas as gldas_format
from smda.twin.formats import smap as smap_format
from smda.twin.httpbase import HttpError, ReplicaServer, Request, RequestLog, Response, Route
from smda.twin.smap import SmapDay

if TYPE_CHECKING:
    from earthaccess.system import System

__all__ = ["COLLECTIONS", "Collection", "EarthdataReplica", "Granule"]

LOG = logging.getLogger(__name__)

_MAX_PAGE_SIZE = 2000  # the real CMR refuses larger pages
_UMM_JSON = "application/vnd.nasa.cmr.umm_results+json;version=1.6.6; charset=utf-8"
_DAY = timedelta(days=1)
_CRID = "R19240"  # composite release ID of the current SMAP L3 releases


class EarthdataWorld(Protocol):
    """What the replica needs from the synthetic world (:class:`smda.twin.world.World`).

    ``smap_l3(day)`` (EASE-Grid 2.0 M36) is optional: without it there is no ``SPL3SMP``.
    """

    def smap_l3e(self, day: date) -> SmapDay: ...

    def gldas_3h(self, time: datetime) -> npt.NDArray[np.float32]: ...


# -- collections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """One CMR collection the replica serves, and where its files live on the data host.

    ``path_template`` is formatted with the granule start time (``{t:%Y}``...) and ``name``.
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
        return [first + i * self.step for i in range(round(_DAY / self.step))]


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
            step=_DAY,
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
            step=_DAY,
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
        return self.start + self.collection.step - timedelta(milliseconds=1)

    @property
    def name(self) -> str:
        return _filename(self.collection.short_name, self.start)

    @property
    def path(self) -> str:
        return self.collection.path_template.format(t=self.start, name=self.name)

    @property
    def concept_id(self) -> str:
        """Stable and unique: the collection's number (last two digits) and the start hour."""
        number = self.collection.concept_id.split("-")[0][-2:]
        return f"G4{number}{self.start:%Y%m%d%H}-{self.collection.provider}"

    @property
    def sort_key(self) -> tuple[int, str]:
        return int(self.start.timestamp() * 1000), self.concept_id


def _filename(short_name: str, start: datetime) -> str:
    """The producer's file name (the format modules own the naming)."""
    if short_name == "SPL3SMP_E":
        return smap_format.spl3smp_e_filename(start.date(), _CRID, 1)
    if short_name == "SPL3SMP":
        return smap_format.spl3smp_filename(start.date(), _CRID, 1)
    return gldas_format.gldas_filename(start)


def _write_granule(world: EarthdataWorld, granule: Granule, path: Path) -> None:
    """Write ``granule`` from the world in its producer's format."""
    short, start = granule.collection.short_name, granule.start
    if short == "SPL3SMP_E":
        obs = world.smap_l3e(start.date())
        smap_format.write_spl3smp_e(path, day=obs.day, am=obs.am, pm=obs.pm, crid=_CRID)
    elif short == "SPL3SMP":
        obs = getattr(world, "smap_l3")(start.date())  # noqa: B009 - optional in the protocol
        smap_format.write_spl3smp(path, day=obs.day, am=obs.am, pm=obs.pm, crid=_CRID)
    else:
        sm = world.gldas_3h(start)  # SoilMoi0_10cm_inst, kg m-2, (600, 1440), -9999 fill
        gldas_format.write_gldas_noah025_3h(path, time=start, fields={"SoilMoi0_10cm_inst": sm})


# -- the replica ---------------------------------------------------------------------------------


class EarthdataReplica:
    """Earthdata Login + CMR + data host replicas (see the module docstring).

    Parameters
    ----------
    world:
        Source of the SMAP L3 and GLDAS fields.
    clock:
        Decides which granules are published (``"smap"`` and ``"gldas"`` latencies).
    workdir:
        Where the CA bundle and the generated granule files are kept.
    log, faults:
        Shared request log and the Earthdata fault plan.
    username, password:
        The Earthdata Login account the replica accepts (password random by default).
    token:
        The bearer token EDL hands out and the data host accepts (random JWT-like by default).
    first_day:
        Oldest day with data (default: the world's epoch, else 2015-03-31, SMAP's first day).
    max_page_size:
        Largest page CMR returns even if a client asks for more (to exercise paging).
    token_lifetime:
        Validity of the token from start-up (EDL tokens last 60 days).
    """

    def __init__(
        self,
        world: EarthdataWorld,
        clock: Clock,
        workdir: Path,
        *,
        log: RequestLog,
        faults: FaultPlan,
        username: str = "twin",
        password: str | None = None,
        token: str | None = None,
        first_day: date | None = None,
        max_page_size: int = _MAX_PAGE_SIZE,
        token_lifetime: timedelta = timedelta(days=60),
    ) -> None:
        self.world = world
        self.clock = clock
        self.workdir = Path(workdir)
        self.faults = faults
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.token = token or _jwt_like(username, token_lifetime)
        self.token_expires = datetime.now(UTC) + token_lifetime
        self.first_day = first_day or _world_epoch(world) or date(2015, 3, 31)
        self.max_page_size = max_page_size
        self.collections = {
            name: c
            for name, c in COLLECTIONS.items()
            if name != "SPL3SMP" or hasattr(world, "smap_l3")
        }
        # Generated files are reusable across runs of the same world only.
        spec = repr(getattr(world, "spec", type(world).__name__)).encode()
        self._granule_dir = self.workdir / "granules" / hashlib.sha256(spec).hexdigest()[:12]
        self._files_lock = threading.Lock()
        self._granule_locks: dict[str, threading.Lock] = {}
        self._ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("localhost").configure_cert(server_ctx)
        self.edl = ReplicaServer(
            "earthdata",
            [
                Route("POST", r"/api/users/find_or_create_token", self._find_or_create_token),
                Route("GET", r"/api/users/tokens", self._list_tokens),
                Route("GET", r"/profile", self._profile),
                Route("GET", r"/api/users/(?P<uid>[\w.-]+)", self._profile),
                Route("GET", r"/api/v1/statuses", self._statuses),
            ],
            log=log,
            faults=faults,
            url_host="localhost",
            ssl_context=server_ctx,
            error_body=_edl_error,
        )
        self.cmr = ReplicaServer(
            "earthdata",
            [
                Route("GET", r"/search/granules\.umm_json", self._search_granules),
                Route("GET", r"/search/collections\.umm_json", self._search_collections),
            ],
            log=log,
            faults=faults,
            error_body=_cmr_error,
        )
        routes = [Route("GET", c.path_regex, self._download) for c in self.collections.values()]
        self.data = ReplicaServer(
            "earthdata", routes, log=log, faults=faults, error_body=_data_error
        )

    # -- life cycle and description -------------------------------------------------------------
    def start(self) -> EarthdataReplica:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(self.ca_bundle_path))
        for server in (self.edl, self.cmr, self.data):
            server.start()
        return self

    def stop(self) -> None:
        # Each server notices its shutdown only at its next poll (0.5 s): stop them together.
        stoppers = [threading.Thread(target=s.stop) for s in (self.data, self.cmr, self.edl)]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    @property
    def edl_host(self) -> str:
        """EDL host name with port (``localhost:PORT``), for ``System(edl_hostname=...)``."""
        return f"localhost:{self.edl.port}"

    @property
    def cmr_base_url(self) -> str:
        return self.cmr.base_url + "/search/"

    @property
    def data_base_url(self) -> str:
        return self.data.base_url

    @property
    def ca_bundle_path(self) -> Path:
        """PEM file with the replica's CA (point ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` here)."""
        return self.workdir / "earthdata-ca.pem"

    def client_settings(self) -> dict[str, str]:
        """What a client needs (the fields of :class:`smda.endpoints.EarthdataEndpoint`)."""
        return {
            "edl_hostname": self.edl_host,
            "cmr_base_url": self.cmr_base_url,
            "token": self.token,
            "username": self.username,
            "password": self.password,
            "ca_bundle": str(self.ca_bundle_path),
        }

    def earthaccess_system(self) -> System:
        """An ``earthaccess.system.System`` whose every URL points at this replica."""
        from earthaccess.system import (
            CMRBaseURL,
            EDLHostname,
            StatusApiURL,
            StatusURL,
            System,
        )

        return System(
            cmr_base_url=CMRBaseURL(self.cmr_base_url),
            status_url=StatusURL(f"https://{self.edl_host}/"),
            status_api_url=StatusApiURL(f"https://{self.edl_host}/api/v1/statuses"),
            edl_hostname=EDLHostname(self.edl_host),
        )

    def expire_token(self) -> None:
        """Make the current token expired (EDL then answers 401, as for a stale token)."""
        self.token_expires = datetime.now(UTC) - timedelta(seconds=1)

    # -- catalogue ------------------------------------------------------------------------------
    def granules(self, collection: Collection, first: date, last: date) -> Iterator[Granule]:
        """Published granules of ``collection`` whose day is within ``first``…``last``."""
        day = max(first, self.first_day)
        last = min(last, self.clock.newest(collection.clock_product))
        while day <= last:
            for start in collection.starts(day):
                yield Granule(collection, start)
            day += _DAY

    def granule_file(self, granule: Granule) -> Path:
        """The granule's file, generated from the world on first use (atomic, once)."""
        path = self._granule_dir / granule.collection.short_name / granule.name
        if path.exists():
            return path
        with self._files_lock:
            lock = self._granule_locks.setdefault(str(path), threading.Lock())
        with lock:
            if not path.exists():
                t0 = time.perf_counter()
                with atomic_path(path) as tmp:
                    _write_granule(self.world, granule, tmp)
                LOG.debug("generated %s in %.2f s", path.name, time.perf_counter() - t0)
        return path

    # -- Earthdata Login ------------------------------------------------------------------------
    def _basic_user(self, req: Request) -> str | None:
        """The user named by valid HTTP Basic credentials, None without any; 401 if wrong."""
        scheme, _, value = (_header(req, "Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if not (
            hmac.compare_digest(user, self.username)
            and hmac.compare_digest(password, self.password)
        ):
            raise HttpError(401, "invalid_credentials", "Invalid user credentials")
        return user

    def _require_basic(self, req: Request) -> str:
        user = self._basic_user(req)
        if user is None:
            raise HttpError(
                401,
                "invalid_credentials",
                "Basic authentication (username and password) is required",
                {"WWW-Authenticate": 'Basic realm="Please enter your Earthdata Login credentials"'},
            )
        return user

    def _check_bearer(self, req: Request) -> None:
        scheme, _, value = (_header(req, "Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise HttpError(401, "unauthorized", "An Earthdata Login bearer token is required")
        if not hmac.compare_digest(value.strip(), self.token):
            raise HttpError(401, "invalid_token", "The bearer token is invalid")
        if datetime.now(UTC) >= self.token_expires:
            raise HttpError(401, "token_expired", "The bearer token has expired: get a new one")

    def _token_body(self) -> dict[str, str]:
        # EDL writes the expiry as month/day/year without leading zeros.
        t = self.token_expires
        return {"access_token": self.token, "expiration_date": f"{t.month}/{t.day}/{t.year}"}

    def _find_or_create_token(self, req: Request) -> Response:
        self._require_basic(req)
        return Response.json({**self._token_body(), "token_type": "Bearer"})

    def _list_tokens(self, req: Request) -> Response:
        self._require_basic(req)
        return Response.json([self._token_body()])

    def _profile(self, req: Request) -> Response:
        if self._basic_user(req) is None:
            self._check_bearer(req)
        uid = req.match.groupdict().get("uid") or self.username
        if uid != self.username:
            raise HttpError(403, "forbidden", f"the token does not belong to user {uid!r}")
        return Response.json(
            {
                "uid": self.username,
                "first_name": "Offline",
                "last_name": "Twin",
                "email_address": f"{self.username}@twin.invalid",
                "user_groups": [],
            }
        )

    def _statuses(self, req: Request) -> Response:
        names = ("Earthdata Login", "Common Metadata Repository")
        return Response.json({"statuses": [{"name": n, "status": "OK"} for n in names]})

    # -- CMR ------------------------------------------------------------------------------------
    def _cmr_token(self, req: Request) -> None:
        """CMR answers anonymous searches but refuses a token it cannot validate."""
        if _header(req, "Authorization") is not None:
            self._check_bearer(req)

    def _search_granules(self, req: Request) -> Response:
        started = time.perf_counter()
        self._cmr_token(req)
        query = _Query.parse(req, granules=True)
        matches = sorted(
            (g for c in query.collections(self.collections) for g in self._matching(c, query)),
            key=lambda g: g.sort_key,
        )
        page, after = query.page(matches, lambda g: g.sort_key, self.max_page_size)
        items = [self._umm_g(g) for g in page]
        return self._cmr_page(len(matches), items, after, started)

    def _matching(self, collection: Collection, query: _Query) -> Iterator[Granule]:
        first, last = query.day_range(self.first_day, self.clock.today)
        for granule in self.granules(collection, first, last):
            if query.matches_granule(granule):
                yield granule

    def _search_collections(self, req: Request) -> Response:
        started = time.perf_counter()
        self._cmr_token(req)
        query = _Query.parse(req, granules=False)
        first, last = query.day_range(self.first_day, self.clock.today)
        matches = query.collections(self.collections) if first <= last else []
        page, after = query.page(matches, lambda c: (0, c.concept_id), self.max_page_size)
        return self._cmr_page(len(matches), [self._umm_c(c) for c in page], after, started)

    def _cmr_page(
        self, hits: int, items: list[dict[str, Any]], after: str | None, started: float
    ) -> Response:
        took = round((time.perf_counter() - started) * 1000)
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

    def _umm_g(self, granule: Granule) -> dict[str, Any]:
        c = granule.collection
        stat = self.granule_file(granule).stat()
        size, produced = stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)
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
                    "ArchiveAndDistributionInformation": [
                        {
                            "Name": granule.name,
                            "SizeInBytes": size,
                            "Size": size / 2**20,
                            "SizeUnit": "MB",
                            "Format": c.file_format,
                        }
                    ],
                    "DayNightFlag": "Unspecified",
                    "Identifiers": [
                        {"Identifier": granule.name, "IdentifierType": "ProducerGranuleId"}
                    ],
                    "ProductionDateTime": _iso(produced),
                },
                "RelatedUrls": [
                    {
                        "URL": self.data_base_url + granule.path,
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

    def _umm_c(self, c: Collection) -> dict[str, Any]:
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
                        "RangeDateTimes": [
                            {"BeginningDateTime": f"{self.first_day}T00:00:00.000Z"}
                        ],
                        "EndsAtPresentFlag": True,
                    }
                ],
                "SpatialExtent": _spatial(c),
                "ArchiveAndDistributionInformation": {
                    "FileDistributionInformation": [
                        {"FormatType": "Native", "Format": c.file_format}
                    ]
                },
                "RelatedUrls": [
                    {
                        "URL": self.data_base_url + c.path_template.split("{")[0],
                        "Type": "GET DATA",
                        "URLContentType": "DistributionURL",
                    }
                ],
            },
        }

    # -- data host ------------------------------------------------------------------------------
    def _download(self, req: Request) -> Response:
        self._check_bearer(req)
        granule = self._granule_at(req.path)
        if granule is None:
            raise HttpError(404, "Not Found", f"no file at {req.path}")
        if self.faults.take(req.method, req.path, ("eula",)) is not None:
            raise HttpError(
                403,
                "EULA Acceptance Failure",
                f"User {self.username} has not accepted the EULA for "
                f"{granule.collection.short_name}: accept it at "
                f"https://{self.edl_host}/users/{self.username}/unaccepted_eulas",
            )
        day = granule.start.date()
        if day < self.first_day or not self.clock.available(granule.collection.clock_product, day):
            raise HttpError(404, "Not Found", f"{granule.name} is not published (yet)")
        return Response(file=self.granule_file(granule), content_type=granule.collection.media_type)

    def _granule_at(self, path: str) -> Granule | None:
        """The granule whose URL path is ``path`` (None if there is none)."""
        for c in self.collections.values():
            m = re.fullmatch(c.path_regex, path)
            if m is None:
                continue
            fields = m.groupdict()
            try:
                if fields.get("j"):
                    day = date(int(fields["y"]), 1, 1) + timedelta(days=int(fields["j"]) - 1)
                else:
                    day = date(int(fields["y"]), int(fields["m"]), int(fields["d"]))
            except (ValueError, OverflowError):
                return None
            candidates = (Granule(c, start) for start in c.starts(day))
            return next((g for g in candidates if g.path == path), None)
        return None


# -- CMR query parsing ---------------------------------------------------------------------------

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


@dataclass
class _Query:
    """A parsed CMR search: the filters, the page and the search-after position."""

    params: dict[str, list[str]]
    options: dict[str, bool]
    temporal: list[_Range]
    lat_ranges: list[tuple[float, float]]
    page_size: int
    page_num: int | None
    search_after: list[Any] | None

    @classmethod
    def parse(cls, req: Request, *, granules: bool) -> _Query:
        """Validate like CMR: every problem is listed in one 400 ``{"errors": [...]}``."""
        errors: list[str] = []
        params: dict[str, list[str]] = {}
        options: dict[str, bool] = {}
        allowed = _GRANULE_PARAMS if granules else _COLLECTION_PARAMS
        for key, values in req.query.items():
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
        page_size = _parse_int(size, "page_size", 0, _MAX_PAGE_SIZE, errors)
        page_num = None
        if "page_num" in params:
            page_num = _parse_int(params["page_num"][-1], "page_num", 1, 10**9, errors)
        search_after = None
        raw_after = _header(req, "CMR-Search-After")
        if raw_after:
            try:
                search_after = json.loads(raw_after)
                if not isinstance(search_after, list) or len(search_after) != 2:
                    raise ValueError
            except ValueError:
                errors.append(f"The search-after header value is invalid: {raw_after}")
            if page_num is not None:
                errors.append("page_num is not allowed with search-after")
        temporal = [r for r in ranges if r is not None]
        lat_ranges = [b for b in boxes if b is not None]
        if errors:
            raise HttpError(400, "bad request", json.dumps(errors))
        return cls(params, options, temporal, lat_ranges, page_size, page_num, search_after)

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
        return all(lo <= north and hi >= south for lo, hi in self.lat_ranges)

    def page(
        self, items: list[Any], key: Callable[[Any], tuple[int, str]], cap: int
    ) -> tuple[list[Any], str | None]:
        """The requested page and the ``CMR-Search-After`` value for the next one."""
        size = min(self.page_size, cap)
        if self.search_after is not None:
            after = (int(self.search_after[0]), str(self.search_after[1]))
            start = next((i for i, item in enumerate(items) if key(item) > after), len(items))
        else:
            start = ((self.page_num or 1) - 1) * size
        page = items[start : start + size]
        return page, (json.dumps(list(key(page[-1]))) if page else None)


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


# -- helpers ---------------------------------------------------------------------------------


def _header(req: Request, name: str) -> str | None:
    """A request header, whatever the case the client wrote its name in."""
    wanted = name.lower()
    return next((v for k, v in req.headers.items() if k.lower() == wanted), None)


def _spatial(c: Collection) -> dict[str, Any]:
    box = {
        "WestBoundingCoordinate": -180.0,
        "EastBoundingCoordinate": 180.0,
        "NorthBoundingCoordinate": c.north,
        "SouthBoundingCoordinate": c.south,
    }
    return {"HorizontalSpatialDomain": {"Geometry": {"BoundingRectangles": [box]}}}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _world_epoch(world: Any) -> date | None:
    epoch = getattr(getattr(world, "spec", None), "epoch", None)
    if isinstance(epoch, datetime):
        return epoch.date()
    return epoch if isinstance(epoch, date) else None


def _jwt_like(username: str, lifetime: timedelta) -> str:
    """A token shaped like EDL's (a signed JWT); only this replica can check it."""
    now = int(time.time())

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"typ": "JWT", "origin": "Earthdata Login", "alg": "HS256"}).encode())
    payload = b64(
        json.dumps(
            {
                "type": "User",
                "uid": username,
                "exp": now + int(lifetime.total_seconds()),
                "iat": now,
                "iss": "https://twin.invalid",
                "identity_provider": "edl_ops",
                "jti": secrets.token_hex(8),
            }
        ).encode()
    )
    mac = hmac.new(secrets.token_bytes(32), f"{header}.{payload}".encode(), hashlib.sha256)
    signature = b64(mac.digest())
    return f"{header}.{payload}.{signature}"


def _edl_error(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"error": title, "error_description": detail or title}


def _cmr_error(status: int, title: str, detail: str) -> dict[str, Any]:
    try:
        errors = json.loads(detail)
    except ValueError:
        errors = None
    if not isinstance(errors, list):
        errors = [f"{title}: {detail}" if detail else title]
    return {"errors": errors}


def _data_error(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"status_code": status, "error_description": title, "details": detail}
