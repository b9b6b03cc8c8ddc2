"""``smda backfill --dask-scheduler`` on a real Dask cluster on loopback (a ``dask scheduler``
and two ``dask worker`` processes): the one-process run's bytes, with one worker SIGKILLed in
the middle of the run, and an idempotent re-run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client
from monitoring_stack import free_port, stop_group
from ops_runtime import LAST, RUN, digests, runtime_for

from smda.ops.days import backfill_days
from smda_twin.world import World

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DAYS = (LAST - RUN).days + 1
DASK = [sys.executable, "-m", "distributed.cli"]


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen[bytes]]


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        _start(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        for i in range(2):  # no nanny: a killed worker stays dead
            procs.append(
                _start(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"w{i}",
                        "--dashboard-address",
                        ":0",
                    ],
                    tmp_path / f"worker{i}.log",
                )
            )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield Cluster(address, procs[1:])
    finally:
        for proc in reversed(procs):
            stop_group(proc)


def _backfill(data: Path, world: World, address: str, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SMDA_DATA_DIR": str(data),
        "SMDA_SPINUP_DAYS": "3",
        "SMDA_DASK_SCHEDULER": address,
    }
    region = ",".join(
        str(v)
        for v in (
            world.spec.region.west,
            world.spec.region.south,
            world.spec.region.east,
            world.spec.region.north,
        )
    )
    args = [
        sys.executable,
        "-m",
        "smda",
        "backfill",
        "--start",
        str(RUN),
        "--end",
        str(LAST),
        "--region",
        region,
        "--no-fetch",
        "--tile-cells",
        "4",
        "--block-days",
        "1",
        *extra,
    ]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        start_new_session=True,
    )


def test_a_backfill_on_a_dask_cluster_survives_a_killed_worker_with_the_same_bytes(
    template: Path, world: World, cluster: Cluster, tmp_path: Path
) -> None:
    one = runtime_for(_copy(template, tmp_path / "one"), world)
    backfill_days(one, RUN, LAST)
    data = _copy(template, tmp_path / "tiled")
    run = _backfill(data, world, cluster.address)
    tiles = Path(runtime_for(data, world).chain.url) / "_tiles"
    deadline = time.monotonic() + 90
    while len(list(tiles.glob("*/*.npz"))) < 4 and run.poll() is None:  # the first block done
        assert time.monotonic() < deadline, "no tile file appeared"
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before a worker could be killed"
    os.kill(cluster.workers[0].pid, signal.SIGKILL)  # in the middle of the run
    out, _ = run.communicate(timeout=180)
    assert run.returncode == 0, out
    assert cluster.workers[0].wait(timeout=10) == -signal.SIGKILL
    assert f"{DAYS} day(s) computed" in out
    computed, reused = map(
        int, re.findall(r"tiles: (\d+) block\(s\) computed, (\d+) reused", out)[0]
    )
    assert computed + reused == 4 * DAYS  # 4 one-row tiles × 1-day blocks, each done once
    assert digests(runtime_for(data, world)) == digests(one)
    again = _backfill(data, world, cluster.address)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out
    assert "0 day(s) computed" in out and "tiles: 0 block(s) computed" in out
    assert digests(runtime_for(data, world)) == digests(one)


def _copy(template: Path, root: Path) -> Path:
    shutil.copytree(template, root / "data")
    return root / "data"
