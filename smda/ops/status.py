"""What ``smda status`` shows for a region: its analysis chain, its model and its last runs.

:func:`known_regions` lists the regions of a data directory (their folders,
:mod:`smda.storage.regions`); :func:`region_status` reads one region's state without writing
anything: the chain's first and last day, its gaps and the days made from provisional inputs
(ERA5T ``expver=0005``, MSWEP NRT, as each day's provenance records them), the current model
(version, when registered and promoted, the training period) and the last run of each job
(:mod:`smda.ops.runlog`). :meth:`RegionStatus.to_json` is the documented ``--json`` shape.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from smda.config import Settings
from smda.errors import SmdaError
from smda.ingest.fetch import SourceStatus
from smda.ops.runlog import RunRecord, last_runs, runs_path
from smda.ops.runtime import Runtime, data_paths
from smda.storage.bundle_io import META
from smda.storage.regions import RegionInfo, find_regions, read_region_file

__all__ = [
    "ChainStatus",
    "ModelStatus",
    "RegionStatus",
    "day_ranges",
    "known_regions",
    "region_roots",
    "region_status",
]

DayRange = tuple[date, date]


def day_ranges(days: Iterable[date]) -> list[DayRange]:
    """Consecutive days grouped as (first, last) ranges, ascending."""
    ordered = sorted(set(days))
    out: list[DayRange] = []
    for _, group in itertools.groupby(enumerate(ordered), lambda p: p[1] - timedelta(days=p[0])):
        run = [d for _, d in group]
        out.append((run[0], run[-1]))
    return out


def _gaps(days: Sequence[date]) -> list[DayRange]:
    return [
        (a + timedelta(days=1), b - timedelta(days=1))
        for a, b in itertools.pairwise(days)
        if (b - a).days > 1
    ]


def _ranges_json(ranges: Sequence[DayRange]) -> list[list[str]]:
    return [[a.isoformat(), b.isoformat()] for a, b in ranges]


def provisional_inputs(provenance: dict[str, Any]) -> list[str]:
    """The inputs of a day's provenance that were provisional when it was computed: ``era5``
    (ERA5T), ``mswep`` (an NRT day of the antecedent window), ``smap``."""
    inputs = provenance.get("inputs") or {}
    out = []
    for name in ("era5", "mswep", "smap"):
        rec = inputs.get(name) or {}
        if rec.get("provisional") or rec.get("provisional_days"):
            out.append(name)
    return out


@dataclass(frozen=True)
class ChainStatus:
    """The analysis chain of a region: which days exist and how final they are."""

    days: list[date]
    provisional: dict[date, list[str]] = field(default_factory=dict)
    """Day → its provisional inputs (days made from final inputs only are not listed)."""
    unreadable: list[date] = field(default_factory=list)
    """Days whose sidecar cannot be read (``smda verify`` says more)."""
    error: str | None = None
    """Why the chain could not be listed (e.g. an unreachable object store), else None."""

    @property
    def first(self) -> date | None:
        return self.days[0] if self.days else None

    @property
    def last(self) -> date | None:
        return self.days[-1] if self.days else None

    @property
    def gaps(self) -> list[DayRange]:
        """Missing days between the first and the last, as ranges."""
        return _gaps(self.days)

    def lag_days(self, today: date | None) -> int | None:
        """Days from the last analysis to ``today``."""
        return None if today is None or self.last is None else (today - self.last).days

    def to_json(self, today: date | None = None) -> dict[str, Any]:
        by_source: dict[str, int] = {}
        for names in self.provisional.values():
            for name in names:
                by_source[name] = by_source.get(name, 0) + 1
        return {
            "first_day": self.first.isoformat() if self.first else None,
            "last_day": self.last.isoformat() if self.last else None,
            "days": len(self.days),
            "lag_days": self.lag_days(today),
            "gaps": _ranges_json(self.gaps),
            "missing_days": sum((b - a).days + 1 for a, b in self.gaps),
            "provisional": {
                "days": len(self.provisional),
                "ranges": _ranges_json(day_ranges(self.provisional)),
                "by_input": dict(sorted(by_source.items())),
            },
            "unreadable_days": [d.isoformat() for d in self.unreadable],
            "error": self.error,
        }


@dataclass(frozen=True)
class ModelStatus:
    """The current model of a region."""

    version: str | None
    registered_at: str | None = None
    promoted_at: str | None = None
    train_start: str | None = None
    train_end: str | None = None
    versions: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "registered_at": self.registered_at,
            "promoted_at": self.promoted_at,
            "training_period": (
                {"start": self.train_start, "end": self.train_end} if self.train_start else None
            ),
            "versions_stored": self.versions,
            "error": self.error,
        }


@dataclass(frozen=True)
class RegionStatus:
    """Everything ``smda status`` shows for one region."""

    region: RegionInfo
    today: date | None
    locations: dict[str, str]
    chain: ChainStatus
    model: ModelStatus
    runs: dict[str, RunRecord]
    sources: list[SourceStatus] = field(default_factory=list)

    @property
    def last_run(self) -> RunRecord | None:
        """The run of any job that finished last."""
        return max(self.runs.values(), key=lambda r: r.finished_at, default=None)

    def to_json(self) -> dict[str, Any]:
        """The documented ``smda status --json`` entry of a region (README, "Machine-readable
        output")."""
        info = self.region.to_json()
        last = self.last_run
        return {
            "key": self.region.key,
            "bbox": info["bbox"],
            "resolution_deg": info["resolution_deg"],
            "grid_shape": info["grid_shape"],
            "locations": self.locations,
            "chain": self.chain.to_json(self.today),
            "model": self.model.to_json(),
            "last_run": last.to_json() if last else None,
            "runs": {job: rec.to_json() for job, rec in sorted(self.runs.items())},
            "sources": [_source_json(s) for s in self.sources],
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _source_json(st: SourceStatus) -> dict[str, Any]:
    return {
        "source": st.source,
        "provider_newest": _iso(st.provider_newest),
        "provider_error": st.provider_error or None,
        "staged_days": st.staged_count,
        "staged_first": _iso(st.staged_first),
        "staged_last": _iso(st.staged_last),
        "behind_days": st.behind,
        "gaps": _ranges_json(st.gaps),
        "provisional_days": st.provisional,
    }


def region_roots(settings: Settings) -> list[str]:
    """The folders whose sub-folders are region folders (state, models, products, staged,
    reports)."""
    d = settings.data_dir
    return [
        settings.state_url or str(d / "state"),
        str(d / "models"),
        settings.products_url or str(d / "products"),
        str(d / "staged"),
        str(d / "reports"),
    ]


def known_regions(settings: Settings) -> dict[str, RegionInfo]:
    """The regions with a folder in the data directory (or the state/products URLs), by key."""
    return find_regions(region_roots(settings))


def chain_status(rt: Runtime) -> ChainStatus:
    """The chain's days, gaps and provisional days (reads every day's sidecar)."""
    try:
        days = rt.chain.days()
    except (OSError, SmdaError) as exc:
        return ChainStatus([], error=f"{type(exc).__name__}: {exc}")
    provisional: dict[date, list[str]] = {}
    unreadable = []
    for day in days:
        try:
            names = provisional_inputs(rt.chain.provenance(day))
        except (OSError, SmdaError):
            unreadable.append(day)
            continue
        if names:
            provisional[day] = names
    return ChainStatus(days, provisional, unreadable)


def _iso_mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")


def model_status(rt: Runtime) -> ModelStatus:
    """The current model: version, registration and promotion times, training period."""
    registry = rt.registry
    try:
        version = registry.current_version()
        history = registry.history()
    except SmdaError as exc:
        return ModelStatus(None, error=str(exc))
    stored = len(registry.versions())
    if version is None:
        return ModelStatus(None, versions=stored)
    promoted = [h.get("promoted_at") for h in history if h.get("version") == version]
    meta_path = registry.path(version) / META
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        period = (meta.get("tc_stats") or {}).get("period") or {}
        registered = _iso_mtime(meta_path)
    except (OSError, ValueError) as exc:
        return ModelStatus(version, versions=stored, error=f"{meta_path} unreadable: {exc}")
    return ModelStatus(
        version,
        registered_at=registered,
        promoted_at=promoted[-1] if promoted else None,
        train_start=period.get("start"),
        train_end=period.get("end"),
        versions=stored,
    )


def region_status(rt: Runtime, sources: Sequence[SourceStatus] = ()) -> RegionStatus:
    """The status of ``rt``'s region (``sources``: the inputs' status, when asked for)."""
    paths = data_paths(rt)
    return RegionStatus(
        region=read_region_file(rt.chain.url) or RegionInfo.of_grid(rt.grid),
        today=rt.ctx.today,
        locations={k: paths[k] for k in ("state", "models", "products", "catalog")},
        chain=chain_status(rt),
        model=model_status(rt),
        runs=last_runs(runs_path(rt.settings.data_dir, rt.region)),
        sources=list(sources),
    )
