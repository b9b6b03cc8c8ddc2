"""What a run reports: its metrics (to Prometheus) and a markdown summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from smda.errors import SmdaError
from smda.ingest.fetch import IngestReport
from smda.ops.days import DayRun
from smda.ops.health import health_path, load_health, save_health, update_health
from smda.ops.outcome import RunOutcome
from smda.ops.plan import DailyPlan
from smda.ops.runlog import record_run, runs_path
from smda.ops.runtime import Runtime
from smda.ops.validate import ValidationReport
from smda.storage.store import region_key

__all__ = ["SMAP_FORECAST", "report_metrics", "summary_markdown"]

SMAP_FORECAST = "smap_forecast"
"""Validation series of the newest day's forecast (before nudging) against the CDF-matched SMAP
retrievals: R, ubRMSD (the SD of O−F), bias (−mean O−F). Every deployment has it; its drift
alerts are the innovation ones (``SmdaInnovationSdDrift``, ``SmdaInnovationSpreadUnexpected``)."""

logger = logging.getLogger(__name__)


def report_metrics(
    rt: Runtime,
    job: str,
    runs: Sequence[DayRun],
    *,
    plan: DailyPlan | None = None,
    validation: ValidationReport | None = None,
    outcome: RunOutcome | None = None,
    started_at: float | None = None,
) -> bool:
    """Export a run's metrics (:mod:`smda.ops.monitoring`) to ``SMDA_PUSHGATEWAY`` or, without
    one, to ``<data_dir>/metrics/<job>-<region>.prom``. Never fails the run.

    ``outcome`` is the run's final status (default completed); ``started_at`` the Unix time it
    started (default now). A ``plan`` (the run polled the providers) updates the source health
    records (:mod:`smda.ops.health`) and reports them. The run's end is recorded as its job's
    last run (:mod:`smda.ops.runlog`, what ``smda status`` shows).
    """
    from smda.ops.monitoring import RunMetrics

    metrics = RunMetrics(rt.region, started_at=started_at)
    for run in runs:
        if run.status != "skipped":
            metrics.day_done(
                run.day,
                seconds=run.seconds,
                forecast_only=run.status == "forecast_only",
                assimilated_fraction=run.assimilated_fraction,
                innovation_mean=run.innovation_mean,
                innovation_sd=run.innovation_sd,
                n_obs=run.n_obs,
                feature_drift=run.feature_drift,
                innovation_sd_ratio=run.innovation_sd_ratio,
            )
    today = rt.ctx.today
    if plan is not None:
        path = health_path(rt.settings.data_dir, region_key(rt.grid))
        health = update_health(load_health(path), plan, time.time())
        try:
            save_health(path, health)
        except OSError as exc:
            logger.warning("could not save the source health to %s: %s", path, exc)
        for record in health.values():
            if record.newest is None:  # never answered yet: wait from the newest day staged
                staged = rt.store.staged_days(record.source)
                metrics.source_health(replace(record, newest=max(staged, default=None)), today)
            else:
                metrics.source_health(record, today)
    try:
        metrics.analysis_chain(rt.chain.last(), today)
    except SmdaError as exc:  # an unreadable chain is reported by the run itself
        logger.warning("analysis lag not reported: %s", exc)
    with_obs = [r for r in runs if r.status != "skipped" and r.n_obs > 1]
    if with_obs:  # the newest day's forecast against SMAP: a validation without stations
        newest = max(with_obs, key=lambda r: r.day)
        metrics.validation(
            SMAP_FORECAST,
            r=newest.forecast_smap_r,
            ubrmsd=newest.innovation_sd,
            bias=-newest.innovation_mean,
            n=newest.n_obs,
        )
    metrics.validation_expected("ismn", bool(rt.store.staged_days("ismn")))
    if validation is not None and validation.stations:
        stats = validation.stations
        metrics.validation(
            "ismn",
            r=float(stats.get("median_r", float("nan"))),
            ubrmsd=float(stats.get("median_ubrmsd", float("nan"))),
            bias=float(stats.get("median_bias", float("nan"))),
            n=int(stats.get("stations", 0)),
        )
    final = outcome or RunOutcome("completed")
    metrics.run_finished(final.status)
    record_run(
        runs_path(rt.settings.data_dir, rt.region),
        job,
        runs,
        final,
        started_at=time.time() if started_at is None else started_at,
        finished_at=time.time(),
    )
    return metrics.push(rt.settings.pushgateway, job, textfile_dir=rt.settings.data_dir / "metrics")


def summary_markdown(
    runs: Sequence[DayRun], plan: DailyPlan | None = None, report: IngestReport | None = None
) -> str:
    """A markdown summary of a run (for Prefect artifacts and logs)."""
    lines = ["# smda run", ""]
    if plan is not None:
        lines += [f"**Plan**: {plan.describe()}", ""]
    if report is not None and report.outcomes:
        lines += ["## Inputs", "", "| source | " + " | ".join(_STATUSES) + " |"]
        lines.append("|---" * (len(_STATUSES) + 1) + "|")
        for source, counts in sorted(report.counts().items()):
            lines.append(
                f"| {source} | " + " | ".join(str(counts.get(s, 0)) for s in _STATUSES) + " |"
            )
        lines.append("")
    if runs:
        rows = [r.as_row() for r in runs]
        keys = list(rows[0])
        lines += ["## Days", "", "| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    else:
        lines.append("No day was run.")
    return "\n".join(lines) + "\n"


_STATUSES = ("fetched", "replaced", "unchanged", "skipped", "not_available", "failed")
