"""Loopback replica of NASA Earthdata: Earthdata Login, CMR granule search and a DAAC data host.

Three :class:`~smda_twin.httpbase.ReplicaServer` instances share one request log and one
fault plan (provider ``"earthdata"``), as the real services are three different hosts:

**Earthdata Login** (HTTPS with a ``trustme`` CA, URL host ``localhost`` by default; the CMR and
data hosts use ``127.0.0.1``, another name (:class:`~smda_twin.httpbase.Network`), so that earthaccess never sends EDL credentials to them)::

    POST /api/users/find_or_create_token  Basic auth → access_token, token_type, expiration_date
    GET  /api/users/tokens                Basic auth → [{access_token, expiration_date}]
    GET  /profile, /api/users/{uid}       Bearer token (or Basic auth) → the user's profile
    GET  /api/v1/statuses                 service statuses, for ``earthaccess.status(system)``

**CMR search** (``cmr_base_url`` = ``http://127.0.0.1:PORT/search/``)::

    GET /search/granules.umm_json      short_name, version, provider, concept_id,
                                       temporal[] (from,to), bounding_box (W,S,E,N),
                                       readable_granule_name, page_size (0…2000), page_num,
                                       sort_key (start_date/end_date, ``-``: newest first);
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
directory; CMR reports their exact sizes and SHA-256 checksums (UMM-G ``Checksum``, as some
DAACs publish; only the page's granules are generated, so ``page_size=1`` with
``sort_key=-start_date`` makes one file). Only granules the clock has published are listed or
served (404 otherwise). The fault kind ``eula`` answers a download with the 403 "EULA
Acceptance Failure" that makes earthaccess raise ``EulaNotAccepted``.

This module holds Earthdata Login and wires the three servers; the CMR search (collections,
query validation, paging, UMM items) is in :mod:`smda_twin.cmr` and the granule catalogue and
file generation in :mod:`smda_twin.granules`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme

from smda_twin.clock import Clock
from smda_twin.cmr import (
    COLLECTIONS,
    MAX_PAGE_SIZE,
    CmrQuery,
    Collection,
    Granule,
    cmr_error,
    search_response,
    umm_c,
    umm_g,
)
from smda_twin.faults import FaultPlan
from smda_twin.granules import EarthdataWorld, GranuleFiles, granule_at, published
from smda_twin.httpbase import (
    LOOPBACK,
    HttpError,
    Network,
    ReplicaServer,
    Request,
    RequestLog,
    Response,
    Route,
)

if TYPE_CHECKING:
    from earthaccess.system import System

__all__ = ["COLLECTIONS", "Collection", "EarthdataReplica", "Granule"]

#: granule files a search makes at once (the world's numpy work and compression overlap)
_GENERATORS = max(2, min(4, os.cpu_count() or 1))


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
        max_page_size: int = MAX_PAGE_SIZE,
        token_lifetime: timedelta = timedelta(days=60),
        network: Network = LOOPBACK,
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
        self._files = GranuleFiles(world, self.workdir)
        self._ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(network.login_host).configure_cert(server_ctx)
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
            host=network.bind,
            url_host=network.login_host,
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
            error_body=cmr_error,
            host=network.bind,
            url_host=network.host,
        )
        routes = [Route("GET", c.path_regex, self._download) for c in self.collections.values()]
        self.data = ReplicaServer(
            "earthdata",
            routes,
            log=log,
            faults=faults,
            error_body=_data_error,
            host=network.bind,
            url_host=network.host,
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
        return f"{self.edl.url_host}:{self.edl.port}"

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
        """What a client needs (the fields of :class:`smda.ingest.endpoints.EarthdataEndpoint`)."""
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
        newest = self.clock.newest(collection.clock_product)
        yield from published(collection, first, last, first_day=self.first_day, newest=newest)

    def granule_file(self, granule: Granule) -> Path:
        """The granule's file, generated from the world on first use (atomic, once)."""
        return self._files.path(granule)

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
        query = self._query(req, granules=True)
        matches = sorted(
            (g for c in query.collections(self.collections) for g in self._matching(c, query)),
            key=lambda g: g.sort_key,
            reverse=query.descending,
        )
        page, after = query.page(matches, lambda g: g.sort_key, self.max_page_size)
        if len(page) > 1:  # make the page's missing files together (a month: 31 to 248 files)
            workers = min(_GENERATORS, len(page))
            with ThreadPoolExecutor(workers, thread_name_prefix="twin-granules") as pool:
                list(pool.map(self._files.path, page))
        items = [self._umm_g(g) for g in page]
        return search_response(len(matches), items, after, started)

    def _query(self, req: Request, *, granules: bool) -> CmrQuery:
        after = _header(req, "CMR-Search-After")
        return CmrQuery.parse(req.query, search_after=after, granules=granules)

    def _matching(self, collection: Collection, query: CmrQuery) -> Iterator[Granule]:
        first, last = query.day_range(self.first_day, self.clock.today)
        for granule in self.granules(collection, first, last):
            if query.matches_granule(granule):
                yield granule

    def _search_collections(self, req: Request) -> Response:
        started = time.perf_counter()
        self._cmr_token(req)
        query = self._query(req, granules=False)
        first, last = query.day_range(self.first_day, self.clock.today)
        matches = query.collections(self.collections) if first <= last else []
        page, after = query.page(matches, lambda c: (0, c.concept_id), self.max_page_size)
        items = [umm_c(c, first_day=self.first_day, data_base_url=self.data_base_url) for c in page]
        return search_response(len(matches), items, after, started)

    def _umm_g(self, granule: Granule) -> dict[str, Any]:
        info = self._files.info(granule)
        return umm_g(
            granule,
            size=info.size,
            produced=datetime.fromtimestamp(info.mtime, UTC),
            data_base_url=self.data_base_url,
            checksum=("SHA-256", info.sha256),
        )

    # -- data host ------------------------------------------------------------------------------
    def _download(self, req: Request) -> Response:
        self._check_bearer(req)
        granule = granule_at(self.collections, req.path)
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


# -- helpers ---------------------------------------------------------------------------------


def _header(req: Request, name: str) -> str | None:
    """A request header, whatever the case the client wrote its name in."""
    wanted = name.lower()
    return next((v for k, v in req.headers.items() if k.lower() == wanted), None)


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


def _data_error(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"status_code": status, "error_description": title, "details": detail}
