"""One retry layer per provider call: the clients try once, smda's policy decides the attempts
and honours ``Retry-After`` (the waits are recorded by the policy, not waited)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import requests
from ingest_helpers import FAST, context

from smda.errors import CredentialsError, TransientError
from smda.ingest.fetch import fetch_range
from smda.ingest.retry import RetryPolicy
from smda.ingest.sources.base import IngestContext
from smda.ingest.sources.earthdata import classify_earthdata
from smda_twin.faults import Fault
from smda_twin.service import Twin

DAY = date(2024, 7, 10)


def _recording(waits: list[float]) -> RetryPolicy:
    """FAST, but the waits are recorded instead of slept; Retry-After up to a minute is kept."""
    return replace(FAST, sleep=waits.append, max_retry_after=60.0)


@pytest.mark.parametrize(
    ("provider", "source", "method", "path"),
    [
        ("cds", "era5", "POST", "execution"),
        ("cds", "era5", "GET", "/download/"),
        ("earthdata", "smap", "GET", r"\.h5$"),
        ("earthdata", "smap", "GET", "granules"),
        ("mswep", "mswep", "GET", rf"/{DAY:%Y%j}\.nc$"),
    ],
)
def test_a_failing_provider_is_asked_once_per_attempt(
    twin: Twin, tmp_path: Path, provider: str, source: str, method: str, path: str
) -> None:
    waits: list[float] = []
    ctx = context(twin, tmp_path / "data", policy=_recording(waits))
    twin.add_fault(provider, Fault("status", path=path, method=method, status=500, times=-1))

    [outcome] = fetch_range([source], DAY, DAY, ctx).outcomes

    assert outcome.status == "failed" and "gave up after 4 attempt(s)" in outcome.reason, outcome
    assert twin.log.count(provider, method=method, path=path) == FAST.attempts
    assert len(waits) == FAST.attempts - 1  # smda's backoff between its own attempts only


def _http_error(status: int, url: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code, response.url, response.reason = status, url, "Server says no"
    return requests.HTTPError(f"{status} Error: Server says no for url: {url}", response=response)


@pytest.mark.parametrize("port", [40155, 34012, 8401])
def test_an_earthdata_server_error_is_transient_whatever_digits_its_url_holds(port: int) -> None:
    """A loopback replica's port (or any URL) may hold the digits 401: a 500 stays a 500."""
    url = f"http://127.0.0.1:{port}/data/SMAP_L3_SM_P_E_20240710_R19240_001.h5"
    assert isinstance(classify_earthdata(_http_error(500, url), "download"), TransientError)
    cmr = RuntimeError(f"500 Internal Server Error: {url}")  # earthaccess's bare errors
    assert isinstance(classify_earthdata(cmr, "search"), TransientError)
    assert isinstance(classify_earthdata(_http_error(401, url), "download"), CredentialsError)
    assert isinstance(
        classify_earthdata(RuntimeError("401 Unauthorized"), "search"), CredentialsError
    )


@pytest.mark.parametrize(
    ("provider", "source", "fault", "method"),
    [
        ("cds", "era5", Fault("status", path="execution", status=429, retry_after=7), "POST"),
        (
            "cds",
            "era5",
            Fault("status", path="/download/", method="GET", status=503, retry_after=11),
            "GET",
        ),
        ("earthdata", "smap", Fault("status", path=r"\.h5$", status=429, retry_after=5), "GET"),
        (
            "mswep",
            "mswep",
            Fault("status", path=r"\.nc$", method="GET", status=503, retry_after=9),
            "GET",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.status}-{v.path}",
)
def test_retry_after_is_the_wait(
    twin: Twin, tmp_path: Path, provider: str, source: str, fault: Fault, method: str
) -> None:
    waits: list[float] = []
    ctx = context(twin, tmp_path / "data", policy=_recording(waits))
    twin.add_fault(provider, fault)

    report = fetch_range([source], DAY, DAY, ctx)

    assert [o.status for o in report.outcomes] == ["fetched"], report.outcomes
    assert waits == [fault.retry_after]
    assert twin.log.count(provider, method=method, path=fault.path) == 2  # refused, then served


def test_retry_after_is_capped_by_the_policy(twin: Twin, tmp_path: Path) -> None:
    waits: list[float] = []
    policy = replace(FAST, sleep=waits.append, max_retry_after=3.0)
    twin.add_fault("cds", Fault("status", path="execution", status=503, retry_after=3600))

    report = fetch_range(["era5"], DAY, DAY, context(twin, tmp_path / "data", policy=policy))

    assert report.ok and waits == [3.0]


def test_the_cds_client_does_not_retry(ctx: IngestContext) -> None:
    from smda.ingest.sources.cds import cds

    client = cds(ctx)
    assert client.retry_max == 1 and client.client.maximum_tries == 1
    for adapter in client.session.adapters.values():
        assert adapter.max_retries.total == 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", path="/jobs/", method="GET", status=503),
        Fault("reset", path="/jobs/", method="GET"),
    ],
    ids=["503", "reset"],
)
def test_a_failed_poll_resumes_the_job_instead_of_submitting_another(
    twin: Twin, ctx: IngestContext, fault: Fault
) -> None:
    twin.add_fault("cds", fault)

    report = fetch_range(["era5"], DAY, DAY, ctx)

    assert [o.status for o in report.outcomes] == ["fetched"], report.outcomes
    assert fault.fired == 1
    assert twin.log.count("cds", method="POST", path="execution") == 1
