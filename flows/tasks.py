"""The Prefect tasks the flows are wired from: each calls one :mod:`smda.ops` function.

What a task declares (and the library does not):

- **retries** for transient failures only (:class:`smda.errors.TransientError`: a provider's
  5xx or 429 after smda's own bounded retries, a dropped connection to the state store);
  a :class:`~smda.errors.PermanentError` (credentials, licence, invalid request) or a bug fails
  at once (:func:`retry_transient`);
- **timeouts** sized for the work, on the tasks the flow runs itself; fetch tasks are submitted
  to worker threads (or Dask), where Prefect cannot interrupt them: they are bounded by smda's
  own deadlines instead (:class:`smda.ingest.retry.RetryPolicy`, the CDS job-polling deadline);
- **tags** ``smda-provider-<provider>`` on fetch tasks, so an operator can cap the concurrent
  fetch tasks per provider across all flow runs with a task-concurrency limit
  (``prefect concurrency-limit create smda-provider-cds 2``, see ``deployments/README.md``);
- **no Prefect caching** (``NO_CACHE``): what is done is known to the store and the state chain
  (a staged day is not fetched again, a day in the chain with the same provenance is skipped),
  which stays true across machines, reruns and cache expiry.

The flow reads the ``SMDA_*`` settings once, at its entry (:func:`run_context`), and hands the
frozen :class:`smda.ops.RunContext` to its tasks; each opens the run-time objects from it
(:func:`smda.ops.open_runtime`). The context pickles, so tasks can run in threads, processes or
on Dask workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from prefect import State, Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler
from prefect.runtime import task_run as prefect_runtime_task_run

from smda.config import load_settings
from smda.errors import TransientError
from smda.ingest.fetch import IngestReport
from smda.ingest.sources import get_source
from smda.ops import (
    DailyPlan,
    DayRun,
    RunContext,
    ValidationReport,
    backfill_days,
    fetch_days,
    first_day_to_run,
    open_runtime,
    plan_daily,
    report_metrics,
    run_day,
    train_model,
    validate_days,
)
from smda.ops.cluster import dask_client
from smda.ops.fetch import fetch_for_training
from smda.ops.outcome import RunOutcome
from smda.ops.tiles import Tiling, tiled_backfill
from smda.ops.train import TrainOutcome

__all__ = [
    "fetch_task",
    "fetch_training_task",
    "first_day_task",
    "plan_task",
    "provider_of",
    "provider_tag",
    "retry_transient",
    "run_context",
    "run_day_task",
    "send_smda_logs",
    "step_days_task",
    "tiled_steps_task",
    "train_task",
    "validate_task",
]

#: back-off between the attempts of a task whose failure was transient (seconds)
RETRY_DELAYS: list[float] = [30.0, 120.0, 600.0]


def run_context(region: str | None) -> RunContext:
    """The context of a flow run: the ``SMDA_*`` settings of the process, read once here (a
    flow's entry), for ``region`` (default ``SMDA_REGION``). smda's log records of
    ``SMDA_LOG_LEVEL`` and above go to the flow-run logs (:func:`send_smda_logs`)."""
    settings = load_settings()
    send_smda_logs(settings.log_level)
    return RunContext.create(settings, region=region)


def send_smda_logs(level: str) -> None:
    """Set the ``smda`` logger to ``level`` and give it Prefect's API log handler (once), so its
    records appear in the flow-run logs of the UI whether or not the worker sets
    ``PREFECT_LOGGING_EXTRA_LOGGERS=smda`` (which attaches the handler but leaves the level at
    WARNING)."""
    smda = logging.getLogger("smda")
    smda.setLevel(level)
    if not any(isinstance(h, APILogHandler) for h in smda.handlers):
        handler = APILogHandler()
        handler.addFilter(_in_a_run)  # the library also runs outside flows (CLI, tests)
        smda.addHandler(handler)


def _in_a_run(record: logging.LogRecord) -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def retry_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry a failed task run only if it raised a TransientError."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # permanent, or a bug: retrying cannot help
        return False
    return False


def provider_of(source: str) -> str:
    """The provider serving ``source`` (``era5`` → ``cds``, ``smap`` → ``earthdata`` …)."""
    return get_source(source).provider


def provider_tag(provider: str) -> str:
    """The tag of fetch tasks talking to ``provider`` (for task-concurrency limits)."""
    return f"smda-provider-{provider}"


def _fetch_run_name() -> str:
    params = prefect_runtime_task_run.parameters
    days, sources = params.get("days") or [], params.get("sources") or []
    span = f"{min(days)}…{max(days)}" if days else "no day"
    return f"fetch {','.join(sources)} {span}"


RETRY_TRANSIENT: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_transient,
}
"""Task options shared by every task that talks to providers or the store: retry transient
errors only."""


@task(
    name="plan-daily",
    **RETRY_TRANSIENT,
    timeout_seconds=600,
    cache_policy=NO_CACHE,
    tags=["smda-poll"],
)
def plan_task(run: RunContext) -> DailyPlan:
    """Poll every operational source and pick the days to run (:func:`plan_daily`)."""
    return plan_daily(open_runtime(run))


@task(name="first-day", timeout_seconds=600, cache_policy=NO_CACHE)
def first_day_task(run: RunContext, plan: DailyPlan) -> date:
    """The first day to step, asked after the fetch (:func:`first_day_to_run`: a revision the
    fetch brought makes an analysed day stale)."""
    return first_day_to_run(open_runtime(run), plan)


@task(
    name="fetch",
    task_run_name=_fetch_run_name,
    **RETRY_TRANSIENT,
    cache_policy=NO_CACHE,
)
def fetch_task(run: RunContext, days: Sequence[date], sources: Sequence[str]) -> IngestReport:
    """Fetch and stage the inputs of ``days`` from ``sources`` (:func:`fetch_days`)."""
    return fetch_days(open_runtime(run), list(days), list(sources))


@task(
    name="run-day",
    task_run_name="run-day {day}",
    **RETRY_TRANSIENT,
    timeout_seconds=3600,
    cache_policy=NO_CACHE,
)
def run_day_task(run: RunContext, day: date, force: bool = False) -> DayRun:
    """Forecast, nudge, persist and publish one day (:func:`run_day`; skips a day done)."""
    return run_day(open_runtime(run), day, force=force)


@task(
    name="step-days",
    task_run_name="step-days {start}…{end}",
    **RETRY_TRANSIENT,
    timeout_seconds=24 * 3600,
    cache_policy=NO_CACHE,
)
def step_days_task(run: RunContext, start: date, end: date, force: bool = False) -> list[DayRun]:
    """Step ``start`` … ``end`` in order in this process (:func:`backfill_days`: a day publishes
    and the next day's inputs are read while a day steps; days done are skipped, so a retry
    resumes), without mending the chain after ``end``: the flow mends once, after its last
    block. Each day is logged as it is committed and published."""
    log = get_run_logger()

    def progress(day: DayRun) -> None:
        log.info("%s %s (%.1f s)", day.day, day.status, day.seconds or 0.0)

    return backfill_days(open_runtime(run), start, end, force=force, progress=progress, mend=False)


@task(
    name="tiled-steps",
    task_run_name="tiled-steps {start}…{end}",
    **RETRY_TRANSIENT,
    timeout_seconds=7 * 24 * 3600,
    cache_policy=NO_CACHE,
)
def tiled_steps_task(
    run: RunContext, start: date, end: date, tiling: Tiling, force: bool = False
) -> list[DayRun]:
    """Step ``start`` … ``end`` in tiles on Dask (:func:`smda.ops.tiles.tiled_backfill`; a retry
    reuses the tiles already done)."""
    with dask_client(tiling.scheduler) as client:
        rt = open_runtime(run)
        return tiled_backfill(
            rt,
            start,
            end,
            client,
            tile_cells=tiling.tile_cells,
            block_days=tiling.block_days,
            force=force,
        ).runs


@task(
    name="validate",
    **RETRY_TRANSIENT,
    timeout_seconds=3600,
    cache_policy=NO_CACHE,
)
def validate_task(run: RunContext, days: Sequence[date]) -> ValidationReport:
    """Innovation statistics and in-situ skill of analysed ``days`` (:func:`validate_days`)."""
    return validate_days(open_runtime(run), list(days))


@task(
    name="fetch-training-inputs",
    task_run_name="fetch training inputs {start}…{end}",
    **RETRY_TRANSIENT,
    cache_policy=NO_CACHE,
    tags=["smda-fetch-training"],
)
def fetch_training_task(run: RunContext, start: date, end: date) -> IngestReport:
    """Fetch and stage what training on ``start`` … ``end`` reads (:func:`fetch_for_training`)."""
    return fetch_for_training(open_runtime(run), start, end)


@task(
    name="train",
    task_run_name="train {start}…{end}",
    retries=1,
    retry_delay_seconds=RETRY_DELAYS[:1],
    retry_condition_fn=retry_transient,
    timeout_seconds=12 * 3600,
    cache_policy=NO_CACHE,
)
def train_task(run: RunContext, start: date, end: date, options: dict[str, Any]) -> TrainOutcome:
    """Train on the staged labels of ``start`` … ``end`` and register the model
    (:func:`train_model`)."""
    outcome: TrainOutcome = train_model(open_runtime(run), start, end, **options)
    return outcome


@task(name="metrics", timeout_seconds=120, cache_policy=NO_CACHE)
def metrics_task(
    run: RunContext,
    job: str,
    runs: Sequence[DayRun],
    plan: DailyPlan | None = None,
    validation: ValidationReport | None = None,
    outcome: RunOutcome | None = None,
    started_at: float | None = None,
) -> bool:
    """Export the run's metrics to the Pushgateway or the textfile (:func:`report_metrics`);
    never fails the run."""
    return report_metrics(
        open_runtime(run),
        job,
        runs,
        plan=plan,
        validation=validation,
        outcome=outcome,
        started_at=started_at,
    )
