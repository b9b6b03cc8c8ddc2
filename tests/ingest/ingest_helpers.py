"""Helpers for ingest tests: the region, the twin's today, a fast retry policy, contexts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from smda.config import Settings
from smda.geo.grid import BBox
from smda.ingest.context import make_context
from smda.ingest.retry import RetryPolicy
from smda.ingest.sources.base import IngestContext
from smda_twin.service import Twin

REGION = BBox(-100, 35, -99, 36)
TODAY = date(2024, 7, 20)
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, deadline=60, max_retry_after=2)


def context(
    twin: Twin, data_dir: Path, region: BBox = REGION, policy: RetryPolicy = FAST, **kw: object
) -> IngestContext:
    """A fresh ingest context (as a new process would build) pointed at the twin."""
    return make_context(
        Settings(data_dir=data_dir),
        region=region,
        endpoints=twin.endpoints(),
        policy=policy,
        **kw,  # type: ignore[arg-type]
    )
