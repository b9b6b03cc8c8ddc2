"""CDS requests through the real ``cdsapi`` client: one retry layer, a deadline, resumable jobs,
and results checked before they are kept.

``cdsapi`` waits for a job without any deadline, retries for hours by default and ignores
``Retry-After``. smda's client tries each request once (:func:`smda.ingest.clients.cds_client`)
so that :func:`~smda.ingest.retry.retry_call` is the only retry layer. smda submits the job
(``wait_until_complete=False``), polls it itself until an overall deadline, and remembers the job
id of a submitted request in the *job map* (``.cds-jobs.json`` beside the raw files), so the next
attempt or run resumes that job instead of queueing a duplicate. A job that failed is forgotten
(the request is submitted again); a poll that failed (a 503) is not a failed job.

The result is downloaded to a temporary sibling (an HTTP error keeps its status and
``Retry-After`` for the retry), and moved into the raw cache only when its size is the job's
and it passes ``check``. A result that fails the check is downloaded again, per the retry
policy (a transfer can go wrong). If it is still corrupt then, the job's result itself is: the
job id is dropped and the request submitted once more (a new job). If that job's result is
corrupt too, the provider is at fault (:class:`~smda.errors.ProviderFault`, naming the request
and what to report): nothing is kept, and the next run starts with a new job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smda.errors import (
    InvalidRequest,
    MalformedFile,
    NotYetAvailable,
    ProviderFault,
    SmdaError,
    TransientError,
)
from smda.ingest.clients import cds_client
from smda.ingest.retry import classify, retry_call
from smda.ingest.sources.base import IngestContext
from smda.storage.atomic import atomic_path
from smda.storage.store import JsonMap

__all__ = ["cds", "classify_cds", "request_hash", "retrieve"]

LOG = logging.getLogger(__name__)

#: jobs submitted per request and run when their results keep arriving corrupt
SUBMISSIONS = 2


class _CorruptResult(TransientError):
    """A downloaded result failed its check (retried: the next download may be intact)."""

    def __init__(self, what: str, job_id: str, problem: str) -> None:
        super().__init__(f"{what}: the result of CDS job {job_id} arrived corrupt ({problem})")
        self.job_id = job_id
        self.problem = problem


def request_hash(dataset: str, request: dict[str, Any]) -> str:
    text = json.dumps({"dataset": dataset, "request": request}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def classify_cds(exc: BaseException, what: str) -> SmdaError:
    """CDS-specific meanings of failed jobs and downloads, then the generic classification."""
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
    if isinstance(exc, AssertionError) and "size mismatch" in text:  # multiurl's size check
        return TransientError(f"{what}: the result download was incomplete ({text[:200]})")
    return classify(exc, what)


def cds(ctx: IngestContext) -> Any:
    """The run's ``cdsapi`` client: bounded retries and timeouts, and jobs submitted without
    waiting (smda polls them itself, with a deadline)."""

    def make() -> Any:
        client = cds_client(ctx.endpoints, timeout=60)
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
    """Submit (or resume) a CDS request and download its result to ``target`` atomically.

    ``what`` names the request in messages (source, days, dataset). ``deadline`` (seconds)
    bounds the wait for one job; ``check`` proves a downloaded result intact (raises
    :class:`~smda.errors.MalformedFile`). Raises :class:`~smda.errors.ProviderFault` when the
    results of :data:`SUBMISSIONS` jobs all stay corrupt (module docstring).
    """
    job = _Job(cds(ctx), JsonMap(target.parent / ".cds-jobs.json"), dataset, request, what)
    corrupt: list[_CorruptResult] = []
    for submission in range(1, SUBMISSIONS + 1):
        try:
            return retry_call(
                lambda: job.fetch(target, deadline=deadline, poll_max=poll_max, check=check),
                what=what,
                policy=ctx.policy,
                classify_error=classify_cds,
            )
        except TransientError as exc:
            if not isinstance(exc.__cause__, _CorruptResult):
                raise
            corrupt.append(exc.__cause__)
            job.forget()
            if submission < SUBMISSIONS:
                LOG.warning(
                    "%s, on every download: dropping the job, submitting the request again",
                    exc.__cause__,
                )
    jobs = ", ".join(c.job_id for c in corrupt)
    raise ProviderFault(
        f"{what}: the CDS's result for this request is corrupt (the provider's file, not the "
        f"transfer) — jobs {jobs} (submitted {len(corrupt)} times, each result downloaded up to "
        f"{ctx.policy.attempts} times; last problem: {corrupt[-1].problem}). Nothing was kept; "
        "the next run submits the request again. If it persists, report the request and the "
        "job ids to the CDS (https://support.ecmwf.int)"
    )


class _Job:
    """One request's CDS job: submitted or resumed through the job map, polled, downloaded."""

    def __init__(
        self, client: Any, jobs: JsonMap, dataset: str, request: dict[str, Any], what: str
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.key = request_hash(dataset, request)
        self.dataset = dataset
        self.request = request
        self.what = what

    def forget(self) -> None:
        """Drop the request's job id from the job map (the next attempt submits a new job)."""
        self.jobs.update({self.key: None})

    def fetch(
        self,
        target: Path,
        *,
        deadline: float,
        poll_max: float,
        check: Callable[[Path], object] | None,
    ) -> Path:
        """One attempt: resume or submit, wait for the result, download it and check it."""
        remote = self._resume() or self._submit()
        self._wait(remote, deadline, poll_max)
        results = remote.get_results()
        with atomic_path(target) as tmp:
            _download(results, tmp, self.what)
            if check is not None:
                try:
                    check(tmp)
                except MalformedFile as exc:
                    # keep the job id: the next attempt downloads the same result again
                    problem = str(exc).replace(str(tmp), target.name)
                    raise _CorruptResult(self.what, remote.request_id, problem) from exc
        self.jobs.update({self.key: None})
        return target

    def _resume(self) -> Any:
        job_id = self.jobs.load().get(self.key)
        if job_id is None:
            return None
        try:
            remote = self.client.client.get_remote(job_id)
        except Exception as exc:  # classified: a busy CDS is retried, a gone job resubmitted
            if isinstance(classify_cds(exc, self.what), TransientError):
                raise
            LOG.info("%s: CDS job %s is gone (%s); submitting again", self.what, job_id, exc)
            self.jobs.update({self.key: None})
            return None
        LOG.info("%s: resuming CDS job %s", self.what, job_id)
        return remote

    def _submit(self) -> Any:
        remote = self.client.retrieve(self.dataset, self.request)
        self.jobs.update({self.key: remote.request_id})
        return remote

    def _wait(self, remote: Any, deadline: float, poll_max: float) -> None:
        """Poll until the result is ready, at most ``deadline`` seconds (then the next attempt
        or run resumes the job)."""
        started, sleep = time.monotonic(), 1.0
        try:
            while not remote.results_ready:
                if time.monotonic() - started > deadline:
                    raise TransientError(
                        f"{self.what}: CDS job {remote.request_id} still queued after "
                        f"{deadline:.0f} s; the next run resumes it"
                    )
                time.sleep(sleep)
                sleep = min(sleep * 1.5, poll_max)
        except Exception as exc:
            # a failed (rejected, dismissed, gone) job is submitted again; a poll that failed
            # (a 503, a reset) is not a failed job: it is resumed
            failed = type(exc).__name__ == "ProcessingFailedError" or "job has failed" in str(exc)
            if failed or not isinstance(classify_cds(exc, self.what), TransientError):
                self.forget()
            raise


def _download(results: Any, tmp: Path, what: str) -> None:
    """Download a job's result to ``tmp`` in one try (as the client's ``Results.download``
    does, but an HTTP error is raised with its response: status and ``Retry-After``)."""
    import multiurl

    tmp.unlink(missing_ok=True)  # multiurl keeps an existing target
    multiurl.download(
        results.location,
        target=str(tmp),
        maximum_retries=0,
        stream=True,
        **results.request_options,
        **results.download_options,
    )
    if (size := tmp.stat().st_size) != results.content_length:
        raise TransientError(
            f"{what}: downloaded {size} of the result's {results.content_length} bytes"
        )
