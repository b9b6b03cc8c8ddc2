"""What keeps a day's ingest cheap: shared searches, checksums, one decode, batched ledger saves."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from smda.errors import MalformedFile
from smda.ingest.fetch import fetch_range
from smda.ingest.sources.base import IngestContext, TaskBatch
from smda.ingest.sources.earthdata import granule_checksum, granule_size
from smda.ingest.sources.gldas import GldasSource
from smda.ingest.sources.smap import SmapSource
from smda.storage.store import SAVE_INTERVAL, DayRecord, Ledger
from smda_twin.service import Twin

MONTH = (date(2024, 6, 1), date(2024, 6, 5))


def _granule_searches(twin: Twin) -> list[dict[str, list[str]]]:
    """Query strings of the CMR granule searches that returned items (not the hits probes)."""
    return [
        parse_qs(r.query)
        for r in twin.log.records()
        if r.path.endswith("granules.umm_json") and parse_qs(r.query).get("page_size") != ["0"]
    ]


def test_one_granule_search_serves_a_month_of_days(twin: Twin, ctx: IngestContext) -> None:
    report = fetch_range(["smap"], *MONTH, ctx)
    assert [o.status for o in report.outcomes] == ["fetched"] * 5, report.outcomes
    searches = _granule_searches(twin)
    newest = [q for q in searches if q.get("sort_key") == ["-start_date"]]
    days = [q for q in searches if "sort_key" not in q]
    assert len(newest) == 1 and newest[0]["page_size"] == ["1"]  # newest_available: one item
    assert len(days) == 1  # not one per day
    assert days[0]["temporal[]"] == ["2024-06-01T00:00:00Z,2024-06-05T23:59:59Z"]


def test_days_of_two_months_are_two_searches(twin: Twin, ctx: IngestContext) -> None:
    report = fetch_range(["smap"], date(2024, 5, 30), date(2024, 6, 2), ctx)
    assert report.ok and len(report.by_status("fetched")) == 4
    assert len([q for q in _granule_searches(twin) if "sort_key" not in q]) == 2


def test_a_gap_is_not_searched(twin: Twin, ctx: IngestContext) -> None:
    assert fetch_range(["smap"], date(2024, 6, 2), date(2024, 6, 3), ctx).ok
    report = fetch_range(["smap"], date(2024, 6, 1), date(2024, 6, 5), ctx)
    assert sorted(o.status for o in report.outcomes) == ["fetched"] * 3 + ["skipped"] * 2
    windows = [
        q["temporal[]"][0][:10] + ".." + q["temporal[]"][0][21:31]
        for q in _granule_searches(twin)
        if "sort_key" not in q
    ]
    assert sorted(windows[-2:]) == ["2024-06-01..2024-06-01", "2024-06-04..2024-06-05"]


def test_plan_shares_one_batch_per_month(ctx: IngestContext) -> None:
    days = [date(2024, 5, 30), date(2024, 5, 31), date(2024, 6, 1)]
    tasks = SmapSource().plan(days, ctx)
    assert [t.days for t in tasks] == [(d,) for d in days]
    assert tasks[0].batch is tasks[1].batch is not tasks[2].batch
    assert tasks[0].windows == [(date(2024, 5, 30), date(2024, 5, 31))]
    assert tasks[2].windows == [(date(2024, 6, 1), date(2024, 6, 1))]
    sparse = SmapSource().plan([date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 9)], ctx)
    assert [t.windows for t in sparse] == [
        [(date(2024, 6, 1), date(2024, 6, 2))],
        [(date(2024, 6, 1), date(2024, 6, 2))],
        [(date(2024, 6, 9), date(2024, 6, 9))],  # not a search over the days between
    ]
    again = SmapSource().plan(days, ctx)
    assert again[0].batch is not tasks[0].batch  # a new run asks the provider again


def test_task_batch_runs_a_factory_once_and_forgets_failures() -> None:
    batch = TaskBatch((date(2024, 6, 1), date(2024, 6, 2)))
    calls: list[int] = []
    gate = threading.Barrier(4)

    def slow() -> str:
        calls.append(1)
        return "granules"

    def worker(out: list[str]) -> None:
        gate.wait()
        out.append(batch.shared("cmr", slow))

    results: list[str] = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["granules"] * 4 and len(calls) == 1

    def failing() -> str:
        raise RuntimeError("CMR down")

    with pytest.raises(RuntimeError):
        batch.shared("other", failing)
    assert batch.shared("other", lambda: "ok") == "ok"


def test_downloads_are_verified_by_the_cmr_checksum_not_by_decoding(
    twin: Twin, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[Path] = []
    monkeypatch.setattr("smda.ingest.sources.gldas._check", decoded.append)
    report = fetch_range(["gldas"], date(2024, 6, 1), date(2024, 6, 1), ctx)
    assert [o.status for o in report.outcomes] == ["fetched"], report.outcomes
    assert decoded == []  # every granule carried a SHA-256 in its UMM-G record
    record = ctx.store.ledger("gldas").get(date(2024, 6, 1))
    assert record is not None and len(record.files) == 8


def test_a_cached_file_that_fails_its_checksum_is_downloaded_again(
    twin: Twin, ctx: IngestContext
) -> None:
    day = date(2024, 6, 1)
    assert fetch_range(["gldas"], day, day, ctx).ok
    raw = sorted(ctx.store.raw_dir("gldas").glob("*.nc4"))[0]
    data = bytearray(raw.read_bytes())
    data[-100] ^= 0xFF  # same size, other content
    raw.write_bytes(bytes(data))
    record = ctx.store.ledger("gldas").get(day)
    assert record is not None
    (ctx.store.root / record.staged).unlink()  # the day must be staged again
    before = twin.log.count("earthdata", path=r"\.nc4$")
    report = fetch_range(["gldas"], day, day, ctx)
    assert report.ok and ctx.store.staged_path("gldas", day).exists(), report.outcomes
    assert twin.log.count("earthdata", path=r"\.nc4$") == before + 1  # only the damaged one


def _granule(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "umm": {
            "RelatedUrls": [{"URL": "https://host/x/a.h5", "Type": "GET DATA"}],
            "DataGranule": {"ArchiveAndDistributionInformation": info},
        }
    }


def test_checksum_and_size_come_from_the_downloaded_files_own_entry() -> None:
    entries = [
        {"Name": "a.h5.xml", "SizeInBytes": 10, "Checksum": {"Value": "AA", "Algorithm": "MD5"}},
        {"Name": "a.h5", "SizeInBytes": 99, "Checksum": {"Value": "BEEF", "Algorithm": "SHA-256"}},
    ]
    assert granule_checksum(_granule(entries)) == ("sha256", "beef")
    assert granule_size(_granule(entries)) == 99
    single = {"Name": "a.h5", "SizeInBytes": 5, "Checksum": {"Value": "1", "Algorithm": "Adler-32"}}
    assert granule_checksum(_granule(single)) is None  # not an algorithm smda verifies
    assert granule_checksum(_granule([{"Name": "a.h5", "SizeInBytes": 5}])) is None


def test_mswep_file_is_decoded_once(
    twin: Twin, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smda.ingest.sources.mswep as mswep_source

    opened: list[str] = []
    real = mswep_source.open_mswep

    def counting(path: Any) -> Any:
        opened.append(str(path))
        return real(path)

    monkeypatch.setattr(mswep_source, "open_mswep", counting)
    report = fetch_range(["mswep"], date(2024, 7, 1), date(2024, 7, 3), ctx)
    assert [o.status for o in report.outcomes] == ["fetched"] * 3, report.outcomes
    assert len(opened) == 3  # the integrity check's decode is the staging
    staged = ctx.store.open_staged("mswep", date(2024, 7, 2))
    assert staged["precipitation"].attrs["units"] == "mm day-1"


class _Gone(Exception):
    status = 404


class _Busy(Exception):
    status = 503


class _Fs:
    def __init__(self, cause: BaseException | None) -> None:
        self.cause = cause

    def info(self, path: str) -> dict[str, Any]:
        raise FileNotFoundError(path) from self.cause


def test_only_a_404_means_an_mswep_file_is_not_published() -> None:
    from smda.ingest.sources.mswep import _stat

    assert _stat(_Fs(None), "a") is None  # a local mirror without the file
    assert _stat(_Fs(_Gone()), "a") is None
    with pytest.raises(_Busy):  # fsspec hides a 503 behind FileNotFoundError: re-raised
        _stat(_Fs(_Busy()), "a")
    with pytest.raises(TimeoutError):
        _stat(_Fs(TimeoutError("slow")), "a")


def _record(day: str) -> DayRecord:
    return DayRecord(day, f"s/{day}.nc", "0" * 64, [], False, "2024-07-20T00:00:00+00:00")


def test_ledger_batch_saves_once_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    ledger = Ledger(path)
    ledger.put(_record("2024-06-01"))
    assert json.loads(path.read_text())["days"].keys() == {"2024-06-01"}
    with ledger.batch():
        ledger.put(_record("2024-06-02"))
        ledger.put(_record("2024-06-03"))
        assert json.loads(path.read_text())["days"].keys() == {"2024-06-01"}  # not yet
    saved = json.loads(path.read_text())["days"]
    assert saved.keys() == {"2024-06-01", "2024-06-02", "2024-06-03"}
    assert Ledger(path).get(date(2024, 6, 3)) == ledger.get(date(2024, 6, 3))


def test_ledger_batch_saves_now_and_then_and_after_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.json"
    ledger = Ledger(path)
    # each save reads the clock once after the check that decided it
    late = 1001.0 + SAVE_INTERVAL + 1.0
    clock = iter([1000.0, 1001.0, 1002.0, late, late + 1.0, late + 2.0, late + 3.0])
    monkeypatch.setattr("smda.storage.store.time.monotonic", lambda: next(clock))
    with pytest.raises(RuntimeError), ledger.batch():
        ledger.put(_record("2024-06-01"))  # the first change of a run is saved
        assert path.exists()
        ledger.put(_record("2024-06-02"))  # 1 s later: waits
        assert "2024-06-02" not in json.loads(path.read_text())["days"]
        ledger.put(_record("2024-06-03"))  # more than SAVE_INTERVAL later: saved
        assert "2024-06-03" in json.loads(path.read_text())["days"]
        ledger.touch(date(2024, 6, 3), date(2024, 7, 21))  # waits again
        raise RuntimeError("crash")
    assert json.loads(path.read_text())["days"]["2024-06-03"]["checked_on"] == "2024-07-21"


def test_gldas_day_is_staged_from_eight_granules(twin: Twin, ctx: IngestContext) -> None:
    day = date(2024, 6, 2)
    report = fetch_range(["gldas"], day, day, ctx)
    assert report.ok
    staged = ctx.store.open_staged("gldas", day)["soil_moisture"]
    assert staged.attrs["steps"] == 8 and 0.0 < float(staged.max()) < 0.6
    assert isinstance(GldasSource().plan([day], ctx)[0].batch, TaskBatch)


def test_without_a_checksum_the_download_is_decoded(tmp_path: Path) -> None:
    from smda.ingest.sources.gldas import _check

    bad = tmp_path / "bad.nc4"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(MalformedFile):
        _check(bad)
