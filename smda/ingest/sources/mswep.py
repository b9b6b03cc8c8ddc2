"""MSWEP daily precipitation from any fsspec location (rclone mirror, HTTP server, ...).

Files ``YYYYDDD.nc`` at 0.1° are found through a URL template (``SMDA_MSWEP_URL`` or the twin's
endpoint) with ``{yyyy}`` and ``{ddd}`` placeholders, read through fsspec, and conservatively
regridded to the 0.25° grid. A file is transferred once: one metadata request (size and version)
and one ``get_file`` straight into the raw cache, hashed while it arrives — never fsspec's
``get``, whose globbing and directory probes read an HTTP file a second time and take the ``?``
of a query string (``...nc?token=...``) for a wildcard. A downloaded file is proved intact by
decoding it, and that decode is the staging itself: the staged field is kept (per run, the last
few days) for :meth:`stage`, so a global 0.1° file is decompressed once, not twice. NRT files
younger than ten days are revised in place: a staged day younger than that is re-checked (a
metadata request: ETag/Last-Modified/size) on each run and re-fetched only when its version
changed.

The location may carry credentials (user info, query values such as a token): they are used for
the requests and redacted (:func:`~smda.ingest.endpoints.redact_url`) in everything stored,
logged or raised.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Final

import fsspec
import xarray as xr

from smda.errors import ConfigError, MalformedFile, NotYetAvailable, SmdaError, TransientError
from smda.ingest.endpoints import redact_text, redact_url
from smda.ingest.readers.mswep import open_mswep
from smda.ingest.retry import classify, retry_call
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.ingest.staging.precipitation import mswep_to_grid
from smda.storage.atomic import atomic_path
from smda.storage.store import DayRecord, RawFile

__all__ = ["MSWEP_FIRST_DAY", "REVISION_WINDOW_DAYS", "MswepSource"]

LOG = logging.getLogger(__name__)

#: first day of MSWEP V2.8 (the ``Past`` record; NRT continues it)
MSWEP_FIRST_DAY: Final[date] = date(1979, 1, 1)
#: NRT files younger than this are revised in place
REVISION_WINDOW_DAYS = 10
_TIMEOUT = 120
_KEEP_DECODED = 8  # staged days kept between fetch and stage (≥ the concurrent downloads)


class _Decoded:
    """Staged fields of the files decoded while fetching, by (path, SHA-256); bounded, LRU."""

    def __init__(self, size: int = _KEEP_DECODED) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], xr.Dataset] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: tuple[str, str], staged: xr.Dataset) -> None:
        with self._lock:
            self._items[key] = staged
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def pop(self, key: tuple[str, str]) -> xr.Dataset | None:
        with self._lock:
            return self._items.pop(key, None)


def _stat(fs: Any, path: str) -> dict[str, Any] | None:
    """``fs.info(path)``, None when there is no such file.

    fsspec's HTTP filesystem turns any failure of its HEAD/GET probe into FileNotFoundError;
    only a 404/410 (or a missing local file) means "not there". A timeout or a 5xx is raised
    as itself, for the retry to classify (a slow server is not an unpublished day).
    """
    try:
        return dict(fs.info(path))
    except FileNotFoundError as exc:
        cause = exc.__cause__
        if cause is None or isinstance(cause, FileNotFoundError):
            return None
        if getattr(cause, "status", None) in (404, 410):
            return None
        raise cause from exc


class _HashingWriter:
    """A write-only binary file that hashes (SHA-256) and counts the bytes written to it.

    fsspec's ``get_file`` writes into any file-like object (it asks for ``read``, ``tell`` and
    ``close``), so the digest of a download is computed while it arrives.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def read(self, size: int = -1) -> bytes:
        raise io.UnsupportedOperation("write-only")

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        """The caller owns (and closes) the underlying file."""


def _classify_redacted(url: str) -> Callable[[BaseException, str], SmdaError]:
    """:func:`~smda.ingest.retry.classify`, with the secrets of ``url`` removed from the
    message (a client's ``FileNotFoundError(url)`` would otherwise carry a token into the
    report)."""

    def classify_mswep(exc: BaseException, what: str) -> SmdaError:
        error = classify(exc, what)
        text = str(error)
        clean = redact_text(text, url)
        if clean != text:
            error.args = (clean,)
        return error

    return classify_mswep


def _decoded(ctx: IngestContext) -> _Decoded:
    cache: _Decoded = ctx.memo("mswep-decoded", _Decoded)
    return cache


def _template(ctx: IngestContext) -> str:
    if ctx.endpoints is not None:
        return ctx.endpoints.mswep.url_template
    if ctx.mswep_url:
        return ctx.mswep_url
    raise ConfigError(
        "no MSWEP location: set SMDA_MSWEP_URL to the daily file template, e.g. "
        "/srv/mswep/NRT/Daily/{yyyy}{ddd}.nc (an rclone-synced GloH2O folder)"
    )


