"""NASA Earthdata through ``earthaccess``: login, CMR search, and checked downloads.

``earthaccess`` logs in and searches; downloads use its authenticated ``requests`` session with
what ``earthaccess.download`` lacks: a timeout on every request, a size check against the CMR
metadata, an integrity check of the file, and an atomic move into the raw cache. Errors are
classified (EULA not accepted and bad credentials fail fast; 5xx/429/timeouts are retried).

Searches are few: the tasks of one month share one granule search (:func:`batch_search`), and
"what is the newest granule" asks CMR for one granule, newest first (``sort_key=-start_date``).
Integrity: when the granule's UMM-G record carries a checksum (``Checksum`` of its
``ArchiveAndDistributionInformation``: MD5 or SHA-1/256/384/512, as some DAACs publish), the
download is hashed while it streams and compared with it; only without one is the file decoded
(the source's ``check``) to prove it intact.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from smda.errors import (
    CredentialsError,
    LicenceNotAccepted,
    MalformedFile,
    NotYetAvailable,
    SmdaError,
    TransientError,
)
from smda.ingest.clients import TIMEOUT, earthdata_login, single_attempt
from smda.ingest.endpoints import redact_url
from smda.ingest.retry import classify, retry_call
from smda.ingest.sources.base import FetchTask, IngestContext
from smda.storage.atomic import atomic_path
from smda.storage.store import RawFile

__all__ = [
    "batch_search",
    "download_granule",
    "granule_checksum",
    "granule_size",
    "granule_url",
    "login",
    "search",
]

LOG = logging.getLogger(__name__)


_TRANSIENT_TEXT = (
    r"\b(5\d\d|429)\b|timed? ?out|connection|service unavailable|bad gateway|"
    r"internal server error|too many requests|gateway timeout"
)


def classify_earthdata(exc: BaseException, what: str) -> SmdaError:
    """earthaccess raises bare RuntimeErrors for CMR failures: read their text (an HTTP error
    with its response is classified by its status, never by digits of its URL)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return classify(exc, what)
    text = str(exc)
    name = type(exc).__name__
    if name == "EulaNotAccepted" or "eula" in text.lower():
        return LicenceNotAccepted(
            f"{what}: the EULA of this collection is not accepted for your Earthdata account; "
            "accept it at https://urs.earthdata.nasa.gov (Applications → Authorized Apps)"
        )
    if name == "LoginAttemptFailure" or re.search(r"\b401\b", text):
        return CredentialsError(
            f"{what}: Earthdata rejected the credentials (EARTHDATA_TOKEN or username/password)"
        )
    if isinstance(exc, RuntimeError) and re.search(_TRANSIENT_TEXT, text, re.IGNORECASE):
        return TransientError(f"{what}: CMR failed: {text[:200]}")
    return classify(exc, what)


def login(ctx: IngestContext) -> Any:
    """Log in once per run (earthaccess keeps the session in module state)."""

    def do_login() -> Any:
        return retry_call(
            lambda: earthdata_login(ctx.endpoints),
            what="Earthdata login",
            policy=ctx.policy,
            classify_error=classify_earthdata,
        )

    return ctx.memo("earthdata-auth", do_login)


