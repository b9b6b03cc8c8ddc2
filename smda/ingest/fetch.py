"""Fetch and stage a date range for one or more sources: the ingest every run starts with.

For each source: days already staged (and intact) are skipped unless the source says they may
have changed upstream — a range that is all staged asks the provider nothing; otherwise ask the
provider for its newest day (when it cannot be asked, the staged days are used as they are, with
one warning for the source, and the others fail); days after it are *not yet available* (a
normal state); the rest are grouped into provider requests, fetched with bounded concurrency per
provider, staged onto the grid and recorded with provenance (the ledger is saved in batches
during the run and once at its end: :meth:`smda.storage.store.Ledger.batch`). A failing request fails only its
days (with the reason); a permanent refusal (credentials, licence) stops that source at once.
Sources are ingested concurrently (:data:`SOURCES_AT_ONCE` at a time, each in its own thread:
ERA5's decoding runs on both cores and beside the other sources' staging); progress callbacks
are called one at a time, the report lists the outcomes source by source in the order asked,
and a source that raises does not stop the others — their staged days and ledgers are kept — the
first error is raised once they are done.
Re-running is idempotent: nothing is fetched or rewritten when nothing changed. Days before a
source's archive begins are refused before any provider is asked
(:class:`~smda.errors.OutsideArchive`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from smda.errors import CredentialsError, LicenceNotAccepted, NotYetAvailable, SmdaError
from smda.ingest.sources import get_source
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.storage.integrity import note_repair
from smda.storage.store import DayRecord, RawFile

__all__ = ["DayOutcome", "IngestReport", "fetch_range", "fetch_ranges"]

LOG = logging.getLogger(__name__)

Status = Literal["fetched", "replaced", "unchanged", "skipped", "not_available", "failed"]

#: parallel requests per provider (the CDS queues jobs per user; keep it small)
CONCURRENCY = {"cds": 2, "earthdata": 4, "mswep": 4, "local": 1}
#: sources ingested at once: two keep both cores of a small machine staging (ERA5 beside the
#: others) with a global day's peak memory near 3 GB
SOURCES_AT_ONCE = 2


@dataclass(frozen=True)
class DayOutcome:
    source: str
    day: date
    status: Status
    reason: str = ""


@dataclass
class IngestReport:
    """What one ingest did, per source and day."""

    outcomes: list[DayOutcome] = field(default_factory=list)

    def add(self, outcome: DayOutcome) -> None:
        self.outcomes.append(outcome)

    def by_status(self, status: Status, source: str | None = None) -> list[DayOutcome]:
        return [
            o
            for o in self.outcomes
            if o.status == status and (source is None or o.source == source)
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            table.setdefault(o.source, {}).setdefault(o.status, 0)
            table[o.source][o.status] += 1
        return table

    @property
    def ok(self) -> bool:
        return not self.by_status("failed")


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def fetch_range(
    sources: Iterable[str | Source],
    start: date,
    end: date,
    ctx: IngestContext,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
    concurrency: dict[str, int] | None = None,
    sources_at_once: int = SOURCES_AT_ONCE,
) -> IngestReport:
    """Fetch and stage ``sources`` for every day in [start, end] (see the module docstring).

    ``sources`` are registry names, or :class:`~smda.ingest.sources.base.Source` objects (a
    provider of their own, e.g. files already on disk). ``sources_at_once=1`` ingests them one
    after the other.

    Raises :class:`~smda.errors.OutsideArchive`, before any request, if [start, end] reaches
    before the first day of one of the sources' archives.
    """
    return fetch_ranges(
        [(source, start, end) for source in sources],
        ctx,
        progress=progress,
        concurrency=concurrency,
        sources_at_once=sources_at_once,
    )


def fetch_ranges(
    spans: Sequence[tuple[str | Source, date, date]],
    ctx: IngestContext,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
    concurrency: dict[str, int] | None = None,
    sources_at_once: int = SOURCES_AT_ONCE,
) -> IngestReport:
    """:func:`fetch_range` with a span of days per source: ``(source, first, last)``."""
    limits = {**CONCURRENCY, **(concurrency or {})}
    chosen = [(get_source(s) if isinstance(s, str) else s, _days(a, b)) for s, a, b in spans]
    for (source, _), (_, first, last) in zip(chosen, spans, strict=True):
        source.check_archive(first, last)
    outcomes: list[list[DayOutcome]] = [[] for _ in chosen]
    lock = threading.Lock()

    def emitter(i: int) -> Callable[[DayOutcome], None]:
        def emit(outcome: DayOutcome) -> None:
            with lock:  # one callback at a time, whichever source's thread calls
                outcomes[i].append(outcome)
                if progress is not None:
                    progress(outcome)

        return emit

    with ThreadPoolExecutor(
        max_workers=max(1, min(sources_at_once, len(chosen))), thread_name_prefix="ingest"
    ) as pool:
        futures = [
            pool.submit(
                _ingest_source, source, days, ctx, emitter(i), limits.get(source.provider, 2)
            )
            for i, (source, days) in enumerate(chosen)
        ]
    report = IngestReport([o for per_source in outcomes for o in per_source])
    for future in futures:  # every source has finished (and saved its ledger): raise the first
        error = future.exception()
        if error is not None:
            raise error
    return report


def _ingest_source(
    source: Source,
    days: Sequence[date],
    ctx: IngestContext,
    emit: Callable[[DayOutcome], None],
    workers: int,
) -> None:
    ledger = ctx.store.ledger(source.name)
    staged = {day: _intact(ctx, source.name, day) for day in days}
    try:  # staged, intact days the source does not want re-checked need no provider at all
        fresh = {d for d in days if staged[d] and not _may_change(source, d, ledger.get(d), ctx)}
        newest = source.newest_available(ctx) if len(fresh) < len(days) else None
    except SmdaError as exc:
        _not_polled(source, days, staged, exc, emit)
        return
    wanted: list[date] = []
    for day in days:
        if day in fresh:
            emit(DayOutcome(source.name, day, "skipped", "already staged"))
        elif newest is None or day > newest:
            if staged[day]:
                emit(DayOutcome(source.name, day, "skipped", "already staged"))
            else:
                emit(DayOutcome(source.name, day, "not_available", f"newest available is {newest}"))
        else:
            wanted.append(day)
    tasks = source.plan(wanted, ctx)
    if not tasks:
        return
    stop_reason: list[str] = []
    with (
        ledger.batch(),
        ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix=f"fetch-{source.name}"
        ) as pool,
    ):
        futures: dict[Future[list[DayOutcome]], FetchTask] = {
            pool.submit(_run_task, source, task, ctx, stop_reason): task for task in tasks
        }
        for future in futures:
            for outcome in future.result():
                emit(outcome)


def _may_change(source: Source, day: date, record: DayRecord | None, ctx: IngestContext) -> bool:
    """Whether a staged day must be checked at the provider (no ledger record: yes)."""
    return record is None or source.needs_refresh(day, record, ctx)


def _not_polled(
    source: Source,
    days: Sequence[date],
    staged: dict[date, bool],
    exc: SmdaError,
    emit: Callable[[DayOutcome], None],
) -> None:
    """The provider could not be asked what it has: the staged days are used as they are, the
    others fail (one log line for the source, not one per day)."""
    missing = [d for d in days if not staged[d]]
    LOG.warning(
        "%s: cannot ask %s what is available (%s); %s",
        source.name,
        source.provider,
        exc,
        f"{len(missing)} day(s) not staged" if missing else "the staged files are used",
    )
    for day in days:
        if staged[day]:
            reason = f"already staged ({source.provider} could not be polled: {exc})"
            emit(DayOutcome(source.name, day, "skipped", reason))
        else:
            reason = f"cannot ask {source.provider} what is available: {exc}"
            emit(DayOutcome(source.name, day, "failed", reason))


def _intact(ctx: IngestContext, source: str, day: date) -> bool:
    """Whether ``day`` is staged and matches its ledger record; a corrupt staged file is
    removed (and counted) so that it is staged again — from the raw cache when it holds the
    provider's file, else downloaded again."""
    problem = ctx.store.problem(source, day)
    if problem is None:
        return True
    if problem != "not staged":
        note_repair("staged", f"{source} {day}: {problem}; staging it again")
        ctx.store.discard(source, day)
    return False


