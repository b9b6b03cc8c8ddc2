"""smda.ops.monitoring: metric values and labels, the textfile export, and pushes to a pushgateway."""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from smda import __version__
from smda.ops import monitoring
from smda.ops.health import SourceHealth
from smda.ops.monitoring import RUN_STATUSES, RunMetrics, textfile_name
from smda.science.drift import feature_drift

T0 = 1_720_000_000.0


def metrics(region: str = "demo", now: float = T0) -> RunMetrics:
    return RunMetrics(region, clock=lambda: now)


def value(m: RunMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"region": m.region, **labels})


def a_day(m: RunMetrics, day: date, **overrides: object) -> None:
    kwargs: dict[str, object] = {
        "seconds": 12.5,
        "forecast_only": False,
        "assimilated_fraction": 0.35,
        "innovation_mean": 0.004,
        "innovation_sd": 0.031,
        "n_obs": 812,
    }
    kwargs.update(overrides)
    m.day_done(day, **kwargs)  # type: ignore[arg-type]


# -- values and labels ------------------------------------------------------------------------


def test_day_done_sets_the_newest_day_gauges() -> None:
    m = metrics()
    a_day(m, date(2024, 7, 15))
    assert value(m, "smda_last_analysis_timestamp_seconds") == T0
    day0 = datetime(2024, 7, 15, tzinfo=UTC).timestamp()
    assert value(m, "smda_last_analysis_day_timestamp_seconds") == day0
    assert value(m, "smda_last_day_duration_seconds") == 12.5
    assert value(m, "smda_last_day_forecast_only") == 0
    assert value(m, "smda_assimilated_ratio") == 0.35
    assert value(m, "smda_innovation_mean_m3m3") == 0.004
    assert value(m, "smda_innovation_sd_m3m3") == 0.031
    assert value(m, "smda_innovation_observations") == 812
    assert value(m, "smda_run_days") == 1
    assert m.days == 1


def test_an_older_day_counts_but_does_not_replace_the_newest() -> None:
    m = metrics()
    a_day(m, date(2024, 7, 15), assimilated_fraction=0.5)
    a_day(m, date(2024, 7, 10), assimilated_fraction=0.1, seconds=99.0)
    assert value(m, "smda_assimilated_ratio") == 0.5
    assert value(m, "smda_last_day_duration_seconds") == 12.5
    assert value(m, "smda_run_days") == 2
    a_day(m, date(2024, 7, 16), assimilated_fraction=0.2)
    assert value(m, "smda_assimilated_ratio") == 0.2
    assert value(m, "smda_last_analysis_day_timestamp_seconds") == (
        datetime(2024, 7, 16, tzinfo=UTC).timestamp()
    )


def test_forecast_only_day_keeps_the_innovations_of_the_last_day_with_obs() -> None:
    m = metrics()
    a_day(m, date(2024, 7, 15))
    a_day(
        m,
        date(2024, 7, 16),
        forecast_only=True,
        assimilated_fraction=0.0,
        innovation_mean=math.nan,
        innovation_sd=math.nan,
        n_obs=0,
    )
    assert value(m, "smda_last_day_forecast_only") == 1
    assert value(m, "smda_assimilated_ratio") == 0.0
    assert value(m, "smda_innovation_mean_m3m3") == 0.004
    assert value(m, "smda_innovation_observations") == 812


def test_forecast_only_first_day_sets_no_innovation() -> None:
    m = metrics()
    a_day(m, date(2024, 7, 16), forecast_only=True, n_obs=0, innovation_mean=math.nan)
    assert value(m, "smda_innovation_mean_m3m3") is None
    assert value(m, "smda_innovation_observations") is None


def test_assimilated_fraction_outside_0_1_is_rejected() -> None:
    with pytest.raises(ValueError, match="assimilated_fraction"):
        a_day(metrics(), date(2024, 7, 15), assimilated_fraction=35.0)


def test_inputs_waiting_is_labelled_by_source() -> None:
    m = metrics()
    m.inputs_waiting("era5", 5)
    m.inputs_waiting("smap", 2)
    m.inputs_waiting("era5", 6)
    assert value(m, "smda_inputs_waiting_days", source="era5") == 6
    assert value(m, "smda_inputs_waiting_days", source="smap") == 2
    assert value(m, "smda_inputs_waiting_days", source="mswep") is None
    with pytest.raises(ValueError, match="mswep"):
        m.inputs_waiting("mswep", -1)


