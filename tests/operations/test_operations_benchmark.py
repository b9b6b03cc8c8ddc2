"""``python -m benchmarks operations``: its timing hooks time what a day of ``run_day`` and of
``backfill_days`` really calls (a renamed function would leave a part at zero or fail)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from ops_runtime import RUN

from benchmarks.operations import PARTS, _floor_child, _instrument, _Parts, main
from smda.ops import DayRun, Runtime, backfill_days, run_day
from smda_twin.world import World


def test_every_part_of_a_run_day_and_of_backfilled_days_is_timed(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _instrument(rt, monkeypatch.setattr)
    first = run_day(rt, RUN)
    days = {RUN: parts.take(RUN, first.seconds)}

    def progress(run: DayRun) -> None:
        days[run.day] = parts.take(run.day, run.seconds)

    runs = backfill_days(rt, RUN + timedelta(days=1), RUN + timedelta(days=2), progress=progress)

    assert [r.status for r in (first, *runs)] == ["analysis"] * 3
    assert sorted(days) == [RUN + timedelta(days=i) for i in range(3)]
    for day, timed in days.items():
        # the cold start's spin-up reads inputs inside state_before: counted there only
        zero = {"model"} if day > RUN else set()
        if day > RUN + timedelta(days=1):  # the backfill's later days step from its analysis kept
            zero.add("state D-1")
        missing = [p for p in PARTS if p not in zero and timed[p] <= 0]
        assert not missing, f"{day}: parts never timed: {missing}"
        assert sum(timed[p] for p in PARTS) - timed["ahead"] <= timed["total"] + 1e-6, timed
    assert [days[d]["ahead"] > 0 for d in sorted(days)] == [False, False, True], (
        "the backfill's second day is read ahead while its first steps"
    )


def test_a_read_ahead_still_in_flight_when_its_day_opens_counts_toward_that_day() -> None:
    parts, entered, release = _Parts(), threading.Event(), threading.Event()
    day = RUN + timedelta(days=1)

    def read(store: object, the_day: object) -> None:
        entered.set()
        release.wait(timeout=60)

    reader = threading.Thread(target=parts.wrap("inputs", read, ahead=True), args=(None, day))
    reader.start()
    assert entered.wait(timeout=60)
    parts.new_day(lambda rt, the_day: None)(None, day)  # the day opens, its read in flight
    release.set()
    reader.join()
    timed = parts.take(day, total=1.0)
    assert timed["inputs"] > 0 and timed["inputs"] == timed["ahead"], timed


def test_the_floor_reads_a_days_staged_inputs_and_traverses_the_trees_once(
    rt: Runtime, world: World
) -> None:
    b = world.spec.region
    region = f"{b.west:g},{b.south:g},{b.east:g},{b.north:g}"
    floor = _floor_child(str(rt.settings.data_dir), region, (RUN + timedelta(days=1)).isoformat())
    assert floor["read_s"] > 0 and floor["traverse_s"] > 0, floor


def test_an_unknown_option_or_a_missing_model_file_is_refused_before_any_staging(
    tmp_path: Path,
) -> None:
    with pytest.raises(SystemExit, match="unknown option"):
        main(["--quick"])
    with pytest.raises(SystemExit, match="no such file"):
        main([f"--model={tmp_path / 'absent.txt'}"])
