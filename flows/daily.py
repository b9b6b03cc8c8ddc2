"""The daily flow: poll, fetch, step every ready day in order, validate, report.

One run (scheduled daily by ``deployments/prefect.yaml``)::

    plan (poll every source) ─ nothing ready? → ends Completed/"Waiting" with the reason
      └─ fetch the ready days, one task per source in parallel (tagged by provider)
          └─ run-day D1, D2, … in order (an outage is caught up in one run; a day without SMAP
             is a forecast-only day, flagged, not a failure)
              └─ validate the days run → artifacts (summary, validation table, products link,
                 the quick-look map of the newest day run)

A missing input is normal: when the required inputs (ERA5, MSWEP) of the next day are not
published yet the run ends in a *Completed* state named ``Waiting`` whose message says what it
waits for, and the next scheduled run picks the day up. A real failure fails the run: a provider
that refused smda (rejected key, licence, EULA), a fetch that failed after its retries, a bug
(:func:`smda.ops.outcome.daily_outcome` decides; the state hooks of :mod:`flows.outcomes` report
runs that raise or crash). Every run reports its status, with the reason, to Prometheus and in
its summary artifact.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date, timedelta

from prefect import State, flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed

from flows.artifacts import publish_quicklook_artifact, publish_run_artifacts
from flows.outcomes import (
    daily_run_name,
    days_label,
    mark_reported,
    on_crashed,
    on_failure,
    rename_run,
)
from flows.tasks import (
    fetch_task,
    first_day_task,
    metrics_task,
    plan_task,
    provider_of,
    provider_tag,
    run_context,
    run_day_task,
    validate_task,
)
from smda.errors import MissingInputs
from smda.ingest.fetch import IngestReport
from smda.ingest.sources import OPERATIONAL
from smda.ops import DailyPlan, DayRun, RunContext
from smda.ops.outcome import daily_outcome

__all__ = ["WAITING", "daily", "days_to_run", "fetch_sources"]

WAITING = "Waiting"
"""Name of the (Completed) final state of a run that waits for inputs."""


def fetch_sources(
    run: RunContext, days: Sequence[date], sources: Sequence[str] = OPERATIONAL
) -> IngestReport:
    """Fetch ``days`` of every source in parallel: one task per source, tagged by provider."""
    futures: list[PrefectFuture[IngestReport]] = [
        fetch_task.with_options(tags={provider_tag(provider_of(source))}).submit(
            run, list(days), [source]
        )
        for source in sources
    ]
    report = IngestReport()
    for future in futures:
        report.outcomes.extend(future.result().outcomes)
    return report


def _step(run: RunContext, days: Sequence[date]) -> tuple[list[DayRun], MissingInputs | None]:
    """Run ``days`` in order; stop at the first day whose inputs are not staged."""
    runs: list[DayRun] = []
    for day in days:
        state = run_day_task(run, day, return_state=True)
        if state.is_failed():
            error = state.result(raise_on_failure=False)
            if isinstance(error, MissingInputs):
                return runs, error
            state.result()  # re-raises: a real failure fails the flow
        runs.append(state.result())
    return runs, None


def days_to_run(plan: DailyPlan, first: date | None = None) -> list[date]:
    """The ready days, preceded by the analysed days from ``first`` (default
    ``plan.reprocess_from``) when their inputs changed (ERA5T replaced by final ERA5, an MSWEP
    revision the run's fetch brought: :func:`smda.ops.first_day_to_run`), recomputed in order."""
    start = min(d for d in (plan.ready[0], plan.reprocess_from, first) if d is not None)
    return [start + timedelta(days=i) for i in range((plan.ready[-1] - start).days + 1)]


@flow(
    name="smda-daily",
    flow_run_name=daily_run_name,
    log_prints=False,
    on_failure=[on_failure],
    on_crashed=[on_crashed],
)
def daily(region: str | None = None) -> list[DayRun] | State:
    """Run the daily cycle once for ``region`` (default: ``SMDA_REGION``).

    Returns the days run, or a ``Waiting`` (Completed) state when no day is ready, or a Failed
    state when a provider refused smda or inputs that the providers announced could not be
    fetched.
    """
    started = time.time()
    log = get_run_logger()
    run = run_context(region)
    plan = plan_task(run)
    log.info("plan: %s", plan.describe())
    rename_run(f"daily {days_label(plan.ready)} {run.region or 'globe'}")
    report = fetch_sources(run, plan.ready) if plan.ready else None
    runs, missing = (
        _step(run, days_to_run(plan, first_day_task(run, plan))) if plan.ready else ([], None)
    )
    validation = validate_task(run, [r.day for r in runs]) if runs else None
    outcome = daily_outcome(plan, report, missing)
    metrics_task(run, "smda_daily", runs, plan, validation, outcome, started)
    publish_run_artifacts(
        "daily", run, runs=runs, plan=plan, report=report, validation=validation, outcome=outcome
    )
    if runs:
        publish_quicklook_artifact("daily", run, max(r.day for r in runs))
    if outcome.status == "failed":
        log.error("%s — %s", outcome.reason, outcome.advice)
        mark_reported()
        return Failed(message=outcome.reason)
    if outcome.status == "waiting":
        log.warning(outcome.reason)
        return Completed(name=WAITING, message=outcome.reason)
    done = sum(r.status != "skipped" for r in runs)
    log.info(
        "%d day(s) run (%d forecast-only)", done, sum(r.status == "forecast_only" for r in runs)
    )
    return runs