def test_validation_is_labelled_by_series() -> None:
    m = metrics()
    m.validation("ismn", r=0.71, ubrmsd=0.041, bias=-0.012, n=365)
    m.validation("smap", r=0.8, ubrmsd=0.03, bias=0.002, n=10_000)
    assert value(m, "smda_validation_r", series="ismn") == 0.71
    assert value(m, "smda_validation_ubrmsd_m3m3", series="ismn") == 0.041
    assert value(m, "smda_validation_bias_m3m3", series="ismn") == -0.012
    assert value(m, "smda_validation_pairs", series="ismn") == 365
    assert value(m, "smda_validation_pairs", series="smap") == 10_000


@pytest.mark.parametrize("status", RUN_STATUSES)
def test_run_finished_is_a_state_set(status: monitoring.RunStatus) -> None:
    m = metrics(now=T0 + 60)
    a_day(m, date(2024, 7, 15))
    m.run_finished(status)
    for other in RUN_STATUSES:
        assert value(m, "smda_last_run_status", status=other) == (1 if other == status else 0)
    assert value(m, "smda_last_run_timestamp_seconds") == T0 + 60
    duration = value(m, "smda_last_run_duration_seconds")
    assert duration is not None and duration >= 0
    assert value(m, "smda_run_days") == 1


def test_a_run_without_days_reports_zero_days() -> None:
    m = metrics()
    m.run_finished("completed")
    assert value(m, "smda_run_days") == 0
    assert value(m, "smda_last_analysis_timestamp_seconds") is None


def test_unknown_run_status_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="completed, waiting, failed, crashed, cancelled"):
        metrics().run_finished("ok")  # type: ignore[arg-type]


def test_build_info_carries_the_version() -> None:
    m = metrics()
    assert m.registry.get_sample_value("smda_build_info", {"version": __version__}) == 1


def test_runs_have_separate_registries_and_leave_the_global_one_alone() -> None:
    a, b = metrics("a"), metrics("b")
    a.inputs_waiting("era5", 9)
    assert value(b, "smda_inputs_waiting_days", source="era5") is None
    assert b.registry.get_sample_value("smda_inputs_waiting_days", {"region": "a"}) is None
    assert (
        REGISTRY.get_sample_value("smda_inputs_waiting_days", {"region": "a", "source": "era5"})
        is None
    )


# -- feature drift ----------------------------------------------------------------------------


def test_feature_drift_is_the_largest_absolute_z() -> None:
    z = feature_drift([10.0, 0.2, 300.0], [2.0, 0.05, 10.0], [11.0, 0.05, 330.0])
    assert z == pytest.approx(3.0)  # |0.05 - 0.2| / 0.05 = 3, |330 - 300| / 10 = 3


def test_feature_drift_leaves_out_constant_and_missing_features() -> None:
    z = feature_drift([1.0, 5.0, math.nan], [0.0, 1.0, 1.0], [9.0, 4.5, 100.0])
    assert z == pytest.approx(0.5)
    assert math.isnan(feature_drift([1.0], [0.0], [2.0]))


def test_feature_drift_needs_arrays_of_one_shape() -> None:
    with pytest.raises(ValueError, match="one shape"):
        feature_drift([1.0, 2.0], [1.0], [1.0, 2.0])


def test_feature_drift_gauge_ignores_nan() -> None:
    m = metrics()
    m.feature_drift(2.5)
    m.feature_drift(math.nan)
    assert value(m, "smda_feature_drift_max_abs_z") == 2.5


# -- textfile ---------------------------------------------------------------------------------


def finished_run(region: str = "demo", now: float = T0) -> RunMetrics:
    m = metrics(region, now)
    a_day(m, date(2024, 7, 15))
    m.inputs_waiting("era5", 5)
    m.validation("ismn", r=0.7, ubrmsd=0.04, bias=0.0, n=100)
    m.feature_drift(1.25)
    m.run_finished("completed")
    return m


def parse(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text("utf-8")):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({"region": "demo", **labels}.items())


