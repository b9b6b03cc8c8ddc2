"""Fetching the inputs of days to run: the exact spans per source, the static fields once.

:func:`fetch_days` fetches and stages the inputs of the days to run — plus MSWEP's antecedent
window and, for a cold start, the spin-up days (:func:`input_spans`) — through
:mod:`smda.ingest.fetch`; every call is idempotent (a staged day is not fetched again, a staged
day that no longer matches its ledger record is staged again). Spans that reach before a source's
archive are refused before anything is fetched (:class:`~smda.errors.OutsideArchive`). Fetching
holds the writer lock of the region's store (:meth:`smda.ops.runtime.Runtime.store_writer`): one
fetch per region at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

from smda.ingest.fetch import DayOutcome, IngestReport, fetch_range, fetch_ranges
from smda.ingest.sources import OPERATIONAL, get_source
from smda.ops.plan import history_days
from smda.ops.runtime import Runtime
from smda.ops.train_data import LABEL_PRODUCTS, training_spans
from smda.science.features import FeatureSpec

__all__ = [
    "ensure_static",
    "fetch_days",
    "fetch_for_training",
    "fetch_span",
    "fetch_spans",
    "input_spans",
]


def input_spans(
    rt: Runtime, start: date, end: date, sources: Sequence[str] | None = None
) -> dict[str, tuple[date, date]]:
    """First and last day each source must be staged to run ``start`` … ``end``.

    MSWEP also covers the antecedent-precipitation window; when the chain has no day before
    ``start`` (a cold start), every source also covers the ``spinup_days`` before it.
    """
    history = history_days(rt)
    first = start
    if not any(d < start for d in rt.chain.days()):
        first -= timedelta(days=rt.settings.spinup_days)
    return {
        name: (first - timedelta(days=history - 1) if name == "mswep" else first, end)
        for name in sources or OPERATIONAL
    }


def fetch_span(
    rt: Runtime,
    source: str,
    start: date,
    end: date,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """Fetch and stage exactly ``start`` … ``end`` of one source (idempotent), holding the
    writer lock of the region's store."""
    with rt.store_writer():
        return fetch_range([source], start, end, rt.ctx, progress=progress)


def ensure_static(rt: Runtime) -> Path:
    """Fetch the ERA5 invariants and stage the static fields and land mask once (idempotent)."""
    from smda.ingest.sources.era5 import stage_static

    with rt.store_writer():
        return stage_static(rt.ctx)


def fetch_days(
    rt: Runtime,
    days: Sequence[date],
    sources: Sequence[str] | None = None,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """Fetch and stage the inputs of ``days`` (module docstring, step 2); idempotent.

    The spans come from :func:`input_spans` (MSWEP's antecedent window, a cold start's spin-up).
    """
    if not days:
        return IngestReport()
    return fetch_spans(rt, input_spans(rt, min(days), max(days), sources), progress=progress)


def fetch_for_training(
    rt: Runtime,
    start: date,
    end: date,
    *,
    label_products: Sequence[str] = LABEL_PRODUCTS,
    spec: FeatureSpec | None = None,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """Fetch and stage what training on ``start`` … ``end`` reads (forcings with their
    precipitation history, label products, static fields); idempotent. Lets a new region be set
    up from the ``train`` deployment alone."""
    spans = training_spans(label_products, start, end, (spec or FeatureSpec()).history_days)
    return fetch_spans(rt, spans, progress=progress)


def fetch_spans(
    rt: Runtime,
    spans: Mapping[str, tuple[date, date]],
    *,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """The static fields once, then each source's ``first`` … ``last``, sources concurrently
    (:func:`smda.ingest.fetch.fetch_ranges`); idempotent.

    Raises :class:`~smda.errors.OutsideArchive` before any request if a span reaches before its
    source's archive.
    """
    for name, (first, last) in spans.items():
        get_source(name).check_archive(first, last)
    with rt.store_writer():
        ensure_static(rt)
        return fetch_ranges(
            [(name, first, last) for name, (first, last) in spans.items()],
            rt.ctx,
            progress=progress,
        )
