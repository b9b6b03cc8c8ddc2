"""MSWEP transfers: one GET per file, and locations with a query string (a token) that work
and never show the token."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from ingest_helpers import FAST, REGION, TODAY

from smda.config import Settings
from smda.errors import PermanentError
from smda.ingest.context import make_context
from smda.ingest.fetch import fetch_range
from smda.ingest.sources.base import IngestContext
from smda_twin.faults import Fault
from smda_twin.service import Twin

SECRET = "q-s3cret-value"


def test_each_file_is_downloaded_once(twin: Twin, ctx: IngestContext) -> None:
    days = [date(2024, 7, 1) + timedelta(days=i) for i in range(4)]
    twin.log.clear()

    report = fetch_range(["mswep"], days[0], days[-1], ctx)

    assert [o.status for o in report.outcomes] == ["fetched"] * len(days), report.outcomes
    for day in days:
        name = rf"/{day:%Y%j}\.nc$"
        assert twin.log.count("mswep", method="GET", path=name) == 1, day
        assert twin.log.count("mswep", method="HEAD", path=name) == 1, day  # size and version
    assert twin.log.count("mswep", method="GET") == len(days)


def _token_context(twin: Twin, data_dir: Path) -> IngestContext:
    template = twin.endpoints().mswep.url_template + f"?token={SECRET}&v=2"
    return make_context(
        Settings(data_dir=data_dir, mswep_url=template),
        region=REGION,
        endpoints=None,
        policy=FAST,
        today=TODAY,
    )


def _smda_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("smda"))


def test_a_location_with_a_query_string_is_fetched(
    twin: Twin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="smda")
    ctx = _token_context(twin, tmp_path / "data")
    days = [date(2024, 7, 1), date(2024, 7, 2)]

    report = fetch_range(["mswep"], days[0], days[-1], ctx)

    assert [o.status for o in report.outcomes] == ["fetched", "fetched"], report.outcomes
    gets = [r for r in twin.log.records() if r.provider == "mswep" and r.method == "GET"]
    assert len(gets) == 2 and all(r.query == f"token={SECRET}&v=2" for r in gets)
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored and not any(SECRET.encode() in p.read_bytes() for p in stored)
    assert any(b"token=***&v=***" in p.read_bytes() for p in stored)  # provenance, redacted
    assert SECRET not in _smda_log(caplog)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault("status", path=r"\.nc$", method="GET", status=503, times=-1), "failed"),
        # published at the HEAD, gone at the GET: fsspec raises FileNotFoundError(url)
        (Fault("status", path=r"\.nc$", method="GET", status=404, times=-1), "not_available"),
    ],
    ids=["outage", "gone"],
)
def test_the_token_is_not_in_failure_reasons_or_logs(
    twin: Twin,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    status: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="smda")
    twin.add_fault("mswep", fault)
    ctx = _token_context(twin, tmp_path / "data")

    [outcome] = fetch_range(["mswep"], date(2024, 7, 3), date(2024, 7, 3), ctx).outcomes

    assert outcome.status == status, outcome
    assert "2024185.nc" in outcome.reason and SECRET not in outcome.reason
    assert SECRET not in _smda_log(caplog)


def test_client_errors_quoting_the_url_are_redacted() -> None:
    from smda.ingest.sources.mswep import _classify_redacted

    url = f"https://ana:pw-{SECRET}@mirror.example/NRT/2024185.nc?token={SECRET}"
    error = _classify_redacted(url)(OSError(f"cannot open {url}"), "mswep 2024-07-03")

    assert isinstance(error, PermanentError)
    assert SECRET not in str(error)
    assert "https://ana:***@mirror.example/NRT/2024185.nc?token=***" in str(error)