def test_textfile_is_parseable_and_holds_every_sample(tmp_path: Path) -> None:
    m = finished_run()
    path = tmp_path / "smda_daily-demo.prom"
    m.write_textfile(path)
    samples = parse(path)
    expected = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in m.registry.collect()
        for s in family.samples
    }
    assert samples == expected
    assert samples[key("smda_inputs_waiting_days", source="era5")] == 5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_textfile_keeps_metrics_the_next_run_did_not_set(tmp_path: Path) -> None:
    path = tmp_path / "smda_daily-demo.prom"
    finished_run(now=T0).write_textfile(path)
    later = metrics(now=T0 + 86_400)  # a run that found no new day
    later.inputs_waiting("era5", 6)
    later.run_finished("failed")
    later.write_textfile(path)
    samples = parse(path)
    assert samples[key("smda_last_analysis_timestamp_seconds")] == T0  # carried over
    assert samples[key("smda_validation_ubrmsd_m3m3", series="ismn")] == 0.04
    assert samples[key("smda_inputs_waiting_days", source="era5")] == 6  # replaced
    assert samples[key("smda_last_run_status", status="failed")] == 1
    assert samples[key("smda_last_run_status", status="completed")] == 0
    assert samples[key("smda_last_run_timestamp_seconds")] == T0 + 86_400
    assert samples[key("smda_run_days")] == 0


def test_textfile_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smda_daily-demo.prom"
    finished_run().write_textfile(path)
    before = path.read_bytes()
    renamed: list[str] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append(os.fspath(src))
        raise OSError("disk full")

    monkeypatch.setattr("smda.storage.atomic.os.replace", failing_replace)
    m = metrics(now=T0 + 1)
    m.run_finished("crashed")
    with pytest.raises(OSError, match="disk full"):
        m.write_textfile(path)
    assert path.read_bytes() == before  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    # the temporary sibling is invisible to the textfile collector (which reads *.prom)
    assert renamed and Path(renamed[0]).parent == tmp_path
    assert not renamed[0].endswith(".prom")


def test_unparsable_previous_textfile_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.prom"
    path.write_text("this is { not prometheus\n")
    with caplog.at_level(logging.WARNING, logger="smda.ops.metrics_export"):
        finished_run().write_textfile(path)
    assert key("smda_run_days") in parse(path)
    assert "unparsable" in caplog.text


def test_push_without_gateway_writes_the_textfile(tmp_path: Path) -> None:
    m = finished_run()
    assert m.push(None, "smda_daily", textfile_dir=tmp_path / "metrics") is True
    path = tmp_path / "metrics" / textfile_name("smda_daily", "demo")
    assert path.name.endswith(".prom")
    assert parse(path)[key("smda_last_run_status", status="completed")] == 1


def test_push_with_nowhere_to_go_does_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="smda.ops.metrics_export"):
        assert finished_run().push(None, "smda_daily") is False
    assert "not exported" in caplog.text


def test_unwritable_textfile_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="smda.ops.metrics_export"):
        assert finished_run().push(None, "smda_daily", textfile_dir=blocker) is False
    assert "could not write the metrics file" in caplog.text


def test_textfile_name_is_safe() -> None:
    assert textfile_name("smda_daily", "demo") == "smda_daily-demo.prom"
    name = textfile_name("smda backfill", "-105,30,-95,40")
    assert name.endswith(".prom") and "/" not in name and "," not in name and " " not in name


# -- pushgateway --------------------------------------------------------------------------------


class Received:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.authorization: list[str | None] = []
        self.status = 200


