"""A real monitoring stack on 127.0.0.1 for end-to-end alert tests: Pushgateway, Prometheus with
smda's alert rules, Alertmanager, and a webhook receiver that records what Alertmanager sends.

The binaries are Debian's (``prometheus``, ``prometheus-pushgateway``,
``prometheus-alertmanager``), installed by ``.ci/system-deps.sh``. Prometheus scrapes the
gateway and evaluates the rules every second. The rules are ``monitoring/alerts.yml`` with every
``for:`` removed: a test cannot wait days, and the ``for:`` durations are proven by promtool's
unit tests (``monitoring/alerts_test.yml``); the expressions, labels, routing and delivery are
what this stack proves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
BINARIES = ("prometheus", "prometheus-pushgateway", "prometheus-alertmanager")

__all__ = ["BINARIES", "MonitoringStack", "Received", "missing_binaries", "monitoring_stack"]


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """Terminate a child started in its own process group (then kill it if it lingers)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@dataclass
class Received:
    """The alerts the webhook receiver got: (alertname, labels, Unix time received)."""

    alerts: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def names(self) -> set[str]:
        with self.lock:
            return {name for name, _, _ in self.alerts}

    def first(self, name: str) -> float | None:
        with self.lock:
            times = [t for n, _, t in self.alerts if n == name]
        return min(times) if times else None

    def labels_of(self, name: str) -> list[dict[str, str]]:
        with self.lock:
            return [labels for n, labels, _ in self.alerts if n == name]


@dataclass
class MonitoringStack:
    """URLs of the running stack and what its receiver got."""

    pushgateway: str
    prometheus: str
    alertmanager: str
    received: Received

    def wait_for(self, names: set[str], since: float, timeout: float = 60.0) -> dict[str, float]:
        """Wait until every alert of ``names`` reached the receiver; seconds from ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if names <= self.received.names():
                break
            time.sleep(0.2)
        got = self.received.names()
        assert names <= got, f"alerts not received within {timeout:.0f} s: {names - got}"
        return {n: max((self.received.first(n) or since) - since, 0.0) for n in names}

    def firing(self) -> list[dict[str, Any]]:
        """Alerts Prometheus holds as firing now."""
        answer = requests.get(f"{self.prometheus}/api/v1/alerts", timeout=10).json()
        return [a for a in answer["data"]["alerts"] if a["state"] == "firing"]

    def scraped(self, metric: str) -> list[dict[str, Any]]:
        """The samples of ``metric`` Prometheus has now."""
        answer = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": metric}, timeout=10
        ).json()
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def settle(self, seconds: float = 5.0) -> None:
        """Let Prometheus scrape and evaluate a few times (its interval is 1 s)."""
        time.sleep(seconds)


def _receiver(received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.time()
            with received.lock:
                for alert in body.get("alerts", []):
                    if alert.get("status") == "firing":
                        labels = alert["labels"]
                        received.alerts.append((labels["alertname"], labels, now))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _rules_without_for(target: Path) -> None:
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text("utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule.pop("for", None)
    target.write_text(yaml.safe_dump(rules, sort_keys=False), "utf-8")


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after 60 s:\n{log.read_text()}")


@contextmanager
def _process(args: list[str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def monitoring_stack(workdir: Path) -> Iterator[MonitoringStack]:
    """Start the stack in ``workdir``; stop it on exit."""
    received = Received()
    server = _receiver(received)
    pg, prom, am = free_port(), free_port(), free_port()
    (workdir / "am").mkdir(parents=True)
    (workdir / "prom").mkdir()
    (workdir / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "test",
                    "group_by": ["alertname", "region", "source"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "test",
                        "webhook_configs": [
                            {
                                "url": f"http://127.0.0.1:{server.server_port}/",
                                "send_resolved": False,
                            }
                        ],
                    }
                ],
            }
        )
    )
    _rules_without_for(workdir / "rules.yml")
    (workdir / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(workdir / "rules.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,
                        "static_configs": [{"targets": [f"127.0.0.1:{pg}"]}],
                    }
                ],
            }
        )
    )
    with ExitStack() as stack:
        stack.callback(server.shutdown)
        stack.enter_context(
            _process(
                [
                    "prometheus-alertmanager",
                    f"--config.file={workdir / 'alertmanager.yml'}",
                    f"--storage.path={workdir / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am}",
                    "--cluster.listen-address=",
                ],
                f"http://127.0.0.1:{am}",
                workdir / "alertmanager.log",
            )
        )
        stack.enter_context(
            _process(
                [
                    "prometheus-pushgateway",
                    f"--web.listen-address=127.0.0.1:{pg}",
                    # Debian's default persists to /var/lib/prometheus: keep the test's own
                    f"--persistence.file={workdir / 'pushgateway.data'}",
                ],
                f"http://127.0.0.1:{pg}",
                workdir / "pushgateway.log",
            )
        )
        stack.enter_context(
            _process(
                [
                    "prometheus",
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'prom'}",
                    f"--web.listen-address=127.0.0.1:{prom}",
                ],
                f"http://127.0.0.1:{prom}",
                workdir / "prometheus.log",
            )
        )
        yield MonitoringStack(
            f"http://127.0.0.1:{pg}",
            f"http://127.0.0.1:{prom}",
            f"http://127.0.0.1:{am}",
            received,
        )
