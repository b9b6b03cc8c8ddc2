"""Loopback replica of an MSWEP V2.8 distribution: a plain HTTP file server.

MSWEP has no public API: users sync the GloH2O Google Drive folder with rclone, or get
other access. The twin serves the same tree over HTTP (any fsspec URL works the same way)::

    /MSWEP_V280/NRT/Daily/            HTML index of the published files
    /MSWEP_V280/NRT/Daily/YYYYDDD.nc  daily precipitation, 0.1°, global

A day is published on the day itself (NRT latency ~3 h). Files younger than ten days are
revised in place: the content changes and ``Last-Modified``/``ETag`` move with each revision,
so a client can detect a revision by modification time, as SOURCES.md recommends. A drift
scenario (:mod:`smda_twin.scenario`) that changes a day gives its file another name in the cache
and another ``ETag``.
"""

from __future__ import annotations

import html
import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from smda_twin.clock import Clock
from smda_twin.faults import FaultPlan
from smda_twin.formats import mswep as mswep_format
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
from smda_twin.scenario import pinned, variant

__all__ = ["MswepReplica"]

ROOT = "/MSWEP_V280/NRT/Daily/"


class PrecipWorld(Protocol):
    def mswep_nrt(self, day: date, today: date) -> npt.NDArray[np.float32]: ...

    def mswep_revision(self, day: date, today: date) -> int: ...


class MswepReplica:
    """HTTP file server for MSWEP NRT daily files (see the module docstring)."""

    def __init__(
        self,
        world: PrecipWorld,
        clock: Clock,
        workdir: Path,
        *,
        log: RequestLog,
        faults: FaultPlan,
        network: Network = LOOPBACK,
    ):
        self.world = world
        self.clock = clock
        self.workdir = Path(workdir)
        self._lock = threading.Lock()
        self._file_locks: dict[Path, threading.Lock] = {}
        routes = [
            Route("GET", ROOT, self._index),
            Route("GET", ROOT + r"(?P<year>\d{4})(?P<doy>\d{3})\.nc", self._file),
        ]
        self.server = ReplicaServer(
            "mswep", routes, log=log, faults=faults, host=network.bind, url_host=network.host
        )

    @property
    def url_template(self) -> str:
        """URL template for smda's MSWEP source (``{yyyy}``: year, ``{ddd}``: day of year)."""
        return self.server.base_url + ROOT + "{yyyy}{ddd}.nc"

    def start(self) -> MswepReplica:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def published_days(self, since: date) -> list[date]:
        newest = self.clock.newest("mswep")
        return [since + timedelta(days=i) for i in range((newest - since).days + 1)]

    def _index(self, req: Request) -> Response:
        newest = self.clock.newest("mswep")
        first = newest - timedelta(days=int(req.arg("days", "400") or 400))
        names = [mswep_format.mswep_filename(d) for d in self.published_days(first)]
        links = "\n".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>' for n in names)
        body = f"<html><body><h1>Index of {ROOT}</h1>\n{links}\n</body></html>\n".encode()
        return Response(200, body, content_type="text/html")

    def _file(self, req: Request) -> Response:
        year, doy = int(req.match["year"]), int(req.match["doy"])
        try:
            day = date(year, 1, 1) + timedelta(days=doy - 1)
        except OverflowError:
            raise HttpError(404, "not found", req.path) from None
        if day.year != year or doy < 1 or not self.clock.available("mswep", day):
            raise HttpError(404, "not found", f"{req.path} is not published (yet)")
        path, etag = self._materialise(day)
        return Response(file=path, content_type="application/x-netcdf", headers={"ETag": etag})

    def _materialise(self, day: date) -> tuple[Path, str]:
        """The file for ``day`` as published today (one file per revision and drift scenario)
        and its ETag, made once (files of different days are made concurrently)."""
        today = self.clock.today
        world = pinned(self.world)
        revision = world.mswep_revision(day, today)
        tag = variant(world, "mswep", day)
        version = f"{day:%Y%j}-r{revision}" + (f"-{tag}" if tag else "")
        path = self.workdir / f"{version}.nc"
        with self._lock:
            lock = self._file_locks.setdefault(path, threading.Lock())
        with lock:
            if not path.exists():
                mswep_format.write_mswep_daily(
                    path, day=day, precipitation=world.mswep_nrt(day, today)
                )
                published = datetime(day.year, day.month, day.day, 3, tzinfo=UTC) + timedelta(
                    days=revision
                )
                stamp = published.timestamp()
                os.utime(path, (stamp, stamp))
        return path, f'"{version}"'
