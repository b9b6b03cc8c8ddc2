"""Days before a source's archive begins are refused at once, without asking the provider."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from ingest_helpers import REGION, TODAY

from smda.config import Settings
from smda.errors import OutsideArchive, SmdaError
from smda.ingest.fetch import fetch_range
from smda.ingest.sources import get_source
from smda.ingest.sources.base import IngestContext
from smda_twin.service import Twin

FIRST_DAYS = {
    "era5": date(1940, 1, 1),
    "era5land": date(1950, 1, 1),
    "gldas": date(2000, 1, 1),
    "mswep": date(1979, 1, 1),
    "smap": date(2015, 3, 31),
}


@pytest.mark.parametrize(("name", "first"), FIRST_DAYS.items())
def test_days_before_the_archive_fail_at_once_without_a_request(
    twin: Twin, ctx: IngestContext, name: str, first: date
) -> None:
    assert get_source(name).first_day == first
    start, end = first - timedelta(days=10), first + timedelta(days=5)  # straddles the start

    with pytest.raises(OutsideArchive) as raised:
        fetch_range([name], start, end, ctx)

    error = raised.value
    assert isinstance(error, SmdaError) and isinstance(error, ValueError)
    assert (error.source, error.first_day, error.start, error.end) == (name, first, start, end)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{name}: ") and f"starts on {first}" in message
    assert f"{start} … {end}" in message
    assert twin.log.records() == []
    assert ctx.store.ledger(name).get(first) is None


@pytest.mark.parametrize(("name", "first"), FIRST_DAYS.items())
def test_the_first_day_itself_is_fetchable(name: str, first: date) -> None:
    get_source(name).check_archive(first, first + timedelta(days=1))  # does not raise


def test_one_source_out_of_range_stops_the_request_before_any_source_is_asked(
    twin: Twin, ctx: IngestContext
) -> None:
    with pytest.raises(OutsideArchive, match="smap: the archive starts on 2015-03-31"):
        fetch_range(["era5", "mswep", "smap"], date(2015, 3, 1), date(2015, 4, 30), ctx)
    assert twin.log.records() == []


def test_a_training_span_before_the_archive_fetches_nothing(twin: Twin, tmp_path: Path) -> None:
    from smda.ops import open_runtime
    from smda.ops.fetch import fetch_for_training

    endpoints = tmp_path / "endpoints.json"
    twin.endpoints().write(endpoints)
    rt = open_runtime(
        Settings(data_dir=tmp_path / "data", endpoints=endpoints), region=REGION, today=TODAY
    )
    twin.log.clear()  # opening the runtime asked nothing of the providers; be sure

    with pytest.raises(OutsideArchive, match="smap"):
        fetch_for_training(rt, date(2015, 1, 1), date(2015, 6, 30), label_products=("smap",))
    assert twin.log.records() == []  # not even the ERA5 invariants


def test_the_cli_says_it_in_one_line(
    twin: Twin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smda.cli import run

    endpoints = tmp_path / "endpoints.json"
    twin.endpoints().write(endpoints)
    monkeypatch.setenv("SMDA_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("SMDA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMDA_REGION", "-100,35,-99,36")
    monkeypatch.setattr("sys.argv", ["smda", "fetch", "smap", "--start", "2015-03-01"])

    with pytest.raises(SystemExit) as exited:
        run()

    assert exited.value.code == 1
    shown = " ".join(capsys.readouterr().err.split())  # the error line, unwrapped
    assert "error: smap: the archive starts on 2015-03-31" in shown
    assert twin.log.count() == 0
