"""Keeping the state chain whole after a backfill: the later days a re-run invalidated, and a
day after the range that was not stepped from it (:func:`mend_chain`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from smda.errors import MalformedFile
from smda.ops.dayrun import DayRun
from smda.ops.runtime import Runtime

__all__ = ["broken_link", "days_to_recompute", "mend_chain"]


def days_to_recompute(runs: Sequence[DayRun], last: date) -> list[date]:
    """The days after ``last`` that the re-runs among ``runs`` invalidated, in order: a backfill
    of ``… last`` recomputes them (the chain was whole up to the last of them)."""
    return sorted({d for run in runs for d in run.invalidated if d > last})


def mend_chain(rt: Runtime, runs: list[DayRun], end: date, one: Callable[[date], object]) -> None:
    """After a backfill of … ``end`` (``runs``): step with ``one`` the later days a re-run
    invalidated, and the chain after the range when it was not stepped from it."""
    for day in days_to_recompute(runs, end):
        one(day)
    after = max(r.day for r in runs) + timedelta(days=1)
    if broken_link(rt, after):  # stepped from another state (a cold start, another writer)
        done = len(runs)
        one(after)
        for day in days_to_recompute(runs[done:], after):
            one(day)


def broken_link(rt: Runtime, day: date) -> bool:
    """Whether the chain holds ``day`` and the day before, but ``day`` was not stepped from
    that state: a cold start, or a ``state_before`` digest that differs (days written before
    digests were recorded count as linked). A backfill that fills the days before such a day
    recomputes it, and what follows; ``smda verify`` reports it.
    """
    before = day - timedelta(days=1)
    if not (rt.chain.has(day) and rt.chain.has(before)):
        return False
    try:
        prov, digest = rt.chain.provenance(day), rt.chain.digest(before)
    except MalformedFile:  # a corrupt day: repaired when read
        return False
    if prov.get("state_origin") != "chain":
        return True
    return "state_before" in prov and prov["state_before"] != digest
