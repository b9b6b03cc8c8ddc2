"""A backfill publishes day D while D+1 steps (:mod:`smda.ops.overlap`): the same bytes, order
and errors as running the days one by one."""

from __future__ import annotations

import shutil
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from ops_runtime import LAST, RUN, digests, runtime_for

import smda.ops.days as days_module
from smda.ops import DayRun, Runtime, backfill_days, run_day
from smda.ops.overlap import PublishAhead
from smda_twin.world import World

MIDDLE = RUN + timedelta(days=2)


class PublishFailed(OSError):
    """The disk failing under one day's publish."""


def _range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_a_backfill_writes_the_bytes_of_running_its_days_one_by_one(
    rt: Runtime, template: Path, world: World, tmp_path: Path
) -> None:
    seen: list[date] = []
    runs = backfill_days(rt, RUN, LAST, progress=lambda run: seen.append(run.day))
    shutil.copytree(template, tmp_path / "serial")
    serial = runtime_for(tmp_path / "serial", world)
    one_by_one = [run_day(serial, day) for day in _range(RUN, LAST)]
    assert seen == [r.day for r in runs] == _range(RUN, LAST)
    assert [(r.status, r.n_obs, r.cog is not None) for r in runs] == [
        (r.status, r.n_obs, r.cog is not None) for r in one_by_one
    ]
    assert digests(rt) == digests(serial)


def test_the_next_day_steps_while_the_day_before_publishes(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish of RUN waits until RUN+1 has started stepping: with no overlap it would
    wait in vain (and fail), so the backfill succeeding shows the two ran together."""
    stepping = threading.Event()
    step_day, publish = days_module._step_day, rt.publisher.publish

    def step_and_signal(rt_: Runtime, day: date, *args: Any) -> Any:
        if day == RUN + timedelta(days=1):
            stepping.set()
        return step_day(rt_, day, *args)

    def publish_once_next_steps(day: date, *args: Any) -> Any:
        if day == RUN and not stepping.wait(timeout=60):
            raise AssertionError("RUN+1 did not step while RUN was publishing")
        return publish(day, *args)

    monkeypatch.setattr(days_module, "_step_day", step_and_signal)
    monkeypatch.setattr(rt.publisher, "publish", publish_once_next_steps)
    runs = backfill_days(rt, RUN, RUN + timedelta(days=2))
    assert len(runs) == 3 and all(r.status != "skipped" for r in runs)


def test_a_failed_publish_stops_the_chain_where_the_serial_run_stops_and_a_rerun_repairs_it(
    rt: Runtime, template: Path, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(template, tmp_path / "whole")
    whole = runtime_for(tmp_path / "whole", world)
    backfill_days(whole, RUN, LAST)
    publish = rt.publisher.publish

    def failing(day: date, *args: Any) -> Any:
        if day == MIDDLE:
            raise PublishFailed(f"disk full while publishing {day}")
        return publish(day, *args)

    monkeypatch.setattr(rt.publisher, "publish", failing)
    seen: list[DayRun] = []
    with pytest.raises(PublishFailed, match="2015-06-13"):
        backfill_days(rt, RUN, LAST, progress=seen.append)
    assert [r.day for r in seen] == _range(RUN, MIDDLE - timedelta(days=1))
    assert rt.chain.days() == _range(RUN, MIDDLE), "the day after the failure is not committed"
    assert rt.publisher.published_days() == _range(RUN, MIDDLE - timedelta(days=1))
    assert not rt.publisher.cog_path(MIDDLE).exists()

    monkeypatch.setattr(rt.publisher, "publish", publish)
    again = backfill_days(rt, RUN, LAST)
    assert [r.status for r in again][: len(seen) + 1] == ["skipped"] * (len(seen) + 1)
    assert digests(rt) == digests(whole)


def test_an_error_in_a_step_reports_the_day_in_flight_published_whole(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_day = days_module._step_day

    def step_failing(rt_: Runtime, day: date, *args: Any) -> Any:
        if day == MIDDLE:
            raise KeyboardInterrupt  # Ctrl-C while MIDDLE steps
        return step_day(rt_, day, *args)

    monkeypatch.setattr(days_module, "_step_day", step_failing)
    seen: list[date] = []
    with pytest.raises(KeyboardInterrupt):
        backfill_days(rt, RUN, LAST, progress=lambda run: seen.append(run.day))
    before = MIDDLE - timedelta(days=1)
    assert seen == _range(RUN, before)
    assert rt.chain.days() == _range(RUN, before)
    assert rt.publisher.published_days() == _range(RUN, before)
    assert rt.publisher.problem(before) is None, "the day in flight was published whole"


def test_publish_ahead_delivers_in_order_and_raises_a_failed_publish_first() -> None:
    got: list[int] = []
    with PublishAhead[int](got.append) as ahead:
        for i in range(4):
            ahead.submit(lambda i=i: i)  # type: ignore[misc]
    assert got == [0, 1, 2, 3]

    def fails() -> int:
        raise PublishFailed("publish of day 1")

    with pytest.raises(PublishFailed) as raised, PublishAhead[int](got.append) as ahead:
        ahead.submit(fails)
        raise ValueError("the step of day 2")
    assert isinstance(raised.value.__cause__, ValueError)
