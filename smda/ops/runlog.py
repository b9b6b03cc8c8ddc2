"""The last run of each job of a region, kept where ``smda status`` can read it.

Metrics go to a Pushgateway, which ``smda status`` should not need; so every run that reports
its metrics (:func:`smda.ops.report_metrics`: the daily and backfill runs of the CLI and the
flows) also records how it ended in ``<data_dir>/runs/<region>.json`` (written atomically under
the file's lock), one record per job (``smda_daily``, ``smda_backfill``…)::

    {"format": 1, "runs": {"smda_daily": {"job": "smda_daily", "status": "completed",
      "exit_code": 0, "reason": "", "started_at": "2024-07-20T06:00:03+00:00",
      "finished_at": "2024-07-20T06:01:10+00:00", "seconds": 67.2, "days_run": 1,
      "first_day": "2024-07-17", "last_day": "2024-07-17"}}}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smda.ops.dayrun import DayRun
from smda.ops.outcome import RunOutcome
from smda.storage.atomic import atomic_write_bytes
from smda.storage.locks import locked_file

__all__ = ["RunRecord", "last_runs", "record_run", "runs_path"]

logger = logging.getLogger(__name__)
RUNLOG_FORMAT = 1


@dataclass(frozen=True)
class RunRecord:
    """How one run ended (module docstring); times are ISO 8601 UTC, days ISO dates."""

    job: str
    status: str
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    seconds: float
    days_run: int
    first_day: str | None
    last_day: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def runs_path(data_dir: Path, region_key: str) -> Path:
    """Where the run records of a region live."""
    return Path(data_dir) / "runs" / f"{region_key}.json"


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def last_runs(path: Path) -> dict[str, RunRecord]:
    """The last run of each job recorded at ``path``; none when the file is missing or
    unreadable (logged)."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {job: RunRecord(**rec) for job, rec in raw["runs"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable run records %s: %s", path, exc)
        return {}


def record_run(
    path: Path,
    job: str,
    runs: Sequence[DayRun],
    outcome: RunOutcome,
    *,
    started_at: float,
    finished_at: float,
) -> RunRecord:
    """Record the run of ``job`` that ended with ``outcome`` after running ``runs`` (the days
    it stepped; skipped days do not count) as that job's last run. Never raises for an
    unwritable file (logged)."""
    done = sorted(r.day for r in runs if r.status != "skipped")
    record = RunRecord(
        job=job,
        status=outcome.status,
        exit_code=outcome.exit_code,
        reason=outcome.reason,
        started_at=_iso(started_at),
        finished_at=_iso(finished_at),
        seconds=round(max(finished_at - started_at, 0.0), 1),
        days_run=len(done),
        first_day=done[0].isoformat() if done else None,
        last_day=done[-1].isoformat() if done else None,
    )
    try:
        with locked_file(path):
            records = last_runs(path)
            records[job] = record
            body = {
                "format": RUNLOG_FORMAT,
                "runs": {name: rec.to_json() for name, rec in sorted(records.items())},
            }
            atomic_write_bytes(path, json.dumps(body, indent=1).encode())
    except OSError as exc:
        logger.warning("could not record the run in %s: %s", path, exc)
    return record
