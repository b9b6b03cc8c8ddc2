"""MSWEP daily precipitation from any fsspec location (rclone mirror, HTTP server, ...).

Files ``YYYYDDD.nc`` at 0.1° are found through a URL template (``SMDA_MSWEP_URL`` or the twin's
endpoint) with ``{yyyy}`` and ``{ddd}`` placeholders, read through fsspec, and conservatively
regridded to the 0.25° grid. NRT files younger than ten days are revised in place: a staged day
younger than that is re-checked (a metadata request: ETag/Last-Modified/size) on each run and
re-fetched only when its version changed.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any, ClassVar

import fsspec
import xarray as xr

from smda.atomic import atomic_path
from smda.errors import ConfigError, MalformedFile, NotYetAvailable, TransientError
from smda.readers.mswep import open_mswep
from smda.retry import retry_call
from smda.sources.base import FetchTask, IngestContext, Source
from smda.staging.precipitation import mswep_to_grid
from smda.store import DayRecord, RawFile, sha256_file

__all__ = ["REVISION_WINDOW_DAYS", "MswepSource"]

LOG = logging.getLogger(__name__)

#: NRT files younger than this are revised in place
REVISION_WINDOW_DAYS = 10
_TIMEOUT = 120


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

        def ask() -> dict[str, Any] | None:
            try:
                return dict(fs.info(path))
            except FileNotFoundError:
                return None

        return retry_call(ask, what=f"mswep: {url}", policy=ctx.policy)

    def newest_available(self, ctx: IngestContext) -> date | None:
        for back in range(0, 8):
            day = ctx.today - timedelta(days=back)
            if self._info(ctx, day) is not None:
                return day
        return None

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        out: dict[date, list[RawFile]] = {}
        for day in task.days:
            url = _url(ctx, day)
            fs, path = self._fs(ctx, url)
            target = ctx.store.raw_dir(self.name) / f"{day:%Y%j}.nc"

            def download(
                fs: Any = fs,
                path: str = path,
                target: Any = target,
                url: str = url,
                day: date = day,
            ) -> RawFile:
                try:
                    info = dict(fs.info(path))
                except FileNotFoundError:
                    raise NotYetAvailable(f"mswep: {url} is not published yet") from None
                with atomic_path(target) as tmp:
                    fs.get(path, str(tmp))
                    if (
                        "size" in info
                        and info["size"] is not None
                        and tmp.stat().st_size != int(info["size"])
                    ):
                        raise TransientError(
                            f"mswep: {url}: got {tmp.stat().st_size} of {info['size']} bytes"
                        )
                    try:
                        open_mswep(tmp).close()
                    except MalformedFile as exc:
                        raise TransientError(
                            f"mswep: {url} arrived corrupt ({exc}); retrying"
                        ) from exc
                return RawFile(
                    path=target,
                    name=target.name,
                    size=target.stat().st_size,
                    sha256=sha256_file(target),
                    version=_version(info),
                    url=url,
                    provisional=(ctx.today - day).days < REVISION_WINDOW_DAYS,
                )

            out[day] = [retry_call(download, what=f"mswep {day}", policy=ctx.policy)]
        return out

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        field = open_mswep(files[0].path)
        staged = mswep_to_grid(field, ctx.grid)
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