@pytest.fixture
def gateway() -> Iterator[tuple[str, Received]]:
    """A pushgateway stub on loopback recording (method, path, body) of each request."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.requests.append((self.command, self.path, self.rfile.read(length)))
            received.authorization.append(self.headers.get("Authorization"))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = _record

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_push_adds_the_run_to_its_job_and_region_group(
    gateway: tuple[str, Received],
) -> None:
    url, received = gateway
    m = finished_run()
    assert m.push(url, "smda_daily") is True
    assert len(received.requests) == 1
    method, path, body = received.requests[0]
    # POST (pushadd): metrics of the same name are replaced, the group's others are kept
    assert method == "POST"
    assert path == "/metrics/job/smda_daily/region/demo"
    pushed = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert pushed[key("smda_last_run_status", status="completed")] == 1
    assert pushed[key("smda_last_analysis_timestamp_seconds")] == T0
    assert pushed[key("smda_validation_r", series="ismn")] == 0.7


def test_push_encodes_a_region_with_commas(gateway: tuple[str, Received]) -> None:
    url, received = gateway
    m = metrics("-105,30,-95,40")
    m.run_finished("completed")
    assert m.push(url, "smda_backfill") is True
    prefix, _, value = received.requests[0][1].rpartition("/")
    assert prefix == "/metrics/job/smda_backfill/region"
    assert unquote(value) == "-105,30,-95,40"


def test_gateway_error_status_only_warns(
    gateway: tuple[str, Received], caplog: pytest.LogCaptureFixture
) -> None:
    url, received = gateway
    received.status = 500
    with caplog.at_level(logging.WARNING, logger="smda.ops.metrics_export"):
        assert finished_run().push(url, "smda_daily") is False
    assert len(received.requests) == 1
    assert "could not push metrics" in caplog.text and url in caplog.text


def test_down_gateway_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with caplog.at_level(logging.WARNING, logger="smda.ops.metrics_export"):
        assert finished_run().push(url, "smda_daily") is False
    [record] = [r for r in caplog.records if r.name == "smda.ops.metrics_export"]
    assert record.levelno == logging.WARNING
    assert url in record.getMessage() and "run goes on" in record.getMessage()


def _closed_port() -> int:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gateway_credentials_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    with caplog.at_level(logging.DEBUG, logger="smda"):
        assert finished_run().push(f"http://ops:s3cret@127.0.0.1:{port}", "smda_daily") is False
        # a malformed URL warns too (never raises), and never shows the password either
        assert finished_run().push("http://ops:s3cret@127.0.0.1:notaport", "smda_daily") is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert f"http://ops:***@127.0.0.1:{port}" in warnings[0] and "run goes on" in warnings[0]
    assert "s3cret" not in caplog.text


def test_gateway_credentials_are_sent_as_basic_auth(gateway: tuple[str, Received]) -> None:
    import base64

    url, received = gateway
    with_credentials = url.replace("http://", "http://ops:s3cret@")
    assert finished_run().push(with_credentials, "smda_daily") is True
    assert received.requests[0][1] == "/metrics/job/smda_daily/region/demo"
    assert received.authorization == ["Basic " + base64.b64encode(b"ops:s3cret").decode()]


def test_day_done_records_feature_drift_and_the_innovation_spread_ratio() -> None:
    m = RunMetrics("demo")
    m.day_done(
        date(2024, 7, 1),
        seconds=1.0,
        forecast_only=False,
        assimilated_fraction=0.5,
        innovation_mean=0.0,
        innovation_sd=0.03,
        n_obs=200,
        feature_drift=2.5,
        innovation_sd_ratio=1.2,
    )
    assert value(m, "smda_feature_drift_max_abs_z") == 2.5
    assert value(m, "smda_innovation_sd_ratio") == 1.2


def test_source_health_keeps_the_waiting_days_of_a_source_that_is_down() -> None:
    m = RunMetrics("demo")
    down = SourceHealth(
        "era5",
        up=False,
        newest=date(2024, 7, 1),
        failed_polls=3,
        error_kind="CredentialsError",
        error_at=100.0,
    )
    m.source_health(down, date(2024, 7, 10))
    labels = {"region": "demo", "source": "era5"}
    get = m.registry.get_sample_value
    assert get("smda_source_up", labels) == 0
    assert get("smda_source_failed_polls", labels) == 3
    assert get("smda_inputs_waiting_days", labels) == 9
    assert (
        get("smda_source_last_error_timestamp_seconds", {**labels, "kind": "CredentialsError"})
        == 100.0
    )


def test_the_analysis_lag_is_counted_from_the_newest_chain_day() -> None:
    m = RunMetrics("demo")
    m.analysis_chain(date(2024, 7, 1), date(2024, 7, 6))
    assert value(m, "smda_analysis_lag_days") == 5


def test_the_run_duration_counts_from_the_start_given() -> None:
    clock = iter([1000.0, 1042.5, 1042.5]).__next__
    m = RunMetrics("demo", clock=clock, started_at=1000.0)
    m.run_finished("waiting")
    assert value(m, "smda_last_run_duration_seconds") == 42.5
