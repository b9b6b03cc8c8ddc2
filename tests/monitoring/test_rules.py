"""monitoring/: Prometheus config and alert rules checked and unit-tested by promtool; the Grafana
dashboard is valid; every metric the alerts and the dashboard use is one smda.ops.monitoring exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from smda.ops.health import SourceHealth
from smda.ops.monitoring import RunMetrics

ROOT = Path(__file__).resolve().parents[2]
MON = ROOT / "monitoring"
DASHBOARD = MON / "grafana" / "dashboards" / "smda.json"
EXTERNAL_METRICS = {"up", "ALERTS"}  # Prometheus' own series
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset",
}  # fmt: skip


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: it checks and tests monitoring/*.yml. Install Debian's "
            "'prometheus' package: run `bash .ci/system-deps.sh` (as root) or "
            "`apt-get install -y --no-install-recommends prometheus`"
        )
    return path


def run_promtool(*args: str) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(MON / "alerts.yml")["groups"] for r in g["rules"] if "alert" in r]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return data


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exported_metrics() -> set[str]:
    """Every metric family a fully used RunMetrics exposes."""
    m = RunMetrics("x")
    m.day_done(
        date(2024, 7, 1),
        seconds=1.0,
        forecast_only=False,
        assimilated_fraction=0.5,
        innovation_mean=0.0,
        innovation_sd=0.02,
        n_obs=10,
        innovation_sd_ratio=1.0,
    )
    m.inputs_waiting("era5", 5)
    m.source_health(
        SourceHealth(
            "era5", up=False, newest=date(2024, 6, 30), failed_polls=1,
            error_kind="CredentialsError", error="HTTP 401", error_at=1.0,
        ),
        date(2024, 7, 6),
    )  # fmt: skip
    m.analysis_chain(date(2024, 7, 1), date(2024, 7, 6))
    m.validation("ismn", r=0.7, ubrmsd=0.04, bias=0.0, n=10)
    m.validation_expected("ismn", True)
    m.feature_drift(1.0)
    m.run_finished("completed")
    return {family.name for family in m.registry.collect() if family.samples}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (identifiers that are not functions or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if call is None and name not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", name):
            names.add(name)
    return names


def alert_expressions() -> dict[str, str]:
    return {r["alert"]: r["expr"] for r in alert_rules()}


def dashboard_expressions() -> list[str]:
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        query = var.get("definition", "")
        exprs += re.findall(r"label_values\(([^,)]+)", query)
    return exprs


# -- promtool ---------------------------------------------------------------------------------


def test_promtool_checks_the_prometheus_config() -> None:
    out = run_promtool("check", "config", "monitoring/prometheus.yml")
    assert "SUCCESS" in out


def test_promtool_checks_the_alert_rules() -> None:
    out = run_promtool("check", "rules", "monitoring/alerts.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail(
            "amtool not found: run `bash .ci/system-deps.sh` (package prometheus-alertmanager)"
        )
    proc = subprocess.run(
        [amtool, "check-config", "monitoring/alertmanager.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_the_inhibited_alerts_exist() -> None:
    names = set(alert_expressions())
    for rule in load_yaml(MON / "alertmanager.yml")["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            assert matcher.split("=", 1)[1].strip('"') in names, matcher


def test_promtool_runs_the_alert_unit_tests() -> None:
    out = run_promtool("test", "rules", "monitoring/alerts_test.yml")
    assert "SUCCESS" in out


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = load_yaml(MON / "alerts_test.yml")["tests"]
    checks = [c for t in tests for c in t.get("alert_rule_test", [])]
    for name in alert_expressions():
        mine = [c for c in checks if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no test where it is quiet"


def test_alerts_have_severity_and_annotations() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as a recording rule, variables substituted)."""
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    rules = [
        {"record": f"smda_dashboard:query_{i}", "expr": re.sub(r"\$\w+", ".*", e)}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run_promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(exprs)} rules found" in out


# -- the metrics cross-check --------------------------------------------------------------------


def test_metric_name_extraction() -> None:
    expr = 'time() - max by (region) (smda_a_seconds{x="smda_b"}) > 2 * 86400 and on(job) up'
    assert metric_names(expr) == {"smda_a_seconds", "up"}
    assert metric_names("avg_over_time(smda_c[30d]) or abs(smda_d) > 1e-3") == {"smda_c", "smda_d"}


def test_alerts_use_only_exported_metrics() -> None:
    known = exported_metrics() | EXTERNAL_METRICS
    for name, expr in alert_expressions().items():
        used = metric_names(expr)
        assert used, f"{name}: no metric found in {expr!r}"
        assert used <= known, f"{name} uses metrics smda does not export: {used - known}"


def test_alert_tests_feed_only_exported_metrics() -> None:
    known = exported_metrics() | EXTERNAL_METRICS
    series = [
        s["series"]
        for t in load_yaml(MON / "alerts_test.yml")["tests"]
        for s in t.get("input_series", [])
    ]
    used = {s.split("{")[0] for s in series}
    assert used <= known, f"alerts_test.yml feeds unknown metrics: {used - known}"


def test_dashboard_uses_only_exported_metrics_and_shows_them_all() -> None:
    exported = exported_metrics()
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    assert used - EXTERNAL_METRICS <= exported, f"unknown metrics: {used - exported}"
    assert exported <= used, f"metrics without a panel: {exported - used}"


# -- Grafana --------------------------------------------------------------------------------------


def test_dashboard_json_is_a_valid_grafana_dashboard() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    panels = list(dashboard_panels())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasource_uid = load_yaml(MON / "grafana/provisioning/datasources/prometheus.yml")[
        "datasources"
    ][0]["uid"]
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target["datasource"]["uid"] == datasource_uid
    names = {v["name"] for v in dash["templating"]["list"]}
    for expr in dashboard_expressions():
        for var in re.findall(r"\$(\w+)", expr):
            assert var in names, f"undefined dashboard variable ${var} in {expr!r}"


def test_grafana_provisioning_files() -> None:
    prov = MON / "grafana" / "provisioning"
    ds = load_yaml(prov / "datasources" / "prometheus.yml")
    assert ds["apiVersion"] == 1
    [source] = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = load_yaml(prov / "dashboards" / "smda.yml")
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
