"""Running days: forecast, nudge, persist and publish one day; backfill a range in order.

:func:`run_day` steps the model from the state of D−1 (the analysis in the state chain),
nudges toward SMAP, persists the analysis with its provenance and publishes COG + STAC.
A day whose state already exists with the same provenance (model version, input versions,
gain, code version) is skipped: reruns are idempotent and a crashed backfill resumes where it
stopped. A day re-run with other inputs (a provisional input became final, a new model)
replaces its state and invalidates the later days of the chain; :func:`days_to_recompute`
says which of them a backfill (the CLI's :func:`backfill_days` and the backfill flow alike)
must then recompute to keep the chain whole.

An empty chain starts cold: the model climatology of the day before the spin-up window,
cycled (with nudging) through ``spinup_days`` days whose results are not stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import xarray as xr

from smda import __version__
from smda.errors import MalformedFile, SmdaError
from smda.ops.dayrun import DayRun, analysis_sd, computed_run, round_or_none
from smda.ops.mending import broken_link, days_to_recompute, mend_chain
from smda.ops.overlap import PublishAhead
from smda.ops.readahead import ReadAhead
from smda.ops.runtime import Runtime
from smda.science.bundle import ModelBundle, Predict
from smda.science.cycle import CycleResult, DayInputs, cold_start, step
from smda.storage.chain import StateMissing
from smda.storage.inputs import (
    MissingInputs,
    check_inputs,
    day_inputs,
    input_versions,
    missing_inputs,
    missing_message,
)
from smda.storage.integrity import note_repair

__all__ = [
    "ChainGap",
    "DayRun",
    "backfill_days",
    "broken_link",
    "commit_day",
    "days_to_recompute",
    "mend_chain",
    "provenance",
    "provenance_of",
    "repair_day",
    "round_or_none",
    "run_day",
    "same_provenance",
    "state_before",
]

LOG = logging.getLogger(__name__)


class ChainGap(SmdaError):
    """The state of the day before is missing while the chain has earlier days."""


def provenance(rt: Runtime, day: date, bundle: ModelBundle) -> dict[str, Any]:
    """What the analysis of ``day`` is made of (deterministic: no wall-clock times)."""
    inputs = input_versions(rt.store, day, bundle.spec.history_days)
    return {
        "day": day.isoformat(),
        "region": rt.region,
        "model_version": bundle.version,
        "gain": "model" if rt.gain is None else rt.gain,
        "code_version": __version__,
        "inputs": inputs,
    }


def state_before(rt: Runtime, day: date, bundle: ModelBundle, predict: Predict) -> Any:
    """The state of D−1: from the chain, or a cold start."""
    before = day - timedelta(days=1)
    if rt.chain.has(before):
        try:
            return rt.chain.state(before)
        except MalformedFile as exc:
            repair_day(rt, before, why=str(exc), bundle=bundle, predict=predict)
            return rt.chain.state(before)
    earlier = [d for d in rt.chain.days() if d < day]
    if earlier:
        raise ChainGap(
            f"the state of {before} is missing but the chain has {earlier[-1]}: run "
            f"`smda backfill --start {earlier[-1] + timedelta(days=1)} --end {day}`"
        )
    n = rt.settings.spinup_days
    history = bundle.spec.history_days
    days = [before - timedelta(days=n - 1 - i) for i in range(n)]
    missing: list[tuple[str, date | None]] = list(
        dict.fromkeys(m for d in days for m in missing_inputs(rt.store, d, history))
    )
    if missing:  # before any work, as when every spin-up day was loaded first
        raise MissingInputs(missing_message(rt.store, missing, f"spin-up of {day}"), missing)
    LOG.info("cold start of %s: spin-up %s … %s", day, days[0], days[-1])
    inputs = (day_inputs(rt.store, d, history) for d in days)  # one day in memory at a time
    return cold_start(inputs, bundle, n, gain=rt.gain, predict=predict).analysis


def _published(rt: Runtime, day: date) -> bool:
    pub = rt.publisher
    return all(pub.exists(path) for path in pub.files(day))


def provenance_of(rt: Runtime, day: date, bundle: ModelBundle) -> dict[str, Any]:
    """:func:`provenance` plus where the day's starting state comes from: the D−1 file's
    digest (the chain's hash link) or a cold start."""
    prov = provenance(rt, day, bundle)
    before = day - timedelta(days=1)
    if rt.chain.has(before):
        prov["state_origin"] = "chain"
        prov["state_before"] = _digest_or_repair(rt, before, bundle)
    else:
        prov["state_origin"] = f"cold start {rt.settings.spinup_days} d"
        prov["state_before"] = None
    return prov


def _digest_or_repair(rt: Runtime, day: date, bundle: ModelBundle) -> str:
    """The recorded digest of ``day``'s state; a day whose sidecar is unreadable is
    recomputed first (:func:`repair_day`)."""
    try:
        return rt.chain.digest(day)
    except MalformedFile as exc:
        repair_day(rt, day, why=str(exc), bundle=bundle)
        return rt.chain.digest(day)


def run_day(
    rt: Runtime,
    day: date,
    *,
    force: bool = False,
    bundle: ModelBundle | None = None,
    predict: Predict | None = None,
) -> DayRun:
    """Forecast, nudge, persist and publish ``day`` (module docstring, step 3).

    Skipped when the chain already holds ``day`` with the same provenance (unless ``force``).
    Replacing a day invalidates (and unpublishes) the later days of the chain. A corrupt state
    of D−1 is recomputed first (:func:`repair_day`). Holds the writer lock of the region's chain.

    Raises
    ------
    smda.storage.inputs.MissingInputs
        Required inputs of the day (or of the spin-up of a cold start) are not staged.
    smda.storage.integrity.CorruptFile
        A staged input does not match its ledger record (the next fetch stages it again).
    ChainGap
        The state of the day before is missing while the chain has earlier days.
    smda.storage.registry.NoModel
        No model is registered for the region.
    smda.storage.locks.RegionBusy
        Another process writes the chain and did not finish within ``SMDA_LOCK_TIMEOUT``.
    """
    with rt.chain_writer():
        return _run_day(rt, day, force=force, bundle=bundle, predict=predict)


def _run_day(
    rt: Runtime,
    day: date,
    *,
    force: bool,
    bundle: ModelBundle | None,
    predict: Predict | None,
) -> DayRun:
    t0 = time.perf_counter()
    bundle = bundle or rt.registry.current()
    return _compute_day(rt, day, force=force, bundle=bundle, predict=predict, started=t0)()


def _compute_day(
    rt: Runtime,
    day: date,
    *,
    force: bool,
    bundle: ModelBundle,
    predict: Predict | None,
    started: float,
    before_writing: Callable[[], None] = lambda: None,
    ahead: ReadAhead | None = None,
) -> Callable[[], DayRun]:
    """Step and commit ``day`` (or skip it, :func:`run_day`); return what finishes it: the
    publishing of the committed day, or the skipped day's :class:`DayRun`. ``before_writing``
    runs before anything is written (a backfill waits there for the previous day's publish);
    ``ahead`` gives the inputs read ahead and the analysis of D−1 kept in memory, reads the
    next day's inputs while this one steps and keeps this day's analysis."""
    prov = provenance_of(rt, day, bundle)
    if not force and rt.chain.has(day) and same_provenance(rt, day, prov, bundle):
        before_writing()
        if not _published(rt, day):  # a crash between committing the state and publishing
            _publish(rt, day, bundle)
        skipped = DayRun(
            day,
            "skipped",
            bundle.version,
            cog=rt.publisher.location(rt.publisher.cog_path(day)),
            item=rt.publisher.location(rt.publisher.item_path(day)),
            state=rt.chain.location(day),
        )
        return lambda: skipped
    inputs = state = None
    if ahead is not None:
        inputs, state = ahead.take(day, prov["inputs"]), ahead.state_before(day)
        ahead.start(day + timedelta(days=1))
    result = _step_day(rt, day, bundle, predict, prov, inputs, state)
    before_writing()
    finish = _persist(rt, result, bundle, prov, started=started)
    if ahead is not None:
        ahead.keep(day, result.analysis)
    return finish


def commit_day(
    rt: Runtime, result: CycleResult, bundle: ModelBundle, prov: dict[str, Any], *, started: float
) -> DayRun:
    """Persist and publish the computed ``result`` of a day with its provenance; a day that
    replaces one in the chain invalidates (and unpublishes) the later days. The caller holds
    the chain writer lock (:func:`run_day`, :func:`smda.ops.tiles.tiled_backfill`)."""
    return _persist(rt, result, bundle, prov, started=started)()


def _persist(
    rt: Runtime, result: CycleResult, bundle: ModelBundle, prov: dict[str, Any], *, started: float
) -> Callable[[], DayRun]:
    """Commit the state of ``result``'s day (:func:`commit_day`'s first half, in the caller's
    thread); return its publishing, which needs only the committed state (the second half)."""
    day = result.day
    invalidated = rt.chain.invalidate_after(day) if rt.chain.has(day) else []
    if invalidated:
        rt.publisher.unpublish(invalidated)
        LOG.info("%s re-run: invalidated %d later day(s)", day, len(invalidated))
    path = rt.chain.write(result, uncertainty=analysis_sd(result, bundle), provenance=prov)
    run = computed_run(result, bundle, state=path, invalidated=invalidated)

    def publish() -> DayRun:
        published = rt.publisher.publish(day, rt.chain.read(day), prov)
        seconds = time.perf_counter() - started
        return replace(run, seconds=seconds, cog=str(published.cog), item=str(published.item))

    return publish


def _step_day(
    rt: Runtime,
    day: date,
    bundle: ModelBundle,
    predict: Predict | None,
    prov: dict[str, Any],
    inputs: DayInputs | None = None,
    state: xr.DataArray | None = None,
) -> CycleResult:
    """Forecast and nudge ``day`` from ``state``, the analysis of D−1 (when not given: read,
    repaired or cold-started) with its staged ``inputs`` (read here when not given);
    ``prov["state_before"]`` is set to the digest of the D−1 actually stepped from."""
    if inputs is None:  # MissingInputs says what to fetch
        inputs = day_inputs(rt.store, day, bundle.spec.history_days)
    predict = predict or rt.registry.predictor(bundle)
    if state is None:
        state = state_before(rt, day, bundle, predict)
    if prov["state_origin"] == "chain":  # a repair of D−1 may have rewritten it
        prov["state_before"] = rt.chain.digest(day - timedelta(days=1))
    return step(state, inputs, bundle, gain=rt.gain, predict=predict)


def same_provenance(rt: Runtime, day: date, prov: dict[str, Any], bundle: ModelBundle) -> bool:
    """Whether ``day`` was committed with ``prov`` (an unreadable sidecar: repaired first)."""
    try:
        return rt.chain.same_provenance(day, prov)
    except MalformedFile as exc:
        repair_day(rt, day, why=str(exc), bundle=bundle)
        return rt.chain.same_provenance(day, prov)


def _publish(rt: Runtime, day: date, bundle: ModelBundle) -> None:
    """Publish the committed state of ``day`` (recomputed first when it is corrupt)."""
    try:
        state = rt.chain.read(day)
    except MalformedFile as exc:
        repair_day(rt, day, why=str(exc), bundle=bundle)
        return
    rt.publisher.publish(day, state, rt.chain.provenance(day))


def repair_day(
    rt: Runtime,
    day: date,
    *,
    why: str,
    bundle: ModelBundle | None = None,
    predict: Predict | None = None,
) -> DayRun:
    """Recompute a committed day whose state file or sidecar is corrupt, from its inputs and
    its D−1 (itself repaired first when corrupt), and publish it again.

    Computing is deterministic: with the inputs and model it was made with, the day comes back
    byte-identical and the later days stay valid (their ``state_before`` still matches). When
    the bytes differ (other inputs or model since), the later days are invalidated, as a re-run
    does, and the next backfill recomputes them. Logged and counted (``smda_repairs``).

    Raises
    ------
    smda.storage.inputs.MissingInputs
        The day's inputs are no longer staged: fetch them, then repair again.
    """
    note_repair("state", f"state of {day}: {why}; recomputing it from its inputs")
    with rt.chain_writer():
        bundle = bundle or rt.registry.current()
        try:
            recorded: str | None = rt.chain.digest(day)
        except (MalformedFile, StateMissing):
            recorded = None
        prov = provenance_of(rt, day, bundle)
        result = _step_day(rt, day, bundle, predict, prov)
        path = rt.chain.write(result, uncertainty=analysis_sd(result, bundle), provenance=prov)
        if rt.chain.digest(day) != recorded:
            later = rt.chain.invalidate_after(day)
            if later:
                rt.publisher.unpublish(later)
                LOG.warning(
                    "repaired %s differs from its record: %d later day(s) invalidated",
                    day,
                    len(later),
                )
        published = rt.publisher.publish(day, rt.chain.read(day), prov)
        return DayRun(
            day,
            "forecast_only" if result.forecast_only else "analysis",
            bundle.version,
            cog=str(published.cog),
            item=str(published.item),
            state=path,
        )


def backfill_days(
    rt: Runtime,
    start: date,
    end: date,
    *,
    force: bool = False,
    progress: Callable[[DayRun], None] | None = None,
    mend: bool = True,
) -> list[DayRun]:
    """Step ``start`` … ``end`` in order (inputs must be staged: :func:`smda.ops.fetch.fetch_days`),
    then the later days a re-run invalidated (:func:`days_to_recompute`), and the chain after
    the range when it was not stepped from it (:func:`broken_link`) — unless not ``mend``: a
    caller stepping a longer range in blocks mends once, after the last (the backfill flow).

    Days already in the chain with the same provenance are skipped, so an interrupted backfill
    resumes where it stopped and gives the same bytes as an uninterrupted one. With ``force`` every
    day of the range is recomputed; the days after ``end`` that this invalidates are recomputed
    too (without ``force``), so the chain stays whole — as the backfill flow does.

    Each day is published on a background thread while the next one steps
    (:mod:`smda.ops.overlap`): the same bytes, commits and ``progress`` calls in the same order,
    and the same error on a failed publish (the day after it is stepped but not committed).
    The next day's inputs are read on another while a day steps, and each day steps from the
    analysis of the day before kept in memory (:mod:`smda.ops.readahead`).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    with rt.chain_writer():
        bundle = rt.registry.current()
        predict = rt.registry.predictor(bundle)
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        if force:  # every input first: a forced run must not withdraw days it cannot redo
            later = [d for d in rt.chain.days() if d > end]
            check_inputs(rt.store, [*days, *later], bundle.spec.history_days)
        runs: list[DayRun] = []

        def done(run: DayRun) -> None:
            runs.append(run)
            if progress is not None:
                progress(run)

        with (
            PublishAhead(done) as ahead,  # day D publishes while D+1 steps
            ReadAhead(rt.store, bundle.spec.history_days, until=end) as reads,
        ):

            def one(day: date, *, forced: bool) -> None:
                started = time.perf_counter()
                finish = _compute_day(
                    rt,
                    day,
                    force=forced,
                    bundle=bundle,
                    predict=predict,
                    started=started,
                    before_writing=ahead.drain,
                    ahead=reads,
                )
                ahead.submit(finish)

            def mended(day: date) -> None:  # mending reads the runs as they come
                one(day, forced=False)
                ahead.drain()

            for day in days:
                one(day, forced=force)
            ahead.drain()
            if mend:
                reads.until = None  # mending steps the invalidated days after ``end`` in order
                mend_chain(rt, runs, end, mended)
        return runs
