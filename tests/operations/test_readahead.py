"""A backfill reads day D+1's inputs while D steps (:mod:`smda.ops.readahead`): only for days it
steps, never beyond its range, and with the serial loop's bytes and errors when the store
changes under it."""

from __future__ import annotations

import shutil
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from ops_runtime import LAST, RUN, digests, runtime_for

import smda.ops.days as days_module
from smda.ops import Runtime, backfill_days, run_day
from smda.ops.readahead import ReadAhead
from smda.storage.inputs import MissingInputs, day_inputs, input_versions
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store
from smda_twin.world import World

NEXT = RUN + timedelta(days=1)


class Recording(ReadAhead):
    """A :class:`ReadAhead` that records the days it reads and hands over."""

    read: list[date]
    taken: list[date]

    def _read(self, day: date) -> Any:
        Recording.read.append(day)
        return super()._read(day)

    def take(self, day: date, versions: Any) -> Any:
        inputs = super().take(day, versions)
        if inputs is not None:
            Recording.taken.append(day)
        return inputs


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> type[Recording]:
    Recording.read, Recording.taken = [], []
    monkeypatch.setattr(days_module, "ReadAhead", Recording)
    return Recording


def _range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _restage_warmer(store: Store, day: date) -> None:
    """Stage ERA5 of ``day`` again with 2 K warmer air (a provider's corrected file)."""
    with HDF5_IO, xr.open_dataset(store.staged_path("era5", day)) as ds:
        staged = ds.load()
    warmer = staged.assign(t2m_mean=staged["t2m_mean"] + np.float32(2.0))
    store.write_staged("era5", day, warmer.drop_attrs(deep=False), [])


def test_every_day_after_the_first_steps_from_inputs_read_ahead_within_the_range(
    rt: Runtime, recording: type[Recording]
) -> None:
    backfill_days(rt, RUN, LAST)
    assert recording.read == _range(NEXT, LAST), "read ahead: each next day, none after LAST"
    assert recording.taken == _range(NEXT, LAST)


def test_each_day_after_the_first_steps_from_the_analysis_kept_not_read_back(
    rt: Runtime, template: Path, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_back: list[date] = []
    state = rt.chain.state

    def spied(day: date) -> Any:
        read_back.append(day)
        return state(day)

    monkeypatch.setattr(rt.chain, "state", spied)
    backfill_days(rt, RUN, LAST)
    assert read_back == [], "every D−1 came from memory (RUN's from the cold start)"

    shutil.copytree(template, tmp_path / "serial")
    serial = runtime_for(tmp_path / "serial", world)
    for day in _range(RUN, LAST):
        run_day(serial, day)
    assert digests(rt) == digests(serial)


def test_a_resumed_backfill_reads_nothing_ahead_for_the_days_it_skips(
    rt: Runtime, recording: type[Recording]
) -> None:
    backfill_days(rt, RUN, LAST - timedelta(days=2))
    recording.read.clear()
    runs = backfill_days(rt, RUN, LAST)
    assert [r.status == "skipped" for r in runs] == [True] * 4 + [False] * 2
    assert recording.read == [LAST], "only the day after the first one stepped"


def test_inputs_restaged_while_they_were_read_ahead_are_read_again(
    rt: Runtime, template: Path, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NEXT's ERA5 is re-staged after its read ahead and before its provenance is taken: the
    day uses the new file, as a serial run over the re-staged store does."""
    restaged = threading.Event()

    class RestagingAfterRead(ReadAhead):
        def _read(self, day: date) -> Any:
            read = super()._read(day)
            if day == NEXT:
                _restage_warmer(rt.store, NEXT)
                restaged.set()
            return read

    provenance_of = days_module.provenance_of

    def after_restaging(rt_: Runtime, day: date, *args: Any) -> Any:
        if day == NEXT:
            assert restaged.wait(timeout=60)
        return provenance_of(rt_, day, *args)

    monkeypatch.setattr(days_module, "ReadAhead", RestagingAfterRead)
    monkeypatch.setattr(days_module, "provenance_of", after_restaging)
    backfill_days(rt, RUN, LAST)

    shutil.copytree(template, tmp_path / "serial")
    serial = runtime_for(tmp_path / "serial", world)
    _restage_warmer(serial.store, NEXT)
    for day in _range(RUN, LAST):
        run_day(serial, day)
    assert rt.chain.provenance(NEXT) == serial.chain.provenance(NEXT)
    assert digests(rt) == digests(serial)


def test_inputs_missing_when_read_ahead_fail_on_their_day_as_in_a_serial_run(
    rt: Runtime, template: Path, world: World, tmp_path: Path
) -> None:
    gap = RUN + timedelta(days=3)
    rt.store.discard("era5", gap)
    with pytest.raises(MissingInputs) as ahead:
        backfill_days(rt, RUN, LAST)
    assert rt.chain.days() == _range(RUN, gap - timedelta(days=1))

    shutil.copytree(template, tmp_path / "serial")
    serial = runtime_for(tmp_path / "serial", world)
    serial.store.discard("era5", gap)
    for day in _range(RUN, gap - timedelta(days=1)):
        run_day(serial, day)
    with pytest.raises(MissingInputs) as one_by_one:
        run_day(serial, gap)
    assert str(ahead.value) == str(one_by_one.value).replace(
        str(serial.store.root), str(rt.store.root)
    )


def test_read_ahead_hands_over_only_the_day_and_versions_it_read(rt: Runtime) -> None:
    history = rt.registry.current().spec.history_days
    versions = input_versions(rt.store, NEXT, history)
    with ReadAhead(rt.store, history) as ahead:
        ahead.start(NEXT)
        assert ahead.take(RUN, input_versions(rt.store, RUN, history)) is None, "another day"
        ahead.start(NEXT)
        inputs = ahead.take(NEXT, versions)
        assert inputs is not None
        expected = day_inputs(rt.store, NEXT, history)
        xr.testing.assert_identical(inputs.era5, expected.era5)
        xr.testing.assert_identical(inputs.precip, expected.precip)

        _restage_warmer(rt.store, NEXT)  # the provenance was taken before the file changed
        ahead.start(NEXT)
        assert ahead.take(NEXT, versions) is None
    with ReadAhead(rt.store, history, until=RUN) as ahead:
        ahead.start(NEXT)
        assert ahead.take(NEXT, versions) is None, "a day after `until` is not read"
