"""What a run reports: its metrics (to Prometheus) and a markdown summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from smda.ingest.fetch import IngestReport
from smda.ingest.sources import OPERATIONAL
from smda.ops.days import DayRun
from smda.ops.plan import DailyPlan
from smda.ops.runtime import Runtime
from smda.ops.validate import ValidationReport

__all__ = ["report_metrics", "summary_markdown"]


def report_metrics(
    rt: Runtime,
    job: str,
    runs: Sequence[DayRun],
    *,
    plan: DailyPlan | None = None,
    validation: ValidationReport | None = None,
    status: Literal["completed", "failed", "crashed", "cancelled"] = "completed",
) -> bool:
    """Export a run's metrics (:mod:`smda.ops.monitoring`) to ``SMDA_PUSHGATEWAY`` or, without
    one, to ``<data_dir>/metrics/<job>-<region>.prom``. Never fails the run."""
    from smda.ops.monitoring import RunMetrics

    metrics = RunMetrics(rt.region)
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
            )
    if plan is not None:  # days from each source's newest day to the providers' today
        for name in OPERATIONAL:
            newest = plan.newest.get(name)
            if newest is not None:
                metrics.inputs_waiting(name, max((rt.ctx.today - newest).days, 0))
    if validation is not None and validation.stations:
        stats = validation.stations
        metrics.validation(
            "ismn",
            r=float(stats.get("median_r", float("nan"))),
            ubrmsd=float(stats.get("median_ubrmsd", float("nan"))),
            bias=float(stats.get("median_bias", float("nan"))),
            n=int(stats.get("stations", 0)),
        )
    metrics.run_finished(status)
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
