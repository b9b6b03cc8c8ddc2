"""The source interface: every provider is described, then fetched, then staged.

A :class:`Source` turns "these days for this grid" into provider requests (:meth:`plan`, pure:
no network), downloads them into the raw cache (:meth:`fetch`, through the provider's real
client, with bounded retries), and turns raw files into one analysis-ready dataset per day on
the grid (:meth:`stage`). Tasks planned together for one month share a :class:`TaskBatch`, so
that one provider request can serve them all (a month's CMR granule search instead of one per
day). :meth:`newest_available` asks the provider what it can deliver, and
:meth:`needs_refresh` says whether an already-staged day may have changed upstream (an MSWEP
NRT revision, ERA5T to be replaced by final ERA5).

A source's archive has a first day (:attr:`Source.first_day`: SMAP starts on 2015-03-31, ERA5 on
1940-01-01 …). Days before it will never exist: :meth:`Source.check_archive` refuses them before
anything is asked of the provider (:class:`~smda.errors.OutsideArchive`), instead of letting
them fail like an unreachable provider.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import xarray as xr

from smda.errors import OutsideArchive
from smda.geo.grid import Grid
from smda.ingest.endpoints import Endpoints
from smda.ingest.retry import RetryPolicy
from smda.storage.store import DayRecord, RawFile, Store

__all__ = ["FetchTask", "IngestContext", "Source", "TaskBatch"]

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


@dataclass(eq=False)
class TaskBatch:
    """The days of the tasks planned together (one month of one :meth:`Source.plan` call).

    A task's ``fetch`` may ask the provider about a whole run of consecutive batch days once
    and share the answer with the other tasks of the batch (:meth:`shared`); the answer lives
    as long as the tasks do (one ingest run), so a later run asks again.
    """

    days: tuple[date, ...]
    _results: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def run_of(self, day: date) -> tuple[date, date]:
        """First and last day of the run of consecutive batch days that holds ``day``."""
        if day not in self.days:
            return day, day
        i = j = self.days.index(day)
        while i > 0 and (self.days[i] - self.days[i - 1]).days == 1:
            i -= 1
        while j + 1 < len(self.days) and (self.days[j + 1] - self.days[j]).days == 1:
            j += 1
        return self.days[i], self.days[j]

    def shared[T](self, key: str, factory: Callable[[], T]) -> T:
        """``factory()`` once per ``key`` for all the tasks of the batch (thread-safe).

        Concurrent callers wait for the first; a factory that raises is not remembered (the
        next caller tries again).
        """
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._results:
                self._results[key] = factory()
            result: T = self._results[key]
            return result


@dataclass(frozen=True)
class FetchTask:
    """One provider request covering one or more days (planned offline).

    ``batch`` groups the tasks planned together for one month (None: a task of its own).
    """

    source: str
    key: str
    days: tuple[date, ...]
    request: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    batch: TaskBatch | None = field(default=None, hash=False, compare=False)

    @property
    def windows(self) -> list[tuple[date, date]]:
        """Day ranges to ask the provider about: the runs of consecutive batch days that hold
        the task's days (the task's own first and last day when it has no batch)."""
        if self.batch is None:
            return [(self.days[0], self.days[-1])]
        return sorted({self.batch.run_of(day) for day in self.days})


class Source(ABC):
    """A provider's data for smda (see the module docstring)."""

    name: ClassVar[str]
    provider: ClassVar[str]
    description: ClassVar[str]
    #: days of data each raw request covers at most (CDS: a month is kinder to the queue)
    max_days_per_task: ClassVar[int] = 1
    #: whether ``newest_available`` and ``fetch`` need the network
    remote: ClassVar[bool] = True
    #: first day of the provider's archive (None: no known first day, e.g. a local download)
    first_day: ClassVar[date | None] = None

    def check_archive(self, start: date, end: date) -> None:
        """Raise :class:`~smda.errors.OutsideArchive` if ``start`` … ``end`` reaches before
        :attr:`first_day` (pure: the provider is not asked)."""
        if self.first_day is not None and start < self.first_day:
            raise OutsideArchive(self.name, self.first_day, start, end)

    @abstractmethod
    def newest_available(self, ctx: IngestContext) -> date | None:
        """Newest day the provider can deliver now (None: nothing or unknown)."""

    def plan(self, days: Sequence[date], ctx: IngestContext) -> list[FetchTask]:
        """Group ``days`` into provider requests (pure). Default: month-sized groups of at
        most :attr:`max_days_per_task` days; the tasks of a month share a :class:`TaskBatch`."""
        tasks: list[FetchTask] = []
        by_month: dict[tuple[int, int], list[date]] = {}
        for day in sorted(set(days)):
            by_month.setdefault((day.year, day.month), []).append(day)
        for month in by_month.values():
            batch = TaskBatch(tuple(month))
            for i in range(0, len(month), self.max_days_per_task):
                group = tuple(month[i : i + self.max_days_per_task])
                tasks.append(self._task(group, ctx, batch))
        return tasks

    def _task(
        self, days: tuple[date, ...], ctx: IngestContext, batch: TaskBatch | None = None
    ) -> FetchTask:
        key = f"{self.name}:{days[0].isoformat()}" + (
            f"..{days[-1].isoformat()}" if len(days) > 1 else ""
        )
        return FetchTask(self.name, key, days, self.request_for(days, ctx), batch)

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
