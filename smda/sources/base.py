"""The source interface: every provider is described, then fetched, then staged.

A :class:`Source` turns "these days for this grid" into provider requests (:meth:`plan`, pure:
no network), downloads them into the raw cache (:meth:`fetch`, through the provider's real
client, with bounded retries), and turns raw files into one analysis-ready dataset per day on
the grid (:meth:`stage`). :meth:`newest_available` asks the provider what it can deliver, and
:meth:`needs_refresh` says whether an already-staged day may have changed upstream (an MSWEP
NRT revision, ERA5T to be replaced by final ERA5).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from smda.endpoints import Endpoints
from smda.grid import Grid
from smda.retry import RetryPolicy
from smda.store import DayRecord, RawFile, Store

__all__ = ["FetchTask", "IngestContext", "Source"]

LOG = logging.getLogger(__name__)


@dataclass
class IngestContext:
    """Everything a source needs at run time (built once at the edge).

    ``today`` is the date of the world smda talks to: the real UTC date in production, the
    twin's clock with the offline twin.
    """

    store: Store
    endpoints: Endpoints | None
    today: date
    mswep_url: str | None = None
    ismn_path: Path | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    cache: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def grid(self) -> Grid:
        return self.store.grid

    def memo(self, key: str, factory: Any) -> Any:
        """A per-run cache for clients, logins and regridding indices (thread-safe)."""
        with self.lock:
            if key not in self.cache:
                self.cache[key] = factory()
            return self.cache[key]


@dataclass(frozen=True)
class FetchTask:
    """One provider request covering one or more days (planned offline)."""

    source: str
    key: str
    days: tuple[date, ...]
    request: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class Source(ABC):
    """A provider's data for smda (see the module docstring)."""

    name: ClassVar[str]
    provider: ClassVar[str]
    description: ClassVar[str]
    #: days of data each raw request covers at most (CDS: a month is kinder to the queue)
    max_days_per_task: ClassVar[int] = 1
    #: whether ``newest_available`` and ``fetch`` need the network
    remote: ClassVar[bool] = True

    @abstractmethod
    def newest_available(self, ctx: IngestContext) -> date | None:
        """Newest day the provider can deliver now (None: nothing or unknown)."""

    def plan(self, days: Sequence[date], ctx: IngestContext) -> list[FetchTask]:
        """Group ``days`` into provider requests (pure). Default: month-sized groups."""
        tasks: list[FetchTask] = []
        group: list[date] = []
        for day in sorted(days):
            if group and (
                (day.year, day.month) != (group[0].year, group[0].month)
                or len(group) >= self.max_days_per_task
            ):
                tasks.append(self._task(tuple(group), ctx))
                group = []
            group.append(day)
        if group:
            tasks.append(self._task(tuple(group), ctx))
        return tasks

    def _task(self, days: tuple[date, ...], ctx: IngestContext) -> FetchTask:
        key = f"{self.name}:{days[0].isoformat()}" + (
            f"..{days[-1].isoformat()}" if len(days) > 1 else ""
        )
        return FetchTask(self.name, key, days, self.request_for(days, ctx))

    def request_for(self, days: tuple[date, ...], ctx: IngestContext) -> dict[str, Any]:
        """The provider request for ``days`` (recorded as provenance)."""
        return {}

    @abstractmethod
    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        """Download ``task`` into the raw cache; the raw files of each day it delivered."""

    @abstractmethod
    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        """Read raw files of ``day`` and return its staged dataset on ``ctx.grid``."""

    def needs_refresh(self, day: date, record: DayRecord, ctx: IngestContext) -> bool:
        """Whether a staged day must be checked/re-fetched (default: never)."""
        return False
