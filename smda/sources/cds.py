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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smda.atomic import atomic_path, atomic_write_bytes
from smda.clients import cds_client
from smda.errors import InvalidRequest, MalformedFile, NotYetAvailable, SmdaError, TransientError
from smda.retry import RetryPolicy, classify, retry_call
from smda.sources.base import IngestContext

__all__ = ["CdsJobs", "retrieve"]

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


@dataclass
class CdsJobs:
    """Job ids of submitted requests that have not been downloaded yet (a small JSON file)."""

    path: Path

    def get(self, key: str) -> str | None:
        return self._load().get(key)

    def put(self, key: str, job_id: str | None) -> None:
        jobs = self._load()
        if job_id is None:
            jobs.pop(key, None)
        else:
            jobs[key] = job_id
        atomic_write_bytes(self.path, json.dumps(jobs, indent=1).encode())

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()}


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
    client = ctx.memo(
        "cds-client", lambda: cds_client(ctx.endpoints, retry_max=3, sleep_max=2.0, timeout=60)
    )
    jobs = CdsJobs(target.parent / ".cds-jobs.json")
    key = request_hash(dataset, request)
    policy = RetryPolicy(
        attempts=ctx.policy.attempts, base_delay=ctx.policy.base_delay, deadline=ctx.policy.deadline
    )

    def submit_and_download() -> Path:
        remote = None
        job_id = jobs.get(key)
        if job_id is not None:
            try:
                remote = client.client.get_remote(job_id)
                LOG.info("%s: resuming CDS job %s", what, job_id)
            except Exception:  # the job expired or was deleted upstream: submit again
                remote = None
        if remote is None:
            client.wait_until_complete = False
            remote = client.retrieve(dataset, request)
            jobs.put(key, remote.request_id)
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
            jobs.put(key, None)  # failed jobs are not resumed
            raise
        with atomic_path(target) as tmp:
            remote.download(str(tmp))
            if check is not None:
                try:
                    check(tmp)
                except MalformedFile as exc:
                    # keep the job id: the next attempt downloads the same result again
                    raise TransientError(f"{what}: the result arrived corrupt ({exc})") from exc
        jobs.put(key, None)
        return target

    return retry_call(submit_and_download, what=what, policy=policy, classify_error=classify_cds)
