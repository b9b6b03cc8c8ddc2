"""How daily runs end, as operators see them: a rejected key, an outage, a bug, a recovery.

One data directory (the chain up to ``HISTORY_END`` = H) and one twin live through::

    1. the CDS answers 401 to every call (a rejected key), clock at H+6 → the run FAILS
    2. a day later, still 401                                          → fails again
    3. the key is fixed (fault cleared)                                → H+1, H+2 run, Completed

and, on stubbed tasks, a run that raises (a bug) and a waiting run. Each test asserts one
behaviour on what the runs recorded: states, run names, metrics (the textfile a deployment
without a pushgateway writes), source health, artifacts, and smda's log records in the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flow_helpers import (
    EPOCH,
    HISTORY_END,
    REGION,
    artifacts_of,
    copy_data,
    runtime,
    smda_environment,
    start_twin,
    today_for,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prometheus_client.parser import text_string_to_metric_families

import flows.tasks
from flows.daily import daily
from smda.ops.health import health_path, load_health
from smda.ops.metrics_export import textfile_name
from smda_twin.faults import Fault

H = HISTORY_END
REJECTED = Fault("status", status=401, times=-1)


@dataclass
class Outage:
    """The sequence of the module docstring: each step's final state and metrics."""

    data: Path
    states: dict[str, Any]
    metrics: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def read_metrics(data: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of the daily job's textfile, by (name, sorted labels without region)."""
    label = runtime(data, H).region  # the region label of the metrics
    text = (data / "metrics" / textfile_name("smda_daily", label)).read_text()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "region"))
            out[(s.name, labels)] = s.value
    return out


