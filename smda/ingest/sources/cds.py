"""CDS requests through the real ``cdsapi`` client, with a deadline and resumable jobs.

``cdsapi`` waits for a job without any deadline and retries for hours by default. smda submits
the job (``wait_until_complete=False``), polls it itself until an overall deadline, and remembers
the job id of a request that is still queued, so the next run resumes that job instead of
queueing a duplicate. Transfers are retried by the client a bounded number of times; the result
is downloaded to a temporary sibling and moved into the raw cache only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smda.errors import InvalidRequest, MalformedFile, NotYetAvailable, SmdaError, TransientError
from smda.ingest.clients import cds_client
from smda.ingest.retry import classify, retry_call
from smda.ingest.sources.base import IngestContext
from smda.storage.atomic import atomic_path
from smda.storage.store import JsonMap

__all__ = ["cds", "classify_cds", "request_hash", "retrieve"]

LOG = logging.getLogger(__name__)


def request_hash(dataset: str, request: dict[str, Any]) -> str:
    text = json.dumps({"dataset": dataset, "request": request}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def classify_cds(exc: BaseException, what: str) -> SmdaError:
    """CDS-specific meanings of failed jobs, then the generic classification."""
    text = str(exc)
    if "not available yet" in text or "None of the data you have requested is available" in text:
        return NotYetAvailable(f"{what}: the CDS has not published these days yet")
    if "The job has failed" in text:
        return TransientError(
            f"{what}: the CDS job failed ({text.splitlines()[-1][:200]}); it will be resubmitted"
        )
    if "request too large" in text or "cost limits" in text:
        return InvalidRequest(
            f"{what}: the request is too large for the CDS; fetch a shorter period"
        )
    return classify(exc, what)


def cds(ctx: IngestContext) -> Any:
    """The run's ``cdsapi`` client: bounded retries and timeouts, and jobs submitted without
    waiting (smda polls them itself, with a deadline)."""

    def make() -> Any:
        client = cds_client(ctx.endpoints, retry_max=3, sleep_max=2.0, timeout=60)
        client.wait_until_complete = False
        return client

    return ctx.memo("cds-client", make)


def retrieve(
    dataset: str,
    request: dict[str, Any],
    target: Path,
    ctx: IngestContext,
    *,
    what: str,
    deadline: float = 3600.0,
    poll_max: float = 30.0,
    check: Callable[[Path], object] | None = None,
) -> Path:
    """Submit (or resume) a CDS request and download its result to ``target`` atomically."""
    client = cds(ctx)
    # job ids of submitted requests not downloaded yet: a queued job is resumed, not resubmitted
    jobs = JsonMap(target.parent / ".cds-jobs.json")
    key = request_hash(dataset, request)

    def submit_and_download() -> Path:
        remote = None
        job_id = jobs.load().get(key)
        if job_id is not None:
            try:
                remote = client.client.get_remote(job_id)
                LOG.info("%s: resuming CDS job %s", what, job_id)
            except Exception:  # the job expired or was deleted upstream: submit again
                remote = None
        if remote is None:
            remote = client.retrieve(dataset, request)
            jobs.update({key: remote.request_id})
        started, sleep = time.monotonic(), 1.0
        try:
            while not remote.results_ready:
                if time.monotonic() - started > deadline:
                    raise TransientError(
                        f"{what}: CDS job {remote.request_id} still queued after {deadline:.0f} s; "
                        "the next run resumes it"
                    )
                time.sleep(sleep)
                sleep = min(sleep * 1.5, poll_max)
        except TransientError:
            raise
        except Exception:
            jobs.update({key: None})  # failed jobs are not resumed
            raise
        with atomic_path(target) as tmp:
            remote.download(str(tmp))
            if check is not None:
                try:
                    check(tmp)
                except MalformedFile as exc:
                    # keep the job id: the next attempt downloads the same result again
                    raise TransientError(f"{what}: the result arrived corrupt ({exc})") from exc
        jobs.update({key: None})
        return target

    return retry_call(
        submit_and_download, what=what, policy=ctx.policy, classify_error=classify_cds
    )
