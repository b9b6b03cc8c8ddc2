"""Bounded retries for provider calls: only transient errors, with backoff and a deadline.

Providers fail in ways that go away (429, 5xx, timeouts, resets, truncated downloads) and ways
that do not (bad credentials, licence not accepted, invalid request). :func:`retry_call` retries
only :class:`~smda.errors.TransientError`, waits with exponential backoff (or the server's
``Retry-After`` when it gives one, capped), and gives up at an overall deadline — unlike
``cdsapi``'s defaults, which retry for about 16 hours. :func:`classify` turns the exceptions the
clients raise (requests, earthaccess, ecmwf-datastores) into smda's error kinds.

It is the *only* retry layer of a provider call: the clients are configured to try each request
once (:mod:`smda.ingest.clients`), so attempts do not multiply and every wait honours the
server's ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests

from smda.errors import (
    CredentialsError,
    InvalidRequest,
    LicenceNotAccepted,
    NotYetAvailable,
    PermanentError,
    SmdaError,
    TransientError,
)

__all__ = ["RetryPolicy", "classify", "retry_call"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, backoff (seconds) and an overall deadline (seconds).

    ``sleep`` waits between attempts (``time.sleep``; a test passes a recorder to see the
    waits :meth:`delay` chose without waiting them).
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    deadline: float = 900.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * (0.5 + random.random() / 2)


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _classify_aiohttp(exc: BaseException, what: str) -> SmdaError | None:
    """fsspec's HTTP filesystem raises aiohttp errors."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with fsspec[http]
        return None
    if isinstance(exc, aiohttp.ClientResponseError):
        retry_after = None
        if exc.headers is not None and exc.headers.get("Retry-After"):
            try:
                retry_after = float(exc.headers["Retry-After"])
            except ValueError:
                retry_after = None
        if exc.status in TRANSIENT_STATUS:
            return TransientError(
                f"{what}: HTTP {exc.status} from the provider", retry_after=retry_after
            )
        if exc.status in (401, 403):
            return CredentialsError(
                f"{what}: access refused (HTTP {exc.status}); check the credentials of this location"
            )
        if exc.status == 404:
            return NotYetAvailable(f"{what}: not published (yet) (HTTP 404)")
        return PermanentError(f"{what}: HTTP {exc.status}: {exc.message}")
    if isinstance(exc, aiohttp.ClientError):
        return TransientError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
    return None


def classify(exc: BaseException, what: str) -> SmdaError:
    """Map a client exception to smda's error kinds, with a message that says what to do."""
    if isinstance(exc, SmdaError):
        return exc
    text = str(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        with contextlib.suppress(RuntimeError, UnicodeDecodeError):  # body already consumed
            text = f"{text}\n{exc.response.text[:500]}"
        status = exc.response.status_code
        if status in TRANSIENT_STATUS:
            return TransientError(
                f"{what}: HTTP {status} from the provider", retry_after=_retry_after(exc.response)
            )
        if status == 401:
            return CredentialsError(
                f"{what}: credentials rejected (HTTP 401); check the provider's key or token"
            )
        if status == 403 and "licen" in text.lower():
            return LicenceNotAccepted(
                f"{what}: the dataset licence is not accepted for this account; accept it on the provider's website ({text.splitlines()[-1]})"
            )
        if status == 403 and "eula" in text.lower():
            return LicenceNotAccepted(
                f"{what}: the Earthdata EULA of this collection is not accepted; accept it at https://urs.earthdata.nasa.gov"
            )
        if status == 404:
            return NotYetAvailable(f"{what}: not published (yet) (HTTP 404)")
        if status in (400, 422):
            return InvalidRequest(f"{what}: the provider rejected the request: {text}")
        return PermanentError(f"{what}: HTTP {status}: {text}")
    aio = _classify_aiohttp(exc, what)
    if aio is not None:
        return aio
    if isinstance(
        exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    ):
        return TransientError(f"{what}: {type(exc).__name__}: {text[:200]}")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError(f"{what}: {type(exc).__name__}: {text[:200]}")
    return PermanentError(f"{what}: unexpected {type(exc).__name__}: {text[:300]}")


def retry_call[T](
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    classify_error: Callable[[BaseException, str], SmdaError] = classify,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it succeeds, retrying only transient errors.

    Waits with ``sleep`` (default: the policy's). Raises the classified error
    (``NotYetAvailable``, ``PermanentError`` immediately; ``TransientError`` once attempts or the
    deadline are exhausted, caused by the last error ``fn`` raised).
    """
    sleep = policy.sleep if sleep is None else sleep
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # classified below; only transient kinds loop
            error = classify_error(exc, what)
            if not isinstance(error, TransientError):
                raise error from exc
            elapsed = clock() - started
            wait = policy.delay(attempt, error.retry_after)
            if attempt >= policy.attempts or elapsed + wait > policy.deadline:
                raise TransientError(
                    f"{error} — gave up after {attempt} attempt(s) in {elapsed:.0f} s; "
                    "the provider may be down: the next run will try again",
                    retry_after=error.retry_after,
                ) from exc
            LOG.warning(
                "%s (attempt %d/%d); retrying in %.1f s", error, attempt, policy.attempts, wait
            )
            sleep(wait)
