"""One writer per region: a second process waits, then gives up naming the holder (exit 73);
a killed holder releases at once; threads of one process share the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from smda.storage.locks import EXIT_BUSY, RegionBusy, WriterLock

HOLD = """
import sys, time
from smda.storage.locks import WriterLock
with WriterLock(sys.argv[1], "the store of r-test", timeout=0)("smda backfill --start X"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path) -> subprocess.Popen[str]:
    """Another process holding the lock ``tmp_path / "store.lock"``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "store.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_gives_up_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = WriterLock(tmp_path / "store.lock", "the store of r-test", timeout=0.5)
    with pytest.raises(RegionBusy) as caught, lock():
        pass
    message = str(caught.value)
    assert f"pid {holder.pid}" in message and "smda backfill --start X" in message
    assert caught.value.exit_code == EXIT_BUSY == 73
    assert lock.holder() is not None and lock.holder().pid == holder.pid  # type: ignore[union-attr]


def test_a_killed_holder_releases_the_lock_at_once(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = WriterLock(tmp_path / "store.lock", "the store of r-test", timeout=5)
    with lock() as me:
        assert me.pid == os.getpid()
    assert lock.holder() is None


def test_a_waiting_writer_gets_the_lock_when_the_holder_ends(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    threading.Timer(0.5, holder.kill).start()
    started = time.monotonic()
    with WriterLock(tmp_path / "store.lock", "the store", timeout=30)():
        pass
    assert time.monotonic() - started < 30


def test_threads_of_one_process_share_the_lock(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "chain.lock", "the chain", timeout=0)
    entered: list[int] = []
    with lock():

        def use() -> None:
            with lock():
                entered.append(1)

        worker = threading.Thread(target=use)
        worker.start()
        worker.join(10)
        assert lock.held()
    assert entered == [1]
    assert not lock.held()


def test_cli_exits_73_when_another_process_writes_the_region(tmp_path: Path) -> None:
    from smda.geo.grid import BBox, region_grid
    from smda.storage.store import region_key

    key = region_key(region_grid(BBox.parse("-101,34,-98,37")))
    lock = tmp_path / "data" / "locks" / key / "chain.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        env = {
            **os.environ,
            "SMDA_DATA_DIR": str(tmp_path / "data"),
            "SMDA_LOCK_TIMEOUT": "0",
        }
        done = subprocess.run(
            [sys.executable, "-m", "smda", "verify", "--region=-101,34,-98,37"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 73, done.stderr
    said = " ".join(done.stderr.split())  # the console wraps long lines
    assert f"pid {proc.pid}" in said and "Traceback" not in said
