"""The backfill flow against the twin: parallel fetch, ordered stepping, resume, forced re-runs.

The range starts before the chain (a cold start with spin-up) and ends after the staged
history, so its last day is fetched from the twin. One uninterrupted run (on Dask, via
prefect-dask) is the reference the interrupted and the forced runs must reproduce byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import (
    HISTORY_END,
    REGION,
    SPINUP,
    artifacts_of,
    copy_data,
    hash_outputs,
    smda_environment,
    start_twin,
    today_for,
)
from prefect import flow
from prefect_dask.task_runners import DaskTaskRunner

import flows.tasks
from flows.backfill import Chunk, backfill, chunks, fetch_parallel
from flows.tasks import run_context
from smda.config import Settings, load_settings
from smda.ingest.fetch import DayOutcome, IngestReport
from smda.ops import DayRun, open_runtime

H = HISTORY_END
START, END = H - timedelta(days=3), H + timedelta(days=1)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
TODAY = today_for(END)
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Reference:
    """The uninterrupted backfill of ``START … END``."""

    data: Path
    runs: list[DayRun]
    hashes: dict[str, str]
    flow_run_id: Any


@pytest.fixture(scope="module")
def backfill_twin(
    tmp_path_factory: pytest.TempPathFactory, replicas: Path, prefect_api: str
) -> Iterator[Path]:
    """One twin (clock at ``TODAY``) for every backfill of this module; its endpoints file."""
    endpoints = tmp_path_factory.mktemp("backfill-twin") / "endpoints.json"
    twin = start_twin(endpoints, TODAY, replicas=replicas)
    yield endpoints
    twin.stop()


@pytest.fixture
def on_twin(
    backfill_twin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """``on_twin(template, outputs=True)``: a private copy of ``template`` (its state chain and
    products only with ``outputs``) and the ``SMDA_*`` environment for it and the module's
    twin."""

    def make(template: Path, *, outputs: bool = True) -> Path:
        data = copy_data(template, tmp_path / "data", outputs=outputs)
        for key, value in smda_environment(data, backfill_twin).items():
            monkeypatch.setenv(key, value)
        return data

    return make


@pytest.fixture(scope="module")
def uninterrupted(
    inputs_template: Path, tmp_path_factory: pytest.TempPathFactory, backfill_twin: Path
) -> Reference:
    """Backfill ``START … END`` on a copy of the inputs, with the Dask task runner."""
    data = copy_data(inputs_template, tmp_path_factory.mktemp("reference") / "data")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in smda_environment(data, backfill_twin).items():
            mp.setenv(key, value)
        on_dask = backfill.with_options(
            task_runner=DaskTaskRunner(
                cluster_kwargs={"n_workers": 1, "threads_per_worker": 3, "processes": False}
            )
        )
        state = on_dask(START, END, return_state=True)
    assert state.is_completed(), state.message
    return Reference(data, state.result(), hash_outputs(data), state.state_details.flow_run_id)


def test_backfill_fetches_the_range_and_steps_every_day_in_order(
    uninterrupted: Reference,
) -> None:
    runs = uninterrupted.runs
    assert [(r.day, r.status) for r in runs] == [(d, "analysis") for d in DAYS]
    settings = Settings(data_dir=uninterrupted.data, spinup_days=SPINUP)
    rt = open_runtime(settings, region=REGION, today=TODAY)
    assert rt.chain.days() == DAYS
    assert rt.chain.provenance(START)["state_origin"] == f"cold start {SPINUP} d"
    assert {rt.chain.provenance(d)["state_origin"] for d in DAYS[1:]} == {"chain"}
    for source in ("era5", "mswep", "smap"):  # the days after the history came from the twin
        assert set(DAYS) <= set(rt.store.staged_days(source))
    assert sorted(p for p in uninterrupted.hashes if p.endswith(".tif")) == sorted(
        f"products/{rt.region}/cog/{d:%Y}/smda_sm_{d:%Y%m%d}{suffix}.tif"
        for d in DAYS
        for suffix in ("", "_flags")
    )
    artifacts = artifacts_of(uninterrupted.flow_run_id)
    summary = artifacts["summary"].data
    assert "| era5 |" in summary and "fetched" in summary
    assert set(artifacts) == {"summary", "validation", "products"}


def test_killed_backfill_resumes_to_identical_bytes(
    uninterrupted: Reference, on_twin: Callable[..., Path], prefect_api: str, tmp_path: Path
) -> None:
    data = on_twin(uninterrupted.data, outputs=False)  # the inputs are staged, no state yet
    kill_day = START + timedelta(days=2)
    log = tmp_path / "crash.log"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    with log.open("w") as out:
        crashed = subprocess.run(
            [sys.executable, str(HERE / "crash_backfill.py"), str(START), str(END), str(kill_day)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=240,
            check=False,
        )
    assert crashed.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    rt = open_runtime(load_settings())  # the test is an edge: the monkeypatched SMDA_* settings
    assert rt.chain.days() == DAYS[:3]  # the killed day's state was committed …
    assert not rt.publisher.item_path(kill_day).exists()  # … but not published

    resumed = backfill(START, END, return_state=True)

    assert resumed.is_completed(), resumed.message
    statuses = [r.status for r in resumed.result()]
    assert statuses == ["skipped"] * 3 + ["analysis"] * (len(DAYS) - 3)
    assert hash_outputs(data) == uninterrupted.hashes


def test_the_flow_steps_in_blocks_of_days_with_the_uninterrupted_runs_bytes(
    uninterrupted: Reference, on_twin: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = on_twin(uninterrupted.data, outputs=False)  # the inputs are staged, no state yet
    blocks: list[tuple[date, date]] = []

    def step_days(run: Any, start: date, end: date, **kwargs: Any) -> list[DayRun]:
        blocks.append((start, end))
        return flows.tasks.step_days_task(run, start, end, **kwargs)

    monkeypatch.setattr("flows.backfill.STEP_BLOCK_DAYS", 2)
    monkeypatch.setattr("flows.backfill.step_days_task", step_days)
    state = backfill(START, END, fetch=False, return_state=True)

    assert state.is_completed(), state.message
    assert blocks == [(DAYS[0], DAYS[1]), (DAYS[2], DAYS[3]), (DAYS[4], DAYS[4])]
    assert [(r.day, r.status) for r in state.result()] == [(d, "analysis") for d in DAYS]
    assert hash_outputs(data) == uninterrupted.hashes


def test_a_tiled_backfill_flow_writes_the_uninterrupted_runs_bytes(
    uninterrupted: Reference, on_twin: Callable[..., Path]
) -> None:
    data = on_twin(uninterrupted.data, outputs=False)  # the inputs are staged, no state yet

    state = backfill(START, END, fetch=False, tile_cells=4, block_days=2, return_state=True)

    assert state.is_completed(), state.message
    assert [(r.day, r.status) for r in state.result()] == [(d, "analysis") for d in DAYS]
    assert hash_outputs(data) == uninterrupted.hashes


def test_forced_rerun_of_a_middle_day_invalidates_and_recomputes_the_later_days(
    uninterrupted: Reference, on_twin: Callable[..., Path]
) -> None:
    data = on_twin(uninterrupted.data)
    middle = START + timedelta(days=2)
    later = [d for d in DAYS if d > middle]
    states = data / "state"
    written = {p: p.stat().st_mtime_ns for p in states.rglob("*.nc")}

    state = backfill(middle, middle, force=True, fetch=False, return_state=True)

    assert state.is_completed(), state.message
    first, *rest = state.result()
    assert (first.day, first.status, first.invalidated) == (middle, "analysis", later)
    assert [(r.day, r.status) for r in rest] == [(d, "analysis") for d in later]
    rewritten = {p for p, mtime in written.items() if p.stat().st_mtime_ns != mtime}
    assert {p.name for p in rewritten} == {f"state_{d:%Y%m%d}.nc" for d in [middle, *later]}
    assert hash_outputs(data) == uninterrupted.hashes  # recomputed identically


def test_fetch_is_bounded_per_provider_and_ordered_per_source(
    monkeypatch: pytest.MonkeyPatch, prefect_api: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("SMDA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMDA_ENDPOINTS", raising=False)
    lock = threading.Lock()
    running: Counter[str] = Counter()
    peaks: Counter[str] = Counter()
    order: list[tuple[str, date]] = []

    def fake_fetch(rt: Any, days: Sequence[date], sources: Sequence[str]) -> IngestReport:
        [source] = sources
        provider = flows.tasks.provider_of(source)
        keys = (f"source:{source}", f"provider:{provider}")
        with lock:
            for key in keys:
                running[key] += 1
                peaks[key] = max(peaks[key], running[key])
            order.append((source, min(days)))
        time.sleep(0.2)
        with lock:
            for key in keys:
                running[key] -= 1
        return IngestReport([DayOutcome(source, d, "fetched") for d in days])

    monkeypatch.setattr(flows.tasks, "fetch_days", fake_fetch)
    days = [date(2024, 2, 28) + timedelta(days=i) for i in range(4)]  # Feb 28 … Mar 2
    work = chunks(days, ["era5", "era5land", "mswep", "smap", "gldas"])
    assert [c.days for c in work if c.source == "era5"] == [
        (date(2024, 2, 28), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 2)),
    ]

    @flow
    def fetch_all(work: list[Chunk], per_provider: int) -> IngestReport:
        return fetch_parallel(run_context(None), work, per_provider=per_provider)

    report = fetch_all(work, 2)

    assert len(report.outcomes) == 5 * len(days)
    assert peaks["provider:cds"] == 2  # era5 and era5land in parallel
    assert peaks["provider:earthdata"] == 2  # smap and gldas in parallel
    assert all(peaks[f"source:{s}"] == 1 for s in ("era5", "era5land", "mswep", "smap", "gldas"))
    for source in ("era5", "smap"):  # a source's months one after the other, in order
        starts = [d for s, d in order if s == source]
        assert starts == sorted(starts)

    peaks.clear()
    fetch_all(work, 1)
    assert peaks["provider:cds"] == 1 and peaks["provider:earthdata"] == 1