def _url(ctx: IngestContext, day: date) -> str:
    return _template(ctx).format(yyyy=f"{day:%Y}", ddd=f"{day:%j}")


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "Last-Modified", "mtime", "LastModified"):
        if info.get(key):
            return f"{key}={info[key]}"
    return f"size={info.get('size')}"


class MswepSource(Source):
    name: ClassVar[str] = "mswep"
    provider: ClassVar[str] = "mswep"
    description: ClassVar[str] = (
        "MSWEP V2.8 NRT daily precipitation (0.1°), conservatively regridded"
    )
    first_day: ClassVar[date | None] = MSWEP_FIRST_DAY

    def _fs(self, ctx: IngestContext, url: str) -> tuple[Any, str]:
        import aiohttp

        kwargs: dict[str, Any] = {}
        if url.startswith(("http://", "https://")):
            kwargs["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=_TIMEOUT)}
        fs, path = fsspec.core.url_to_fs(url, **kwargs)
        return fs, path

    def _info(self, ctx: IngestContext, day: date) -> dict[str, Any] | None:
        url = _url(ctx, day)
        fs, path = self._fs(ctx, url)

        return retry_call(
            lambda: _stat(fs, path),
            what=f"mswep: {redact_url(url)}",
            policy=ctx.policy,
            classify_error=_classify_redacted(url),
        )

    def newest_available(self, ctx: IngestContext) -> date | None:
        for back in range(0, 8):
            day = ctx.today - timedelta(days=back)
            if self._info(ctx, day) is not None:
                return day
        return None

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        out: dict[date, list[RawFile]] = {}
        for day in task.days:

            def download(day: date = day) -> RawFile:
                return self._download(ctx, day)

            url = _url(ctx, day)
            out[day] = [
                retry_call(
                    download,
                    what=f"mswep {day} ({redact_url(url)})",
                    policy=ctx.policy,
                    classify_error=_classify_redacted(url),
                )
            ]
        return out

    def _download(self, ctx: IngestContext, day: date) -> RawFile:
        """One attempt at ``day``'s file: one metadata request, one transfer (hashed as it
        arrives), size-checked, decoded (staged) and cached."""
        url = _url(ctx, day)
        shown = redact_url(url)  # what is logged, raised and recorded: never the credentials
        fs, path = self._fs(ctx, url)
        target = ctx.store.raw_dir(self.name) / f"{day:%Y%j}.nc"
        info = _stat(fs, path)
        if info is None:
            raise NotYetAvailable(f"mswep: {shown} is not published yet")
        with atomic_path(target) as tmp:
            with tmp.open("wb") as fh:
                written = _HashingWriter(fh)
                try:
                    # get_file, not get: no glob expansion, no directory probe (a 2nd GET)
                    fs.get_file(path, written)
                except FileNotFoundError:  # gone between the metadata request and the GET
                    raise NotYetAvailable(f"mswep: {shown} is not published yet") from None
            if info.get("size") is not None and written.size != int(info["size"]):
                raise TransientError(f"mswep: {shown}: got {written.size} of {info['size']} bytes")
            try:
                staged: xr.Dataset | None = self._stage_file(tmp, ctx)
            except MalformedFile as exc:
                raise TransientError(f"mswep: {shown} arrived corrupt ({exc}); retrying") from exc
            except ValueError:  # decoded, so intact, but not for this grid: stage() says why
                staged = None
        digest = written.sha256.hexdigest()
        if staged is not None:
            _decoded(ctx).put((str(target), digest), staged)
        return RawFile(
            path=target,
            name=target.name,
            size=written.size,
            sha256=digest,
            version=_version(info),
            url=shown,
            provisional=(ctx.today - day).days < REVISION_WINDOW_DAYS,
        )

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        raw = files[0]
        staged = _decoded(ctx).pop((str(raw.path), raw.sha256))
        return staged if staged is not None else self._stage_file(raw.path, ctx)

    def _stage_file(self, path: Path, ctx: IngestContext) -> xr.Dataset:
        """Read one daily file and regrid it to the run's grid (MalformedFile if corrupt)."""
        staged = mswep_to_grid(open_mswep(path), ctx.grid)
        return (
            staged.to_dataset(name="precipitation") if isinstance(staged, xr.DataArray) else staged
        )

    def needs_refresh(self, day: date, record: DayRecord, ctx: IngestContext) -> bool:
        """A provisional (NRT, < 10 days old when fetched) day is re-fetched if its version changed."""
        if not record.provisional:
            return False
        info = self._info(ctx, day)
        if info is None:
            return False
        changed = _version(info) != record.versions.get(f"{day:%Y%j}.nc", "")
        if not changed and (ctx.today - day).days >= REVISION_WINDOW_DAYS:
            # out of the revision window and unchanged since we fetched it: it is final
            ctx.store.ledger(self.name).mark_final(day, ctx.today)
        return changed