def _run_task(
    source: Source, task: FetchTask, ctx: IngestContext, stop_reason: list[str]
) -> list[DayOutcome]:
    if stop_reason:
        return [DayOutcome(source.name, d, "failed", stop_reason[0]) for d in task.days]
    try:
        delivered = source.fetch(task, ctx)
    except NotYetAvailable as exc:
        return [DayOutcome(source.name, d, "not_available", str(exc)) for d in task.days]
    except (CredentialsError, LicenceNotAccepted) as exc:
        stop_reason.append(str(exc))
        return [DayOutcome(source.name, d, "failed", str(exc)) for d in task.days]
    except SmdaError as exc:
        LOG.warning("%s failed: %s", task.key, exc)
        return [DayOutcome(source.name, d, "failed", str(exc)) for d in task.days]
    except Exception as exc:  # a bug must fail its days, not the whole run
        LOG.exception("%s failed unexpectedly", task.key)
        return [
            DayOutcome(source.name, d, "failed", f"unexpected {type(exc).__name__}: {exc}")
            for d in task.days
        ]
    outcomes = []
    for day in task.days:
        files = delivered.get(day)
        if not files:
            outcomes.append(
                DayOutcome(
                    source.name, day, "not_available", "the provider returned no data for this day"
                )
            )
            continue
        outcomes.append(_stage_day(source, day, files, ctx, task))
    return outcomes


