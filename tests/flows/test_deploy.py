"""``deployments/prefect.yaml`` on a real Prefect server, as an operator would run it.

The test starts ``prefect server start`` (SQLite, a private PREFECT_HOME, a free port), creates
the process work pool, runs ``prefect --no-prompt deploy --all --prefect-file
deployments/prefect.yaml`` from the repository root, starts ``prefect worker start`` with the
``SMDA_*`` environment of a data directory (staged inputs, no model yet) and a twin, then runs
the ``train`` deployment and the ``daily`` deployment and waits until both flow runs are
Completed. Every child process is started in its own process group and killed at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flow_helpers import (
    EPOCH,
    HISTORY_END,
    REGION,
    SEED,
    SPINUP,
    TINY_TRAINING,
    TRAIN,
    TRAIN_OPTIONS,
    smda_environment,
    start_twin,
    today_for,
)
from monitoring_stack import free_port, stop_group
from pydantic import TypeAdapter
from staged_world import stage_world, tiny_world

from smda.config import Settings
from smda.ops import open_runtime
from smda.science.model import TrainConfig
from smda.storage.store import Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "smda-process"


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


class Cluster:
    """The server and worker processes of the test, with their logs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        home = tmp / "prefect-home"
        home.mkdir()
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_CLI_COLORS": "false",
        }

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [PREFECT, *args],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [PREFECT, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_healthy(self, server: subprocess.Popen[bytes], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert server.poll() is None, f"the server exited:\n{_tail(self.tmp / 'server.log')}"
            try:
                if requests.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        pytest.fail(f"the server did not answer in {timeout} s:\n{_tail(self.tmp / 'server.log')}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    try:
        args = ["server", "start", "--host", "127.0.0.1", "--port", str(running.port)]
        server = running.start("server", args, running.env)
        running.wait_healthy(server)
        yield running
    finally:
        running.stop()


def _run(cluster: Cluster, deployment: str, parameters: dict[str, Any]) -> Any:
    """Run a deployment through the server and wait for its final state (the flow run)."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: cluster.api}):
        return run_deployment(deployment, parameters=parameters, timeout=600, poll_interval=2)


def _deployment(cluster: Cluster, name: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: cluster.api}),
        get_client(sync_client=True) as client,
    ):
        return client.read_deployment_by_name(name)


def test_deployments_run_on_a_process_worker(
    cluster: Cluster, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path / "data"
    world = tiny_world(seed=SEED, epoch=EPOCH)
    stage_world(Store(data, world.grid), world, TRAIN[0], HISTORY_END)
    day = HISTORY_END + timedelta(days=1)
    endpoints = tmp_path / "endpoints.json"
    twin = start_twin(endpoints, today_for(day), replicas=tmp_path_factory.mktemp("replicas"))
    try:
        cluster.cli("work-pool", "create", POOL, "--type", "process")
        out = cluster.cli(
            "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"
        )
        for name in ("smda-daily/daily", "smda-backfill/backfill", "smda-train/train"):
            assert name in out
        daily = _deployment(cluster, "smda-daily/daily")
        [schedule] = daily.schedules
        assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 6 * * *", "UTC")
        assert _deployment(cluster, "smda-backfill/backfill").schedules == []
        assert _deployment(cluster, "smda-train/train").work_pool_name == POOL

        worker_env = {**cluster.env, **smda_environment(data, endpoints)}
        cluster.start("worker", ["worker", "start", "--pool", POOL], worker_env)

        config = TypeAdapter(TrainConfig).dump_python(TINY_TRAINING, mode="json")
        trained = _run(
            cluster,
            "smda-train/train",
            {"start": str(TRAIN[0]), "end": str(TRAIN[1]), "config": config, **TRAIN_OPTIONS},
        )
        assert trained.state.is_completed(), _tail(tmp_path / "worker.log")

        ran = _run(cluster, "smda-daily/daily", {})
        assert ran.state.is_completed(), _tail(tmp_path / "worker.log")
        assert ran.state.name == "Completed", ran.state.message
    finally:
        twin.stop()
    settings = Settings(data_dir=data, spinup_days=SPINUP)
    rt = open_runtime(settings, region=REGION, today=today_for(day))
    assert rt.chain.last() == day
    assert rt.publisher.cog_path(day).is_file()
