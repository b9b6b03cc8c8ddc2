"""How a run ended, why, and what the operator should do (one rule for the CLI and the flows).

A run ends in one of five states (:data:`RunStatus`):

=============  =========  =====================================================================
status         exit code  meaning
=============  =========  =====================================================================
``completed``  0          every ready day was run (possibly none new: nothing to do)
``waiting``    75         a required input is not published yet; the next run picks it up
``failed``     1          a provider refused smda (rejected key, licence, EULA), or inputs the
                          providers announced could not be fetched after the retries, or a bug
``crashed``    1          the process died (Prefect's *Crashed*: killed, out of memory)
``cancelled``  1          an operator cancelled the run
``busy``       73         another process writes the region (one writer per region,
                          :mod:`smda.storage.locks`); it did not finish within the lock timeout
=============  =========  =====================================================================

75 is ``EX_TEMPFAIL`` of ``sysexits.h``: "try again later", which is what a waiting run means to
cron or a shell script. A *transient* provider error during polling (a 5xx after the retries,
a refused connection) is waiting, too: the provider is down, smda is not broken, and the source
health metrics say so (:mod:`smda.ops.health`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from smda.errors import MissingInputs
from smda.ingest.fetch import IngestReport
from smda.ops.plan import DailyPlan

__all__ = ["EXIT_CODES", "RUN_STATUSES", "RunOutcome", "RunStatus", "daily_outcome"]

RunStatus = Literal["completed", "waiting", "failed", "crashed", "cancelled", "busy"]
"""Final status of a run."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

EXIT_CODES: Mapping[RunStatus, int] = {
    "completed": 0,
    "waiting": 75,
    "failed": 1,
    "crashed": 1,
    "cancelled": 1,
    "busy": 73,
}
"""Exit code of ``smda run`` / ``smda backfill`` per final status."""

ADVICE: Mapping[RunStatus, str] = {
    "completed": "Nothing to do.",
    "waiting": (
        "Nothing to do: the next scheduled run picks the day up once the provider publishes it. "
        "If a source waits beyond its usual latency (ERA5T about 5 days, SMAP 2, MSWEP NRT 1), "
        "check the provider's service status (`smda status` shows what is staged)."
    ),
    "failed": (
        "Fix what the reason names (a rejected key or an unaccepted licence: the credentials "
        "live in the worker's environment, deployments/README.md), then run again: the days "
        "missed are caught up in order. For any other error the run's logs hold the traceback."
    ),
    "crashed": (
        "The process died (killed, out of memory, worker lost): check the worker's logs and "
        "memory, then run again; the chain resumes at the first day not written."
    ),
    "cancelled": "Run the deployment again when wanted; the chain resumes where it stopped.",
    "busy": (
        "Another run writes this region (the reason names it). Nothing to do if it is a backfill "
        "or a scheduled run: the next run catches up. If that process is stuck, stop it; a "
        "killed writer releases its lock at once."
    ),
}
"""What to do after a run, per final status (shown by the CLI and in the run's summary)."""


@dataclass(frozen=True)
class RunOutcome:
    """The final status of a run and, unless it completed, why (a sentence an operator can act
    on)."""

    status: RunStatus
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {self.status!r}; valid: {RUN_STATUSES}")

    @property
    def exit_code(self) -> int:
        """The process exit code of a CLI run that ended so (:data:`EXIT_CODES`)."""
        return EXIT_CODES[self.status]

    @property
    def advice(self) -> str:
        """What the operator should do about a run that ended so."""
        return ADVICE[self.status]

    def describe(self) -> str:
        """``status: reason`` (or the status alone)."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


def daily_outcome(
    plan: DailyPlan,
    report: IngestReport | None = None,
    missing: MissingInputs | None = None,
) -> RunOutcome:
    """The outcome of a daily run from its plan, its fetch report and the first day it could not
    run (``missing``; None when every ready day ran).

    A provider that refused smda during polling fails the run even when other days could be
    run (they are kept): nothing gets better until an operator acts, and a Waiting run would hide
    it. Inputs that could not be fetched fail it when they stopped the cycle.
    """
    if plan.refused:
        return RunOutcome("failed", "; ".join(plan.refused.values()))
    if missing is not None:
        if report is not None and not report.ok:
            return RunOutcome("failed", f"{failed_fetches(report)} — stopped at: {missing}")
        return RunOutcome("waiting", f"waiting for inputs: {missing}")
    if not plan.ready:
        return RunOutcome("waiting", f"waiting for inputs: {plan.describe()}")
    return RunOutcome("completed")


def failed_fetches(report: IngestReport) -> str:
    """One line on the input days that failed to fetch (the first five)."""
    failed = report.by_status("failed")
    shown = "; ".join(f"{o.source} {o.day}: {o.reason}" for o in failed[:5])
    return f"{len(failed)} input day(s) failed to fetch: {shown}"
