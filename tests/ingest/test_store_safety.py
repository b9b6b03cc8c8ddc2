"""The store under concurrent writers and corruption: ledgers merge, corrupt staged days are
staged again (never skipped), and the raw cache's job map keeps every process's entries."""

from __future__ import annotations

import multiprocessing
from datetime import date
from pathlib import Path

from ingest_helpers import context

from smda.ingest.fetch import fetch_range
from smda.ingest.sources.base import IngestContext
from smda.storage.integrity import repairs
from smda.storage.store import DayRecord, JsonMap, Ledger
from smda_twin.service import Twin


def _record(day: str) -> DayRecord:
    return DayRecord(
        day=day,
        staged=f"x/{day}.nc",
        sha256=day,
        files=[],
        provisional=False,
        staged_at="2024-01-01T00:00:00+00:00",
    )


def test_two_writers_of_one_ledger_keep_both_records(tmp_path: Path) -> None:
    """Each writer loaded the ledger before the other saved (the lost-update pattern)."""
    path = tmp_path / "ledger.json"
    first, second = Ledger(path), Ledger(path)
    first.put(_record("2024-06-15"))
    second.put(_record("2024-06-19"))
    first.put(_record("2024-06-16"))
    assert Ledger(path).days() == [date(2024, 6, 15), date(2024, 6, 16), date(2024, 6, 19)]
    second.drop(date(2024, 6, 19))
    assert Ledger(path).days() == [date(2024, 6, 15), date(2024, 6, 16)]


def _update_many(path: str, prefix: str) -> None:
    jm = JsonMap(Path(path))
    for i in range(40):
        jm.update({f"{prefix}{i}": str(i)})


def test_job_map_updates_from_two_processes_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_update_many, args=(str(path), p)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(JsonMap(path).load()) == 80


def test_a_truncated_staged_day_is_staged_again_not_skipped(twin: Twin, ctx: IngestContext) -> None:
    day = date(2024, 7, 10)
    assert fetch_range(["era5", "mswep"], day, day, ctx).ok
    path = ctx.store.staged_path("era5", day)
    good = path.read_bytes()
    with path.open("r+b") as fh:
        fh.truncate(5000)
    before = repairs().get("staged", 0)
    again = fetch_range(["era5", "mswep"], day, day, context(twin, ctx.store.root))
    era5 = [o for o in again.outcomes if o.source == "era5"]
    assert [o.status for o in era5] == ["fetched"], era5
    assert path.read_bytes() == good
    assert ctx.store.intact("era5", day)
    assert repairs()["staged"] == before + 1
