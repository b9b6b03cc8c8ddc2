"""Bounded retries: only transient errors, backoff or Retry-After, an overall deadline."""

from __future__ import annotations

import pytest
import requests

from smda.errors import (
    CredentialsError,
    InvalidRequest,
    LicenceNotAccepted,
    NotYetAvailable,
    TransientError,
)
from smda.ingest.retry import RetryPolicy, classify, retry_call


def _http_error(
    status: int, body: str = "", headers: dict[str, str] | None = None
) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response._content = body.encode()
    return requests.HTTPError(f"{status} Client Error\n{body}", response=response)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, "", TransientError),
        (500, "", TransientError),
        (503, "", TransientError),
        (401, "", CredentialsError),
        (403, "required licences not accepted", LicenceNotAccepted),
        (403, "Please accept the EULA", LicenceNotAccepted),
        (404, "", NotYetAvailable),
        (400, "invalid request", InvalidRequest),
    ],
)
def test_classify_http(status: int, body: str, kind: type) -> None:
    assert isinstance(classify(_http_error(status, body), "x"), kind)


def test_classify_network_errors_are_transient() -> None:
    for exc in (requests.ConnectionError("reset"), requests.ReadTimeout("slow"), TimeoutError()):
        assert isinstance(classify(exc, "x"), TransientError)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_transient_errors_retried_until_success() -> None:
    clock = FakeClock()
    calls = iter([_http_error(503), _http_error(502), "ok"])

    def fn() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert (
        retry_call(fn, what="x", policy=RetryPolicy(base_delay=1), sleep=clock.sleep, clock=clock)
        == "ok"
    )
    assert (
        len(clock.sleeps) == 2 and 0.5 <= clock.sleeps[0] <= 1.0 and 1.0 <= clock.sleeps[1] <= 2.0
    )


def test_retry_after_is_used_and_capped() -> None:
    clock = FakeClock()
    errors = iter(
        [
            _http_error(429, headers={"Retry-After": "7"}),
            _http_error(429, headers={"Retry-After": "9999"}),
        ]
    )

    def fn() -> None:
        raise next(errors)

    with pytest.raises(TransientError, match="gave up after 2"):
        retry_call(
            fn,
            what="x",
            policy=RetryPolicy(attempts=2, max_retry_after=30),
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.sleeps == [7.0]


def test_the_policy_sleeps_unless_told_otherwise() -> None:
    waits: list[float] = []
    errors = iter([_http_error(503, headers={"Retry-After": "4"}), None])

    def fn() -> str:
        if (error := next(errors)) is not None:
            raise error
        return "ok"

    assert retry_call(fn, what="x", policy=RetryPolicy(sleep=waits.append)) == "ok"
    assert waits == [4.0]


def test_permanent_errors_are_not_retried() -> None:
    clock = FakeClock()
    calls = []

    def fn() -> None:
        calls.append(1)
        raise _http_error(401)

    with pytest.raises(CredentialsError):
        retry_call(fn, what="x", sleep=clock.sleep, clock=clock)
    assert len(calls) == 1 and clock.sleeps == []


def test_deadline_bounds_the_total_time() -> None:
    clock = FakeClock()

    def fn() -> None:
        raise requests.ConnectionError("down")

    with pytest.raises(TransientError, match="next run"):
        retry_call(
            fn,
            what="x",
            policy=RetryPolicy(attempts=100, base_delay=10, max_delay=10, deadline=35),
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.now <= 35
