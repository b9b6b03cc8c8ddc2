"""The daily flow against the twin, on Prefect's test server: a week of operations.

The chain holds the analyses up to ``HISTORY_END`` (H). One data directory and one twin live
through a sequence of scheduled runs (the twin's clock decides what the providers have
published; ERA5, the latest required input, lags 5 days)::

    1. clock at H+5: ERA5 of H+1 not published         → the run ends "Waiting"
    2. three days later (an outage: no run meanwhile)  → H+1, H+2, H+3 caught up in order
    3. again, same clock                               → "Waiting", nothing rewritten
    4. the backfill flow over the whole chain          → every day skipped, nothing rewritten
    5. SMAP falls 8 days behind, clock at H+9          → H+4 is a forecast-only day

Each test asserts one behaviour on what the sequence recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flow_helpers import (
    CHAIN,
    HISTORY_END,
    artifacts_of,
    copy_data,
    hash_outputs,
    runtime,
    smda_environment,
    start_twin,
    today_for,
)
from prefect.client.orchestration import get_client
from prometheus_client.parser import text_string_to_metric_families

from flows.backfill import backfill
from flows.daily import WAITING, daily
from smda.ops import Runtime, ValidationReport
from smda.ops.monitoring import textfile_name
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_FORECAST_ONLY, FLAG_LAND
from smda_twin.clock import Latencies

H = HISTORY_END
OUTAGE = [H + timedelta(days=i) for i in (1, 2, 3)]
NO_SMAP = H + timedelta(days=4)
LATE_SMAP = Latencies(smap=8)


@dataclass
class Week:
    """What the sequence of runs (module docstring) did: final states and output hashes."""

    data: Path
    states: dict[str, Any]
    hashes: dict[str, dict[str, str]]
    today: date

    def rt(self) -> Runtime:
        return runtime(self.data, self.today)


@pytest.fixture(scope="module")
def week(chain_template: Path, tmp_path_factory: pytest.TempPathFactory, replicas: Path) -> Week:
    data = copy_data(chain_template, tmp_path_factory.mktemp("week") / "data")
    endpoints = data.parent / "endpoints.json"
    twin = start_twin(endpoints, today_for(H), replicas=replicas)
    states: dict[str, Any] = {}
    hashes: dict[str, dict[str, str]] = {"start": hash_outputs(data)}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in smda_environment(data, endpoints).items():
                mp.setenv(key, value)
            states["nothing published"] = daily(return_state=True)
            hashes["nothing published"] = hash_outputs(data)
            twin.clock.advance(len(OUTAGE))
            states["after the outage"] = daily(return_state=True)
            hashes["after the outage"] = hash_outputs(data)
            states["again"] = daily(return_state=True)
            hashes["again"] = hash_outputs(data)
            states["backfill"] = backfill(CHAIN[0], OUTAGE[-1], return_state=True)
            hashes["backfill"] = hash_outputs(data)
            twin.clock.latencies = LATE_SMAP
            twin.clock.advance(1)
            states["smap late"] = daily(return_state=True)
            hashes["smap late"] = hash_outputs(data)
    finally:
        twin.stop()
    return Week(data, states, hashes, today_for(NO_SMAP))


def test_inputs_not_yet_published_end_the_run_waiting_not_failed(week: Week) -> None:
    state = week.states["nothing published"]

    assert state.is_completed() and state.name == WAITING
    assert state.message is not None
    assert "era5" in state.message and str(OUTAGE[0]) in state.message
    with get_client(sync_client=True) as client:  # the server holds the same final state
        stored = client.read_flow_run(state.state_details.flow_run_id).state
    assert stored is not None and stored.is_completed() and stored.name == WAITING
    assert week.hashes["nothing published"] == week.hashes["start"]
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "waiting" in summary and "era5" in summary


def test_the_next_run_catches_up_every_day_of_an_outage_in_order(week: Week) -> None:
    state = week.states["after the outage"]

    assert state.is_completed() and state.name == "Completed", state.message
    runs = state.result()
    assert [(r.day, r.status) for r in runs] == [(d, "analysis") for d in OUTAGE]
    rt = week.rt()
    for run in runs:  # each day stepped from the analysis of the day before, and published
        assert rt.chain.provenance(run.day)["state_origin"] == "chain"
        assert run.cog is not None and Path(run.cog).is_file()
        assert run.item is not None and Path(run.item).is_file()
        flags = np.asarray(rt.chain.read(run.day)["flags"].values)
        assert ((flags & FLAG_ASSIMILATED) > 0).any()
    text = (week.data / "metrics" / textfile_name("smda_daily", rt.region)).read_text()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    newest = rt.chain.last()  # the metrics of the module's last run (module docstring)
    assert newest is not None
    midnight = datetime(newest.year, newest.month, newest.day, tzinfo=UTC).timestamp()
    assert samples["smda_last_analysis_day_timestamp_seconds"] == midnight


def test_a_run_leaves_a_summary_a_validation_table_and_a_products_link(week: Week) -> None:
    artifacts = artifacts_of(week.states["after the outage"].state_details.flow_run_id)

    summary = artifacts["summary"].data
    for day in OUTAGE:
        assert day.isoformat() in summary
    for source in ("era5", "mswep", "smap"):  # what was fetched, per source
        assert f"| {source} |" in summary
    table = json.loads(artifacts["validation"].data)
    assert [row["day"] for row in table] == [d.isoformat() for d in OUTAGE]
    assert all(row["n_obs"] > 0 and row["status"] == "analysis" for row in table)
    link = artifacts["products"].data
    assert link.startswith("[") and "(file://" in link
    catalog = Path(link[link.index("(file://") + len("(file://") : -1])
    assert catalog == week.rt().publisher.catalog_path and catalog.is_file()
    quicklook = artifacts["quicklook"].data  # the newest day's map; not served: its path
    png = week.rt().publisher.quicklook_path(OUTAGE[-1])
    assert png.is_file() and f"`{png}`" in quicklook and OUTAGE[-1].isoformat() in quicklook
    assert "SMDA_PRODUCTS_PUBLIC_URL" in quicklook
    waiting = artifacts_of(week.states["nothing published"].state_details.flow_run_id)
    assert "quicklook" not in waiting  # no day run, no map


def test_a_rerun_with_nothing_new_rewrites_nothing(week: Week) -> None:
    assert week.states["again"].name == WAITING
    assert week.hashes["again"] == week.hashes["after the outage"]
    assert any(f"{OUTAGE[-1]:%Y%m%d}" in path for path in week.hashes["again"])


def test_a_day_without_smap_is_forecast_only_and_the_run_completes(week: Week) -> None:
    state = week.states["smap late"]

    assert state.is_completed() and state.name == "Completed", state.message
    *revised, run = state.result()  # days the fetch's MSWEP NRT revisions made stale, in order
    assert [r.day for r in revised] == [
        NO_SMAP - timedelta(days=len(revised) - i) for i in range(len(revised))
    ]
    assert not any(r.status == "skipped" for r in revised)
    assert (run.day, run.status, run.n_obs) == (NO_SMAP, "forecast_only", 0)
    flags = np.asarray(week.rt().chain.read(NO_SMAP)["flags"].values)
    land = (flags & FLAG_LAND) > 0
    assert land.any() and ((flags[land] & FLAG_FORECAST_ONLY) > 0).all()
    assert not ((flags & FLAG_ASSIMILATED) > 0).any()
    assert run.cog is not None and Path(run.cog).is_file()  # published, flagged
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "forecast_only" in summary


def test_backfilling_days_already_done_skips_them_and_rewrites_nothing(week: Week) -> None:
    state = week.states["backfill"]

    assert state.is_completed(), state.message
    runs = state.result()
    assert [r.day for r in runs] == [CHAIN[0] + timedelta(days=i) for i in range(len(runs))]
    assert runs[-1].day == OUTAGE[-1] and {r.status for r in runs} == {"skipped"}
    assert week.hashes["backfill"] == week.hashes["again"]
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "| era5 | 0 | 0 |" in summary  # nothing fetched, nothing replaced


def _stub_daily(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, fetch_failed: bool
) -> list[date]:
    """A daily run whose plan offers two days, whose inputs of the second are not staged
    (the fetch failed, or the provider withdrew them); returns the days run_day was asked."""
    import flows.daily
    import flows.tasks
    from smda.errors import MissingInputs
    from smda.ingest.fetch import DayOutcome, IngestReport
    from smda.ops import DailyPlan, DayRun

    days = OUTAGE[:2]
    asked: list[date] = []

    def run_day(rt: Any, day: date, *, force: bool = False) -> DayRun:
        asked.append(day)
        if day == days[1]:
            raise MissingInputs(f"era5 is not staged for {day}", [("era5", day)])
        return DayRun(day, "analysis", "model")

    outcome = "failed" if fetch_failed else "not_available"
    report = IngestReport([DayOutcome("era5", days[1], outcome, "HTTP 500 after 5 attempts")])
    plan = DailyPlan(H, days, {}, {"era5": days[1], "mswep": days[1], "smap": days[1]})
    monkeypatch.setattr(flows.tasks, "plan_daily", lambda rt: plan)
    monkeypatch.setattr(flows.tasks, "run_day", run_day)
    monkeypatch.setattr(flows.tasks, "validate_days", lambda rt, d: ValidationReport([], {}))
    monkeypatch.setattr(flows.daily, "fetch_sources", lambda region, d: report)
    for key, value in smda_environment(tmp_path, None).items():
        monkeypatch.setenv(key, value)
    return asked


def test_inputs_that_fail_to_fetch_fail_the_run_after_the_days_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    asked = _stub_daily(monkeypatch, tmp_path, fetch_failed=True)

    state = daily(return_state=True)

    assert state.is_failed()
    assert "failed to fetch" in state.message and "HTTP 500" in state.message
    assert asked == OUTAGE[:2]  # the first day was run, the second stopped the run


def test_inputs_withdrawn_after_planning_end_the_run_waiting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    asked = _stub_daily(monkeypatch, tmp_path, fetch_failed=False)

    state = daily(return_state=True)

    assert state.is_completed() and state.name == WAITING
    assert "era5 is not staged" in state.message
    assert asked == OUTAGE[:2]
