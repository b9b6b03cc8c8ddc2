"""Planning the daily run: which days are ready, which wait and why, which must be redone.

:func:`plan_daily` polls each operational source and picks every day after the last completed
analysis whose *required* inputs (ERA5 and MSWEP of the day) are available at the providers.
SMAP is optional: a day without it is a forecast-only day, not a failure. A day whose inputs
changed since it was computed (a provisional input became final, an MSWEP NRT file was revised)
is *stale* (:func:`stale_days`): once its fetch is done, the daily run steps from the first
stale day (:func:`first_day_to_run`), so the chain never keeps a day computed from inputs that
have since been replaced — including those the run's own fetch replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from smda.errors import PermanentError, SmdaError
from smda.ingest.sources import OPERATIONAL, get_source
from smda.ops.runtime import Runtime
from smda.storage.inputs import input_versions

__all__ = [
    "REQUIRED",
    "DailyPlan",
    "PollError",
    "first_day_to_run",
    "history_days",
    "plan_daily",
    "stale_days",
    "stale_from",
]

REQUIRED = ("era5", "mswep")
"""Sources without which a day cannot be run (SMAP is optional)."""


@dataclass(frozen=True)
class PollError:
    """Why polling a source failed: the error's kind (its class, e.g. ``CredentialsError``),
    its message, and whether retrying can help (a rejected key or licence cannot)."""

    kind: str
    message: str
    permanent: bool

    @classmethod
    def of(cls, exc: SmdaError) -> PollError:
        return cls(type(exc).__name__, str(exc), isinstance(exc, PermanentError))


@dataclass(frozen=True)
class DailyPlan:
    """What the daily run will do.

    Attributes
    ----------
    last_completed:
        Last day of the state chain (None: empty chain, the first day starts cold).
    ready:
        Days to run, in order: after ``last_completed`` (or the newest ready day for an empty
        chain), up to the newest day whose required inputs are available.
    waiting:
        Source → why the next day cannot run yet (not yet published, provider error).
    newest:
        Newest day available per operational source (None when unknown).
    reprocess_from:
        First chain day whose inputs changed since it was computed (e.g. ERA5T → ERA5), or None.
    errors:
        Source → why polling it failed (those sources are also in ``waiting``).
    """

    last_completed: date | None
    ready: list[date]
    waiting: dict[str, str]
    newest: dict[str, date | None]
    reprocess_from: date | None = None
    errors: dict[str, PollError] = field(default_factory=dict)

    @property
    def refused(self) -> dict[str, str]:
        """Sources whose provider refused smda (permanent errors): source → what to do."""
        return {s: e.message for s, e in self.errors.items() if e.permanent}

    def describe(self) -> str:
        days = (
            f"{len(self.ready)} day(s) {self.ready[0]} … {self.ready[-1]}"
            if self.ready
            else "no day"
        )
        waiting = "; ".join(f"{k}: {v}" for k, v in self.waiting.items()) or "nothing"
        return f"last analysis {self.last_completed or 'none'}; ready {days}; waiting on {waiting}"


def plan_daily(rt: Runtime, *, max_days: int = 60) -> DailyPlan:
    """Poll the operational sources and pick the days to run (module docstring, step 1).

    ``max_days`` bounds a catch-up: older gaps are left to :func:`backfill_days`.
    """
    newest: dict[str, date | None] = {}
    waiting: dict[str, str] = {}
    errors: dict[str, PollError] = {}
    for name in OPERATIONAL:
        try:
            newest[name] = get_source(name).newest_available(rt.ctx)
        except SmdaError as exc:
            newest[name] = None
            waiting[name] = f"provider error: {exc}"
            errors[name] = PollError.of(exc)
    required = [newest[n] for n in REQUIRED]
    last = rt.chain.last()
    if any(d is None for d in required):
        return DailyPlan(last, [], waiting or {"inputs": "unknown"}, newest, errors=errors)
    ready_to = min(d for d in required if d is not None)
    first = last + timedelta(days=1) if last else ready_to
    first = max(first, ready_to - timedelta(days=max_days - 1))
    ready = [first + timedelta(days=i) for i in range((ready_to - first).days + 1)]
    nxt = (ready[-1] if ready else (last or ready_to)) + timedelta(days=1)
    for name in REQUIRED:
        day = newest[name]
        if day is not None and day < nxt:
            waiting.setdefault(name, f"{nxt} not yet published (newest {day})")
    smap = newest.get("smap")
    if ready and (smap is None or smap < ready[-1]):
        waiting.setdefault("smap", f"newest {smap}: later days run forecast-only")
    return DailyPlan(last, ready, waiting, newest, stale_from(rt), errors)


def stale_days(rt: Runtime, *, lookback: int = 90) -> list[date]:
    """Chain days of the last ``lookback`` days whose inputs changed since they were computed."""
    history = history_days(rt)
    out = []
    for day in rt.chain.days()[-lookback:]:
        recorded = rt.chain.provenance(day).get("inputs")
        if recorded is not None and recorded != input_versions(rt.store, day, history):
            out.append(day)
    return out


def stale_from(rt: Runtime) -> date | None:
    """The first stale day (:func:`stale_days`), or None."""
    if not rt.chain.days():
        return None
    try:
        stale = stale_days(rt)
    except SmdaError:
        return None
    return stale[0] if stale else None


def first_day_to_run(rt: Runtime, plan: DailyPlan) -> date:
    """The first day the daily run steps, asked *after* fetching the ready days' inputs.

    The first ready day, or an earlier chain day whose inputs changed since it was computed:
    already at planning (``plan.reprocess_from``), or by this run's fetch — which re-fetches
    the provisional days of the ready days' inputs (MSWEP NRT revisions of the antecedent
    window, ERA5T → ERA5), so the plan cannot know them yet. Stepping from it recomputes the
    stale days and the days after them in order; days whose inputs did not change are skipped.

    Raises
    ------
    ValueError
        If the plan has no ready day (there is nothing to run).
    """
    if not plan.ready:
        raise ValueError("the plan has no ready day: nothing to run")
    stale = [d for d in (plan.reprocess_from, stale_from(rt)) if d is not None]
    return min([plan.ready[0], *stale])


def history_days(rt: Runtime) -> int:
    """Days of precipitation history the current model needs (30 without a model)."""
    version = rt.registry.current_version()
    if version is None:
        return 30
    return rt.registry.load(version).spec.history_days
