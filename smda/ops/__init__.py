"""Operations as users run them: the CLI's commands and the Prefect flows call these.

The daily cycle (ARCHITECTURE.md) for one region, from a :class:`RunContext` read at the edge:
:func:`plan_daily` (:mod:`~smda.ops.plan`) picks the days whose required inputs are out,
:func:`fetch_days` (:mod:`~smda.ops.fetch`) fetches and stages them, :func:`run_day`
(:mod:`~smda.ops.days`) forecasts, nudges, persists and publishes each; :func:`backfill_days`
steps a range. :func:`validate_days` (:mod:`~smda.ops.validate`) and :func:`report_metrics`
(:mod:`~smda.ops.report`) tell how it went; :func:`train_model` (:mod:`~smda.ops.train`) and
:mod:`~smda.ops.evaluate` make and score models; :mod:`~smda.ops.monitoring` holds the
Prometheus metrics.
"""

from smda.ops.days import (
    ChainGap,
    DayRun,
    backfill_days,
    broken_link,
    days_to_recompute,
    provenance,
    run_day,
)
from smda.ops.fetch import ensure_static, fetch_days, fetch_span, input_spans
from smda.ops.plan import (
    REQUIRED,
    DailyPlan,
    first_day_to_run,
    plan_daily,
    stale_days,
    stale_from,
)
from smda.ops.report import report_metrics, summary_markdown
from smda.ops.runtime import RunContext, Runtime, data_paths, open_runtime
from smda.ops.train import TrainOutcome, train_model
from smda.ops.validate import ValidationReport, validate_days

__all__ = [
    "REQUIRED",
    "ChainGap",
    "DailyPlan",
    "DayRun",
    "RunContext",
    "Runtime",
    "TrainOutcome",
    "ValidationReport",
    "backfill_days",
    "broken_link",
    "data_paths",
    "days_to_recompute",
    "ensure_static",
    "fetch_days",
    "fetch_span",
    "first_day_to_run",
    "input_spans",
    "open_runtime",
    "plan_daily",
    "provenance",
    "report_metrics",
    "run_day",
    "stale_days",
    "stale_from",
    "summary_markdown",
    "train_model",
    "validate_days",
]