def search(
    ctx: IngestContext,
    short_name: str,
    version: str,
    start: date,
    end: date,
    *,
    newest_first: bool = False,
    count: int = -1,
) -> list[Any]:
    """Granules of a collection whose time range intersects the UTC days [start, end].

    ``newest_first`` sorts by start time, newest first (CMR ``sort_key=-start_date``);
    ``count`` > 0 fetches at most that many granules (all by default).
    """
    import earthaccess

    login(ctx)
    b = ctx.grid.bounds
    options: dict[str, Any] = {"sort_key": "-start_date"} if newest_first else {}

    def run() -> list[Any]:
        return list(
            earthaccess.search_data(
                count=count,
                short_name=short_name,
                version=version,
                temporal=(f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T23:59:59Z"),
                bounding_box=(b.west, b.south, b.east, b.north),
                **options,
            )
        )

    return retry_call(
        run,
        what=f"CMR search {short_name} {start}..{end}",
        policy=ctx.policy,
        classify_error=classify_earthdata,
    )


def batch_search(ctx: IngestContext, task: FetchTask, short_name: str, version: str) -> list[Any]:
    """The granules of the runs of consecutive days around ``task``'s days (:attr:`FetchTask.windows`):
    one search per run, shared by the tasks of the batch. Filter the result by ``task.days``."""
    granules: list[Any] = []
    for first, last in task.windows:

        def run(first: date = first, last: date = last) -> list[Any]:
            return search(ctx, short_name, version, first, last)

        if task.batch is None:
            granules += run()
        else:
            granules += task.batch.shared(f"cmr:{short_name}:{version}:{first}:{last}", run)
    return granules


def granule_url(granule: Any) -> str:
    links = [u["URL"] for u in granule["umm"].get("RelatedUrls", []) if u.get("Type") == "GET DATA"]
    if not links:
        raise MalformedFile(f"granule {granule['umm'].get('GranuleUR')} has no GET DATA link")
    return str(links[0])


def _file_info(granule: Any) -> list[dict[str, Any]]:
    """The granule's file entries, the downloaded file's own entry (by name) first."""
    info = granule["umm"].get("DataGranule", {}).get("ArchiveAndDistributionInformation", [])
    if isinstance(info, dict):
        info = [info]
    try:
        name = granule_url(granule).rsplit("/", 1)[-1]
    except MalformedFile:
        return list(info)
    return sorted(info, key=lambda i: i.get("Name") != name)


def granule_size(granule: Any) -> int | None:
    sizes = [i["SizeInBytes"] for i in _file_info(granule) if i.get("SizeInBytes") is not None]
    return int(sizes[0]) if sizes else None


#: UMM-G checksum algorithm → hashlib name (the others, e.g. Adler-32, are not verified)
_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def granule_checksum(granule: Any) -> tuple[str, str] | None:
    """(hashlib algorithm, lower-case hex digest) of the file from its UMM-G ``Checksum``.

    None when the record has no checksum, or one of an algorithm smda does not verify.
    """
    for info in _file_info(granule)[:1]:
        checksum = info.get("Checksum") or {}
        algorithm = _HASHES.get(str(checksum.get("Algorithm", "")).upper())
        value = str(checksum.get("Value", "")).strip().lower()
        if algorithm and value:
            return algorithm, value
    return None


class _Digests:
    """SHA-256 (recorded in the ledger) and the granule's checksum, computed in one pass."""

    def __init__(self, checksum: tuple[str, str] | None) -> None:
        self.checksum = checksum
        names = {"sha256"} | ({checksum[0]} if checksum else set())
        self._hashes = {n: hashlib.new(n, usedforsecurity=False) for n in names}

    def update(self, chunk: bytes) -> None:
        for h in self._hashes.values():
            h.update(chunk)

    def update_from(self, path: Path) -> _Digests:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                self.update(block)
        return self

    @property
    def sha256(self) -> str:
        return self._hashes["sha256"].hexdigest()

    def mismatch(self) -> str | None:
        """Why the file is not the one CMR describes (None: it is, or there is no checksum)."""
        if self.checksum is None:
            return None
        algorithm, expected = self.checksum
        got = self._hashes[algorithm].hexdigest()
        return None if got == expected else f"{algorithm} {got}, CMR says {expected}"


def granule_day(granule: Any) -> date:
    begin = granule["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"]
    return date.fromisoformat(str(begin)[:10])


def download_granule(
    ctx: IngestContext,
    granule: Any,
    dest: Path,
    *,
    check: Callable[[Path], None],
    provisional: bool = False,
) -> RawFile:
    """Download one granule into ``dest`` with timeout, size and integrity checks (atomic).

    Integrity is the UMM-G checksum when the record has one, else ``check`` (which decodes the
    file and raises :class:`MalformedFile` if it is not intact). A cached file that passes the
    same checks is not downloaded again.
    """
    url = granule_url(granule)
    name = url.rsplit("/", 1)[-1]
    target = dest / name
    expected = granule_size(granule)
    checksum = granule_checksum(granule)
    if target.exists() and (expected is None or target.stat().st_size == expected):
        digests = _Digests(checksum).update_from(target)
        try:
            _verify(target, digests, check)
            return _raw(target, url, provisional, digests.sha256)
        except MalformedFile:
            LOG.warning("cached %s is corrupt; downloading it again", target)

    def fetch() -> RawFile:
        return _fetch(url, target, expected, checksum, check, provisional)

    return retry_call(
        fetch, what=f"download {name}", policy=ctx.policy, classify_error=classify_earthdata
    )


def _verify(path: Path, digests: _Digests, check: Callable[[Path], None]) -> None:
    """MalformedFile unless ``path`` matches the checksum (or, without one, passes ``check``)."""
    if digests.checksum is None:
        check(path)
    elif (problem := digests.mismatch()) is not None:
        raise MalformedFile(f"{path.name}: checksum mismatch: {problem}")


def _fetch(
    url: str,
    target: Path,
    expected: int | None,
    checksum: tuple[str, str] | None,
    check: Callable[[Path], None],
    provisional: bool,
) -> RawFile:
    """One download attempt of ``url`` into ``target`` (module docstring: the checks)."""
    import earthaccess

    name = target.name
    session: requests.Session = single_attempt(earthaccess.get_requests_https_session())
    with session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True) as response:
        if response.status_code == 404:
            raise NotYetAvailable(f"{name} is not published yet (404)")
        if response.status_code >= 400:
            # read the body now: it says why (e.g. an EULA to accept)
            raise requests.HTTPError(
                f"{response.status_code} {response.reason} for {redact_url(url)}\n"
                f"{response.text[:500]}",
                response=response,
            )
        digests = _Digests(checksum)
        with atomic_path(target) as tmp:
            with tmp.open("wb") as fh:
                for chunk in response.iter_content(1 << 20):
                    fh.write(chunk)
                    digests.update(chunk)
            size = tmp.stat().st_size
            if expected is not None and size != expected:
                raise TransientError(
                    f"{name}: got {size} bytes, CMR says {expected}: truncated transfer"
                )
            try:
                _verify(tmp, digests, check)
            except MalformedFile as exc:
                raise TransientError(f"{name} arrived corrupt ({exc}); retrying") from exc
    return _raw(target, url, provisional, digests.sha256)


def _raw(path: Path, url: str, provisional: bool, sha256: str) -> RawFile:
    return RawFile(
        path=path,
        name=path.name,
        size=path.stat().st_size,
        sha256=sha256,
        version=path.stem.rsplit("_", 1)[-1] if path.suffix == ".h5" else "",
        url=redact_url(url),
        provisional=provisional,
    )


def newest_granule_day(
    ctx: IngestContext, short_name: str, version: str, lookback: int = 10
) -> date | None:
    """Day of the newest granule published in the last ``lookback`` days (one CMR item)."""
    start = ctx.today - timedelta(days=lookback)
    granules = search(ctx, short_name, version, start, ctx.today, newest_first=True, count=1)
    days = [granule_day(g) for g in granules]
    return max(days) if days else None