def _same_files(record: DayRecord | None, files: list[RawFile]) -> bool:
    if record is None:
        return False
    recorded = sorted((f["name"], f.get("part_sha256") or f["sha256"]) for f in record.files)
    return recorded == sorted(f.identity for f in files)


def _stage_day(
    source: Source, day: date, files: list[RawFile], ctx: IngestContext, task: FetchTask
) -> DayOutcome:
    record = ctx.store.ledger(source.name).get(day)
    if _same_files(record, files) and ctx.store.intact(source.name, day):
        ctx.store.ledger(source.name).touch(day, ctx.today)
        return DayOutcome(source.name, day, "unchanged", "upstream files are identical")
    try:
        data = source.stage(day, files, ctx)
        ctx.store.write_staged(
            source.name, day, data, files, request=task.request, checked_on=ctx.today
        )
    except SmdaError as exc:
        return DayOutcome(source.name, day, "failed", f"staging failed: {exc}")
    except (OSError, ValueError, KeyError) as exc:
        LOG.exception("staging %s %s failed", source.name, day)
        return DayOutcome(
            source.name, day, "failed", f"staging failed: {type(exc).__name__}: {exc}"
        )
    if record is None:
        return DayOutcome(source.name, day, "fetched")
    was = "provisional" if record.provisional else "final"
    now = "provisional" if any(f.provisional for f in files) else "final"
    return DayOutcome(source.name, day, "replaced", f"upstream changed ({was} → {now})")


@dataclass(frozen=True)
class SourceStatus:
    """Where one source stands: at the provider and in the store."""

    source: str
    provider_newest: date | None
    provider_error: str
    staged_first: date | None
    staged_last: date | None
    staged_count: int
    gaps: list[tuple[date, date]]
    provisional: int

    @property
    def behind(self) -> int | None:
        """Days available at the provider but not staged after the last staged day."""
        if self.provider_newest is None:
            return None
        if self.staged_last is None:
            return None
        return max((self.provider_newest - self.staged_last).days, 0)


def _gaps(days: list[date]) -> list[tuple[date, date]]:
    gaps = []
    for prev, nxt in itertools.pairwise(days):
        if (nxt - prev).days > 1:
            gaps.append((prev + timedelta(days=1), nxt - timedelta(days=1)))
    return gaps


def source_status(
    names: Iterable[str], ctx: IngestContext, *, poll: bool = True
) -> list[SourceStatus]:
    """Per source: newest day at the provider (``poll``), staged range, gaps, provisional days."""
    out = []
    for name in names:
        source = get_source(name)
        newest, error = None, ""
        if poll:
            try:
                newest = source.newest_available(ctx)
            except SmdaError as exc:
                error = str(exc)
        staged = ctx.store.staged_days(name)
        ledger = ctx.store.ledger(name)
        provisional = sum(1 for d in staged if (r := ledger.get(d)) is not None and r.provisional)
        out.append(
            SourceStatus(
                name,
                newest,
                error,
                staged[0] if staged else None,
                staged[-1] if staged else None,
                len(staged),
                _gaps(staged),
                provisional,
            )
        )
    return out
