"""The validate flow: validation figures of analysed days, as Prefect artifacts.

For ``start … end`` (days in the state chain): innovation statistics against SMAP (O−F mean and
SD, the fraction of land assimilated, forecast-only days) and in-situ skill where ISMN stations
are staged (:func:`smda.ops.validate_days`), filed as a table, a markdown summary and a
link to the published products.
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from flows.artifacts import publish_run_artifacts
from flows.tasks import run_context, validate_task
from smda.ops import ValidationReport

__all__ = ["validate"]


@flow(name="smda-validate")
def validate(start: date, end: date, region: str | None = None) -> ValidationReport:
    """Validate the analysed days of ``start … end`` for ``region`` (default ``SMDA_REGION``)."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    run = run_context(region)
    report = validate_task(run, days)
    publish_run_artifacts("validate", run, validation=report)
    return report
