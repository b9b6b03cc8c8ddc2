"""Assemble the run-time objects of one invocation from the settings (used by the CLI and flows)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import requests

from smda.config import Settings
from smda.errors import ConfigError
from smda.geo.grid import BBox, Grid, region_grid
from smda.ingest.endpoints import Endpoints
from smda.ingest.retry import RetryPolicy
from smda.ingest.sources.base import IngestContext
from smda.storage.store import Store

__all__ = ["make_context", "provider_today"]


def provider_today(endpoints: Endpoints | None) -> date:
    """Today in the providers' world: the twin's clock when talking to the twin, else UTC."""
    if endpoints is not None and endpoints.control_url:
        try:
            status = requests.get(endpoints.control_url + "/status", timeout=10).json()
            return date.fromisoformat(status["today"])
        except (requests.RequestException, KeyError, ValueError) as exc:
            raise ConfigError(
                f"the twin at {endpoints.control_url} does not answer ({exc}); is `smda twin serve` running?"
            ) from exc
    return datetime.now(UTC).date()


def make_context(
    settings: Settings,
    *,
    region: BBox | None = None,
    today: date | None = None,
    ismn_path: Path | None = None,
    policy: RetryPolicy | None = None,
    endpoints: Endpoints | None = None,
) -> IngestContext:
    """The ingest context for ``region`` (default: ``SMDA_REGION`` or the globe)."""
    if endpoints is None and settings.endpoints is not None:
        endpoints = Endpoints.read(settings.endpoints)
    bbox = region or settings.bbox
    grid: Grid = region_grid(bbox)
    return IngestContext(
        store=Store(settings.data_dir, grid, lock_timeout=settings.lock_timeout),
        endpoints=endpoints,
        today=today or provider_today(endpoints),
        mswep_url=settings.mswep_url,
        ismn_path=ismn_path,
        policy=policy or RetryPolicy(),
    )
