"""NASA Earthdata through ``earthaccess``: login, CMR search, and checked downloads.

``earthaccess`` logs in and searches; downloads use its authenticated ``requests`` session with
what ``earthaccess.download`` lacks: a timeout on every request, a size check against the CMR
metadata, an integrity check of the file, and an atomic move into the raw cache. Errors are
classified (EULA not accepted and bad credentials fail fast; 5xx/429/timeouts are retried).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from smda.atomic import atomic_path
from smda.clients import TIMEOUT, earthdata_login
from smda.errors import (
    CredentialsError,
    LicenceNotAccepted,
    MalformedFile,
    NotYetAvailable,
    SmdaError,
    TransientError,
)
from smda.retry import classify, retry_call
from smda.sources.base import IngestContext
from smda.store import RawFile, sha256_file

__all__ = ["download_granule", "granule_size", "granule_url", "login", "search"]

LOG = logging.getLogger(__name__)


_TRANSIENT_TEXT = (
    r"\b(5\d\d|429)\b|timed? ?out|connection|service unavailable|bad gateway|"
    r"internal server error|too many requests|gateway timeout"
)


def classify_earthdata(exc: BaseException, what: str) -> SmdaError:
    """earthaccess raises bare RuntimeErrors for CMR failures: read their text."""
    text = str(exc)
    name = type(exc).__name__
    if name == "EulaNotAccepted" or "eula" in text.lower():
        return LicenceNotAccepted(
            f"{what}: the EULA of this collection is not accepted for your Earthdata account; "
            "accept it at https://urs.earthdata.nasa.gov (Applications → Authorized Apps)"
        )
    if name == "LoginAttemptFailure" or "401" in text:
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


def search(ctx: IngestContext, short_name: str, version: str, start: date, end: date) -> list[Any]:
    """Granules of a collection whose time range intersects the UTC days [start, end]."""
    import earthaccess

    login(ctx)
    b = ctx.grid.bounds
    bbox = (b.west, b.south, b.east, b.north)

    def run() -> list[Any]:
        return list(
            earthaccess.search_data(
                short_name=short_name,
                version=version,
                temporal=(f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T23:59:59Z"),
                bounding_box=bbox,
            )
        )

    return retry_call(
        run,
        what=f"CMR search {short_name} {start}..{end}",
        policy=ctx.policy,
        classify_error=classify_earthdata,
    )


def granule_url(granule: Any) -> str:
    links = [u["URL"] for u in granule["umm"].get("RelatedUrls", []) if u.get("Type") == "GET DATA"]
    if not links:
        raise MalformedFile(f"granule {granule['umm'].get('GranuleUR')} has no GET DATA link")
    return str(links[0])


def granule_size(granule: Any) -> int | None:
    info = granule["umm"].get("DataGranule", {}).get("ArchiveAndDistributionInformation", [])
    sizes = [i.get("SizeInBytes") for i in info if i.get("SizeInBytes") is not None]
    return int(sizes[0]) if sizes else None


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
    """Download one granule into ``dest`` with timeout, size and integrity checks (atomic)."""
    import earthaccess

    url = granule_url(granule)
    name = url.rsplit("/", 1)[-1]
    target = dest / name
    expected = granule_size(granule)
    if target.exists() and (expected is None or target.stat().st_size == expected):
        try:
            check(target)
            return _raw(target, url, provisional)
        except MalformedFile:
            LOG.warning("cached %s is corrupt; downloading it again", target)

    def fetch() -> RawFile:
        session: requests.Session = earthaccess.get_requests_https_session()
        with session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True) as response:
            if response.status_code == 404:
                raise NotYetAvailable(f"{name} is not published yet (404)")
            if response.status_code >= 400:
                # read the body now: it says why (e.g. an EULA to accept)
                raise requests.HTTPError(
                    f"{response.status_code} {response.reason} for {url}\n{response.text[:500]}",
                    response=response,
                )
            with atomic_path(target) as tmp:
                with tmp.open("wb") as fh:
                    for chunk in response.iter_content(1 << 20):
                        fh.write(chunk)
                size = tmp.stat().st_size
                if expected is not None and size != expected:
                    raise TransientError(
                        f"{name}: got {size} bytes, CMR says {expected}: truncated transfer"
                    )
                try:
                    check(tmp)
                except MalformedFile as exc:
                    raise TransientError(f"{name} arrived corrupt ({exc}); retrying") from exc
        return _raw(target, url, provisional)

    return retry_call(
        fetch, what=f"download {name}", policy=ctx.policy, classify_error=classify_earthdata
    )


def _raw(path: Path, url: str, provisional: bool) -> RawFile:
    return RawFile(
        path=path,
        name=path.name,
        size=path.stat().st_size,
        sha256=sha256_file(path),
        version=path.stem.rsplit("_", 1)[-1] if path.suffix == ".h5" else "",
        url=url,
        provisional=provisional,
    )


def newest_granule_day(
    ctx: IngestContext, short_name: str, version: str, lookback: int = 10
) -> date | None:
    granules = search(ctx, short_name, version, ctx.today - timedelta(days=lookback), ctx.today)
    days = [granule_day(g) for g in granules]
    return max(days) if days else None
