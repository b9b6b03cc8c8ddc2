"""Source health: is each provider answering, since when not, and how far behind is it.

Every poll of the daily run (:func:`smda.ops.plan_daily`) is folded into a small record per
source, kept in ``<data_dir>/health/<region>.json`` (written atomically) so that it survives
between runs:

- ``up``: the last poll succeeded;
- ``newest``: the newest day the provider had published at the last *successful* poll — kept
  while the provider is down, so the days the cycle waits keep growing instead of vanishing;
- ``failed_polls``: consecutive failed polls (0 when up), the basis of the "source down for N
  polls" alert;
- ``error_kind`` / ``error`` / ``error_at``: the last error (its class, e.g.
  ``CredentialsError``, its message and Unix time), kept after the source recovers.

:meth:`SourceHealth.waiting_days` turns ``newest`` into the days the cycle waits for the source
(:func:`smda.ops.report_metrics` starts from the newest day staged for a source that has never
answered a poll, e.g. with a key rejected from the first day).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from smda.ops.plan import DailyPlan
from smda.storage.atomic import atomic_write_bytes

__all__ = ["SourceHealth", "health_path", "load_health", "save_health", "update_health"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceHealth:
    """What the polls have said about one source (module docstring)."""

    source: str
    up: bool
    newest: date | None = None
    polled_at: float | None = None
    failed_polls: int = 0
    error_kind: str | None = None
    error: str | None = None
    error_at: float | None = None

    def waiting_days(self, today: date) -> int | None:
        """Days from the newest day published to ``today`` (None: never polled successfully)."""
        return None if self.newest is None else max((today - self.newest).days, 0)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["newest"] = self.newest.isoformat() if self.newest else None
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceHealth:
        newest = data.get("newest")
        return cls(**{**data, "newest": date.fromisoformat(newest) if newest else None})


def update_health(
    previous: Mapping[str, SourceHealth], plan: DailyPlan, now: float
) -> dict[str, SourceHealth]:
    """Fold one poll (the plan of a daily run, at Unix time ``now``) into the records."""
    out = dict(previous)
    for source, newest in plan.newest.items():
        before = previous.get(source, SourceHealth(source, up=False))
        error = plan.errors.get(source)
        if error is None:
            out[source] = replace(
                before, up=True, newest=newest or before.newest, polled_at=now, failed_polls=0
            )
        else:
            out[source] = replace(
                before,
                up=False,
                polled_at=now,
                failed_polls=before.failed_polls + 1,
                error_kind=error.kind,
                error=error.message,
                error_at=now,
            )
    return out


def health_path(data_dir: Path, region_key: str) -> Path:
    """Where the health records of a region live."""
    return Path(data_dir) / "health" / f"{region_key}.json"


def load_health(path: Path) -> dict[str, SourceHealth]:
    """The records at ``path``; none when the file is missing or unreadable (logged: the next
    poll starts them again, nothing else depends on them)."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {name: SourceHealth.from_json(rec) for name, rec in raw["sources"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable source-health file %s: %s", path, exc)
        return {}


def save_health(path: Path, health: Mapping[str, SourceHealth]) -> None:
    """Write the records atomically."""
    body = {"sources": {name: rec.to_json() for name, rec in sorted(health.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(body, indent=1).encode())