def status_of(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> list[str]:
    return [
        dict(labels)["status"]
        for (name, labels), value in metrics.items()
        if name == "smda_last_run_status" and value == 1
    ]


@pytest.fixture(scope="module")
def outage(
    chain_template: Path, tmp_path_factory: pytest.TempPathFactory, replicas: Path
) -> Outage:
    data = copy_data(chain_template, tmp_path_factory.mktemp("outage") / "data")
    endpoints = data.parent / "endpoints.json"
    twin = start_twin(endpoints, today_for(H + timedelta(days=1)), replicas=replicas)
    states: dict[str, Any] = {}
    metrics = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in smda_environment(data, endpoints).items():
                mp.setenv(key, value)
            twin.add_fault("cds", REJECTED)
            states["rejected"] = daily(return_state=True)
            metrics["rejected"] = read_metrics(data)
            twin.clock.advance(1)
            states["still rejected"] = daily(return_state=True)
            metrics["still rejected"] = read_metrics(data)
            twin.cds.faults.clear()
            states["fixed"] = daily(return_state=True)
            metrics["fixed"] = read_metrics(data)
    finally:
        twin.stop()
    return Outage(data, states, metrics)


def _flow_run(state: Any) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


def test_a_rejected_key_fails_the_run_and_says_what_to_do(outage: Outage) -> None:
    state = outage.states["rejected"]

    assert state.is_failed(), (state.type, state.message)
    assert "era5" in state.message and "401" in state.message
    stored = _flow_run(state).state
    assert stored is not None and stored.is_failed()
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "failed" in summary and "What to do" in summary and "credentials" in summary


def test_the_failed_status_and_the_source_down_reach_the_metrics(outage: Outage) -> None:
    first, second = outage.metrics["rejected"], outage.metrics["still rejected"]

    assert status_of(first) == ["failed"] and status_of(second) == ["failed"]
    era5 = (("source", "era5"),)
    assert first[("smda_source_up", era5)] == 0
    assert (
        first[("smda_source_failed_polls", era5)],
        second[("smda_source_failed_polls", era5)],
    ) == (1, 2)
    kinds = [
        dict(labels)["kind"]
        for (name, labels) in second
        if name == "smda_source_last_error_timestamp_seconds"
    ]
    assert kinds == ["CredentialsError"]
    mswep = (("source", "mswep"),)
    assert first[("smda_source_up", mswep)] == 1 and first[("smda_source_failed_polls", mswep)] == 0


def test_the_days_waited_for_a_source_stay_reported_and_grow_while_it_is_down(
    outage: Outage,
) -> None:
    era5 = ("smda_inputs_waiting_days", (("source", "era5"),))
    # the first poll of this data directory already failed: the waiting days come from the
    # newest day staged; then they grow by one per day of the outage
    first, second = outage.metrics["rejected"][era5], outage.metrics["still rejected"][era5]
    assert second == first + 1
    assert outage.metrics["fixed"][era5] < second  # the provider answers again


def test_a_fixed_key_recovers_the_source_and_the_run_completes(outage: Outage) -> None:
    state, metrics = outage.states["fixed"], outage.metrics["fixed"]

    assert state.is_completed() and state.name == "Completed", state.message
    assert [r.day for r in state.result() if r.status != "skipped"] == [
        H + timedelta(days=1),
        H + timedelta(days=2),
    ]
    assert status_of(metrics) == ["completed"]
    era5 = (("source", "era5"),)
    assert (
        metrics[("smda_source_up", era5)] == 1 and metrics[("smda_source_failed_polls", era5)] == 0
    )
    # the last error is kept after the recovery, for the operator who looks afterwards
    health = load_health(health_path(outage.data, runtime(outage.data, H).region))
    assert health["era5"].up and health["era5"].error_kind == "CredentialsError"
    assert (
        metrics[("smda_analysis_lag_days", ())]
        == (today_for(H + timedelta(days=2)) - (H + timedelta(days=2))).days
    )


def test_the_run_duration_is_the_whole_run(outage: Outage) -> None:
    state = outage.states["fixed"]
    run = _flow_run(state)
    assert run.start_time is not None and run.end_time is not None
    wall = (run.end_time - run.start_time).total_seconds()
    measured = outage.metrics["fixed"][("smda_last_run_duration_seconds", ())]

    assert 0.5 * wall <= measured <= wall + 1.0, (measured, wall)


def test_flow_runs_are_named_by_their_days_and_region(outage: Outage) -> None:
    assert _flow_run(outage.states["rejected"]).name == f"daily no day {REGION}"
    days = f"{H + timedelta(days=1)}…{H + timedelta(days=2)}"
    assert _flow_run(outage.states["fixed"]).name == f"daily {days} {REGION}"


def test_smda_info_records_reach_the_flow_run_logs(outage: Outage) -> None:
    import time as clock

    run_id = outage.states["fixed"].state_details.flow_run_id
    deadline = clock.monotonic() + 30  # records reach the API in batches, after the run
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        smda = [log for log in logs if log.name.startswith("smda.")]
        if smda or clock.monotonic() > deadline:
            break
        clock.sleep(1)

    assert any(log.level == 20 and "analysis" in log.message for log in smda), [
        (log.name, log.message) for log in logs
    ]


def test_a_run_that_raises_reports_failed_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    def broken(rt: Any) -> Any:
        raise RuntimeError("the plan could not be made: a bug")

    monkeypatch.setattr(flows.tasks, "plan_daily", broken)
    for key, value in smda_environment(tmp_path, None).items():
        monkeypatch.setenv(key, value)

    state = daily(return_state=True)

    assert state.is_failed()
    metrics = read_metrics(tmp_path)
    assert status_of(metrics) == ["failed"]
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "a bug" in summary and "What to do" in summary


def test_a_run_stopped_by_another_writer_reports_busy_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    from smda.storage.locks import Holder, RegionBusy

    holder = Holder(4242, "worker-2", "smda backfill --start 2024-01-01", "2026-12-05T04:00:00")

    def locked(rt: Any) -> Any:
        raise RegionBusy(f"the state chain is being written by {holder.describe()}", holder)

    monkeypatch.setattr(flows.tasks, "plan_daily", locked)
    for key, value in smda_environment(tmp_path, None).items():
        monkeypatch.setenv(key, value)

    state = daily(return_state=True)

    assert state.is_failed()
    assert status_of(read_metrics(tmp_path)) == ["busy"]
    summary = artifacts_of(state.state_details.flow_run_id)["summary"].data
    assert "pid 4242 on worker-2" in summary and "Another run writes this region" in summary


def test_a_waiting_run_leaves_a_summary_and_a_validation_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    from smda.ops import DailyPlan

    plan = DailyPlan(H, [], {"era5": "not yet published"}, {"era5": H, "mswep": H, "smap": H})
    monkeypatch.setattr(flows.tasks, "plan_daily", lambda rt: plan)
    for key, value in smda_environment(tmp_path, None).items():
        monkeypatch.setenv(key, value)
    (tmp_path / "products").mkdir()

    state = daily(return_state=True)

    assert state.is_completed() and state.name == "Waiting"
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert {"summary", "validation"} <= set(artifacts)
    assert json.loads(artifacts["validation"].data)[0]["note"].startswith("no day")
    assert status_of(read_metrics(tmp_path)) == ["waiting"]


def test_newest_day_unknown_before_any_poll() -> None:
    from smda.ops.health import SourceHealth

    assert SourceHealth("era5", up=False).waiting_days(date(2024, 1, 1)) is None


def test_a_day_run_reports_feature_drift_and_the_innovation_spread_against_training(
    outage: Outage,
) -> None:
    metrics = outage.metrics["fixed"]

    drift = metrics[("smda_feature_drift_max_abs_z", ())]
    ratio = metrics[("smda_innovation_sd_ratio", ())]
    # days of the training distribution's season, with the forecast and SMAP as trained
    assert 0.0 < drift < 3.0
    assert 0.2 < ratio < 3.0


def test_smda_run_exit_codes_say_done_waiting_and_failed(
    chain_template: Path,
    tmp_path: Path,
    replicas: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from smda.cli import app

    data = copy_data(chain_template, tmp_path / "data")
    endpoints = tmp_path / "endpoints.json"
    twin = start_twin(endpoints, today_for(H), replicas=replicas)
    for key, value in smda_environment(data, endpoints).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    try:
        waiting = runner.invoke(app, ["run"])
        twin.add_fault("cds", REJECTED)
        failed = runner.invoke(app, ["run"])
        twin.cds.faults.clear()
        twin.clock.advance(1)
        done = runner.invoke(app, ["run"])
    finally:
        twin.stop()

    assert waiting.exit_code == 75, waiting.output
    assert "waiting for inputs" in waiting.output
    assert failed.exit_code == 1, failed.output
    assert "credentials rejected" in failed.output and "worker's environment" in failed.output
    assert done.exit_code == 0, done.output
    assert status_of(read_metrics(data)) == ["completed"]


def test_a_daily_validation_of_one_day_scores_the_stations_over_the_recent_chain(
    chain_template: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from smda.cli import app
    from smda.ingest.context import make_context
    from smda.ingest.fetch import fetch_range
    from smda.ops import report_metrics, validate_days

    data = copy_data(chain_template, tmp_path / "data")
    archive = tmp_path / "ismn.zip"
    first, last = H - timedelta(days=4), H
    span = ["--start", str(first), "--end", str(last)]
    made = CliRunner().invoke(
        app,
        ["twin", "ismn", *span, "--out", str(archive), f"--region={REGION}", "--epoch", str(EPOCH)],
    )
    assert made.exit_code == 0, made.output
    rt = runtime(data, H)
    ctx = make_context(rt.settings, region=REGION, today=H, ismn_path=archive)
    fetch_range(["ismn"], first, last, ctx)

    report = validate_days(rt, [H])  # what a daily run that made one day validates

    assert report.stations["stations"] >= 1 and -1 <= report.stations["median_r"] <= 1
    report_metrics(rt, "smda_daily", [], validation=report)
    metrics = read_metrics(data)
    assert metrics[("smda_validation_expected", (("series", "ismn"),))] == 1
    assert metrics[("smda_validation_pairs", (("series", "ismn"),))] >= 1


def test_a_failed_run_notifies_the_operators_through_the_declared_automation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_api: str
) -> None:
    import threading
    import time as clock
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from deployments.automations import declare

    got: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        declare(f"http://127.0.0.1:{server.server_port}/smda")
        declare(None)  # again, with the block now in place: replaced, not duplicated

        def broken(rt: Any) -> Any:
            raise RuntimeError("a bug in planning")

        monkeypatch.setattr(flows.tasks, "plan_daily", broken)
        for key, value in smda_environment(tmp_path, None).items():
            monkeypatch.setenv(key, value)
        state = daily(return_state=True)
        deadline = clock.monotonic() + 60
        while not got and clock.monotonic() < deadline:
            clock.sleep(0.5)
        clock.sleep(2)  # a duplicated automation would send a second message now
    finally:
        server.shutdown()

    assert state.is_failed()
    assert len(got) == 1, f"{len(got)} notifications within 60 s"
    message = json.loads(got[0])
    assert "smda-daily" in message["subject"] and "Failed" in message["subject"]
    assert "a bug in planning" in message["body"]


def test_every_daily_run_validates_its_forecast_against_smap_without_stations(
    outage: Outage,
) -> None:
    metrics = outage.metrics["fixed"]
    series = (("series", "smap_forecast"),)
    newest = [r for r in outage.states["fixed"].result() if r.status != "skipped"][-1]

    state = runtime(outage.data, H).chain.read(newest.day)
    forecast = np.asarray(state["forecast"].values, dtype=float).ravel()
    innovations = np.asarray(state["innovations"].values, dtype=float).ravel()
    valid = np.isfinite(innovations)
    expected_r = np.corrcoef(forecast[valid], forecast[valid] + innovations[valid])[0, 1]
    # a spatial R over the 16 cells of the test world: any sign, as the data say
    assert metrics[("smda_validation_r", series)] == pytest.approx(expected_r, abs=1e-6)
    assert metrics[("smda_validation_ubrmsd_m3m3", series)] == pytest.approx(newest.innovation_sd)
    assert metrics[("smda_validation_bias_m3m3", series)] == pytest.approx(-newest.innovation_mean)
    assert metrics[("smda_validation_pairs", series)] == newest.n_obs
