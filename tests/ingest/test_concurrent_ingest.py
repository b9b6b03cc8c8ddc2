"""Sources ingested at once by ``fetch_range``: the same staged bytes, ledger and report as one
after the other; a source that raises loses no other source's staged days."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import xarray as xr
from ingest_helpers import REGION, context

from smda.geo.grid import region_grid
from smda.ingest.fetch import DayOutcome, fetch_range
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.storage.store import RawFile, Store
from smda_twin.service import Twin

DAY = date(2024, 7, 10)


def _staged_bytes(ctx: IngestContext, sources: list[str], days: list[date]) -> dict[str, bytes]:
    out = {}
    for name in sources:
        for day in days:
            path = ctx.store.staged_path(name, day)
            out[f"{name} {day}"] = path.read_bytes() if path.exists() else b""
    return out


def _ledgers(root: Path, sources: list[str]) -> dict[str, Any]:
    """Every source's ledger as saved on disk (a fresh store reads it), without the clock."""
    store = Store(root, region_grid(REGION))
    out = {}
    for name in sources:
        ledger = store.ledger(name)
        for day in store.staged_days(name):
            record = ledger.get(day)
            assert record is not None
            out[f"{name} {day}"] = {k: v for k, v in asdict(record).items() if k != "staged_at"}
    return out


def test_sources_at_once_stage_what_one_after_the_other_stages(twin: Twin, tmp_path: Path) -> None:
    names = ["era5", "era5land", "mswep", "smap"]
    days = [DAY, DAY + timedelta(days=1)]
    runs = {}
    for at_once in (1, 2):
        ctx = context(twin, tmp_path / f"at-once-{at_once}")
        seen: list[DayOutcome] = []
        report = fetch_range(names, *days, ctx, progress=seen.append, sources_at_once=at_once)
        assert report.ok, report.outcomes
        assert sorted(seen, key=str) == sorted(report.outcomes, key=str)
        runs[at_once] = (
            report.outcomes,
            _staged_bytes(ctx, names, days),
            _ledgers(ctx.store.root, names),
        )
    serial, concurrent = runs[1], runs[2]
    assert [o.source for o in concurrent[0]] == [n for n in names for _ in days]
    assert concurrent[0] == serial[0]
    assert [k for k, v in concurrent[1].items() if not v] == []
    assert concurrent[1] == serial[1]
    assert len(concurrent[2]) == len(names) * len(days) and concurrent[2] == serial[2]


class _Tiny(Source):
    """A provider whose day is a small field (no network): for the thread tests."""

    name: ClassVar[str] = "tiny"
    provider: ClassVar[str] = "local"
    description: ClassVar[str] = "a tiny test field"
    remote: ClassVar[bool] = False

    def __init__(self, name: str, folder: Path, stage_hook: Any = None) -> None:
        self.name = name  # type: ignore[misc]
        self.folder = folder
        self.stage_hook = stage_hook

    def newest_available(self, ctx: IngestContext) -> date:
        return DAY + timedelta(days=1)

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        out = {}
        for day in task.days:
            path = self.folder / f"{self.name}-{day}.txt"
            path.write_text(f"{self.name} {day}")
            out[day] = [RawFile(path, path.name, path.stat().st_size, f"{self.name}{day}")]
        return out

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        if self.stage_hook is not None:
            self.stage_hook(self.name)
        grid = ctx.grid
        field = np.full(grid.shape, day.day, np.float32)
        return xr.Dataset(
            {"value": (("lat", "lon"), field)}, coords={"lat": grid.lats, "lon": grid.lons}
        )


class _Broken(_Tiny):
    def newest_available(self, ctx: IngestContext) -> date:
        raise RuntimeError(f"{self.name}: a bug while polling")


def _tiny_ctx(root: Path) -> IngestContext:
    return IngestContext(store=Store(root, region_grid(REGION)), endpoints=None, today=DAY)


def test_a_source_that_raises_loses_no_other_source_s_staged_days(tmp_path: Path) -> None:
    ctx = _tiny_ctx(tmp_path / "data")
    sources = [_Tiny("first", tmp_path), _Broken("broken", tmp_path), _Tiny("last", tmp_path)]
    seen: list[DayOutcome] = []
    with pytest.raises(RuntimeError, match="broken: a bug while polling"):
        fetch_range(sources, DAY, DAY + timedelta(days=1), ctx, progress=seen.append)
    assert (
        sorted((o.source, o.status) for o in seen)
        == [("first", "fetched")] * 2 + [("last", "fetched")] * 2
    )
    fresh = Store(tmp_path / "data", region_grid(REGION))  # the ledgers were saved
    for name in ("first", "last"):
        assert fresh.staged_days(name) == [DAY, DAY + timedelta(days=1)]
        for day in (DAY, DAY + timedelta(days=1)):
            assert fresh.problem(name, day) is None
    assert fresh.staged_days("broken") == []


def test_sources_are_staged_at_once_and_progress_is_called_one_at_a_time(
    tmp_path: Path,
) -> None:
    both = threading.Barrier(2, timeout=60)  # passes only when two sources stage at once
    inside = threading.Lock()
    overlaps: list[DayOutcome] = []

    def progress(outcome: DayOutcome) -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(outcome)
            return
        try:
            time.sleep(0.02)  # widen the window another caller would fall into
        finally:
            inside.release()

    def meet(name: str) -> None:
        both.wait()

    ctx = _tiny_ctx(tmp_path / "data")
    sources = [_Tiny(n, tmp_path, meet) for n in ("a", "b")]
    report = fetch_range(sources, DAY, DAY + timedelta(days=1), ctx, progress=progress)
    assert [(o.source, o.status) for o in report.outcomes] == [("a", "fetched")] * 2 + [
        ("b", "fetched")
    ] * 2
    assert overlaps == []
