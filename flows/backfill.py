"""The backfill flow: fetch a date range in parallel, then step its days in order.

::

    fetch: one task per (source, month) chunk, bounded per provider   ┐ parallel (threads, or
           (``per_provider`` chunks in flight, one per source)          ┘ Dask with prefect-dask)
    step:  step-days in blocks of STEP_BLOCK_DAYS consecutive days, in order (each day needs the
           state of the day before; within a block a day publishes and the next day's inputs
           are read while a day steps), then run-day for the later days a re-run invalidated
           (so the chain stays whole)
    validate the days computed → artifacts

Resumable and idempotent: a day already in the state chain with the same provenance is skipped
(so a crashed or cancelled backfill started again resumes where it stopped, with the same bytes
as an uninterrupted run), a staged input is not fetched again. ``force=True`` recomputes every
day of the range; re-running a day invalidates the later days of its chain, which this flow then
recomputes. A range starting before the first state of the chain starts cold (spin-up).

Task runner: threads by default (:class:`~prefect.task_runners.ThreadPoolTaskRunner`); set
``SMDA_TASK_RUNNER=dask`` (a local Dask cluster) or ``SMDA_TASK_RUNNER=tcp://scheduler:8786``
(an existing cluster) to run the parallel fetch on Dask through prefect-dask, or pass a runner:
``backfill.with_options(task_runner=DaskTaskRunner(...))``.

Stepping at scale: with ``dask_scheduler`` (or ``SMDA_DASK_SCHEDULER``) or ``tile_cells``, the
step is one task that cuts the region into tiles advancing through the days on Dask workers
and assembles each day (:mod:`smda.ops.tiles`: the same bytes as stepping day by day; a retry
or a new run reuses the tiles already done).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.artifacts import publish_run_artifacts
from flows.outcomes import backfill_run_name, on_crashed, on_failure
from flows.tasks import (
    fetch_task,
    metrics_task,
    provider_of,
    provider_tag,
    run_context,
    run_day_task,
    step_days_task,
    tiled_steps_task,
    validate_task,
)
from smda.errors import ConfigError
from smda.ingest.fetch import IngestReport
from smda.ingest.sources import OPERATIONAL
from smda.ops import DayRun, RunContext, broken_link, days_to_recompute, open_runtime
from smda.ops.tiles import DEFAULT_BLOCK_DAYS, DEFAULT_TILE_CELLS, Tiling

__all__ = ["Chunk", "backfill", "chunks", "fetch_parallel", "task_runner_from_env"]

LOG = logging.getLogger(__name__)

THREADS = 8
"""Threads of the default task runner (fetch chunks in flight, all providers)."""
STEP_BLOCK_DAYS = 30
"""Days per ``step-days`` task: one task run per month of a backfill (a retry resumes the block
at its first day not done), not one per day."""


def task_runner_from_env(value: str | None = None) -> TaskRunner[Any]:
    """The task runner named by ``SMDA_TASK_RUNNER``: ``threads`` (default), ``dask`` (a local
    cluster) or the address of a Dask scheduler (``tcp://host:8786``)."""
    choice = (value if value is not None else os.environ.get("SMDA_TASK_RUNNER", "")).strip()
    if choice in ("", "threads"):
        return ThreadPoolTaskRunner(max_workers=THREADS)
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - prefect-dask is a dependency
        raise ConfigError(
            f"SMDA_TASK_RUNNER={choice} needs prefect-dask: pip install prefect-dask"
        ) from exc
    if choice == "dask":
        return DaskTaskRunner()
    if "://" in choice:
        return DaskTaskRunner(address=choice)
    raise ConfigError(
        f"SMDA_TASK_RUNNER={choice!r} is not one of: threads, dask, tcp://<scheduler>:<port>"
    )


@dataclass(frozen=True)
class Chunk:
    """The days of one source fetched by one task."""

    source: str
    provider: str
    days: tuple[date, ...]


def _month_runs(days: Sequence[date]) -> Iterator[tuple[date, ...]]:
    month: list[date] = []
    for day in sorted(days):
        if month and (day.year, day.month) != (month[0].year, month[0].month):
            yield tuple(month)
            month = []
        month.append(day)
    if month:
        yield tuple(month)


def chunks(days: Sequence[date], sources: Sequence[str] = OPERATIONAL) -> list[Chunk]:
    """Month-sized chunks per source (a CDS request is a month of one dataset)."""
    return [
        Chunk(source, provider_of(source), month)
        for source in sources
        for month in _month_runs(days)
    ]


def fetch_parallel(
    run: RunContext, work: Sequence[Chunk], *, per_provider: int = 2
) -> IngestReport:
    """Fetch ``work`` with at most ``per_provider`` chunks in flight per provider.

    Chunks of one source run one after the other: they share the source's ledger, and a month's
    MSWEP antecedent window is the end of the month before (staged by then, not fetched twice).
    """
    waiting: dict[str, deque[Chunk]] = {}
    for chunk in work:
        waiting.setdefault(chunk.source, deque()).append(chunk)
    running: dict[PrefectFuture[IngestReport], Chunk] = {}
    report = IngestReport()

    def launch() -> None:
        for source, queue in waiting.items():
            if not queue or any(c.source == source for c in running.values()):
                continue
            provider = queue[0].provider
            if sum(c.provider == provider for c in running.values()) >= max(per_provider, 1):
                continue
            chunk = queue.popleft()
            tagged = fetch_task.with_options(tags={provider_tag(provider)})
            running[tagged.submit(run, list(chunk.days), [chunk.source])] = chunk

    launch()
    while running:
        done = next(as_completed(list(running)))
        running.pop(done)
        report.outcomes.extend(done.result().outcomes)
        launch()
    return report


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _step(run: RunContext, days: Sequence[date], *, force: bool) -> list[DayRun]:
    """Run ``days`` in order in blocks of :data:`STEP_BLOCK_DAYS`, then the later days a re-run
    invalidated (:func:`smda.ops.days_to_recompute`) and the chain after the range when it was
    not stepped from it (:func:`smda.ops.broken_link`), as the CLI's backfill does."""
    runs: list[DayRun] = []
    for first in range(0, len(days), STEP_BLOCK_DAYS):
        block = days[first : first + STEP_BLOCK_DAYS]
        runs += step_days_task(run, block[0], block[-1], force=force)
    runs += [run_day_task(run, day) for day in days_to_recompute(runs, days[-1])]
    after = max(r.day for r in runs) + timedelta(days=1)
    if broken_link(open_runtime(run), after):
        relinked = [run_day_task(run, after)]
        relinked += [run_day_task(run, day) for day in days_to_recompute(relinked, after)]
        runs += relinked
    return runs


@flow(
    name="smda-backfill",
    flow_run_name=backfill_run_name,
    task_runner=task_runner_from_env(),
    on_failure=[on_failure],
    on_crashed=[on_crashed],
)
def backfill(
    start: date,
    end: date,
    force: bool = False,
    region: str | None = None,
    fetch: bool = True,
    per_provider: int = 2,
    dask_scheduler: str | None = None,
    tile_cells: int | None = None,
    block_days: int = DEFAULT_BLOCK_DAYS,
) -> list[DayRun]:
    """Backfill ``start`` … ``end`` (inclusive) for ``region`` (default ``SMDA_REGION``).

    Parameters
    ----------
    force:
        Recompute days already in the chain (the later days are invalidated and recomputed).
    fetch:
        Fetch and stage the inputs first (False: they are staged already).
    per_provider:
        Fetch chunks in flight per provider.
    dask_scheduler, tile_cells, block_days:
        Step the days in tiles of about ``tile_cells`` cells advancing ``block_days`` days per
        Dask task (:mod:`smda.ops.tiles`), on the scheduler at ``dask_scheduler`` (default
        ``SMDA_DASK_SCHEDULER``: :attr:`smda.config.Settings.dask_scheduler`) or, given only
        ``tile_cells``, on a local cluster. Without either, the days are stepped one by one in
        this process.
    """
    started = time.time()
    log = get_run_logger()
    run = run_context(region)
    days = _days(start, end)
    report = None
    if fetch:
        report = fetch_parallel(run, chunks(days), per_provider=per_provider)
        log.info("fetch: %s", report.counts())
    scheduler = dask_scheduler or run.settings.dask_scheduler or None
    if scheduler or tile_cells:
        tiling = Tiling(scheduler, tile_cells or DEFAULT_TILE_CELLS, block_days)
        runs = tiled_steps_task(run, start, end, tiling, force=force)
    else:
        runs = _step(run, days, force=force)
    computed = [r.day for r in runs if r.status != "skipped"]
    validation = validate_task(run, computed) if computed else None
    metrics_task(run, "smda_backfill", runs, None, validation, None, started)
    publish_run_artifacts("backfill", run, runs=runs, report=report, validation=validation)
    log.info("%d day(s) computed, %d already done", len(computed), len(runs) - len(computed))
    return runs
