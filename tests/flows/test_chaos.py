"""Chaos: backfills and daily runs killed at random moments, a second writer, provider faults
and truncated files — and at the end, after one ``smda verify --repair``, everything verifies
and every state file and COG is byte-identical to a clean run's.

The runs are real ``smda`` processes (``python -m smda backfill …`` / ``run``) against a twin of
the flow tests' world (its clock such that the days after the staged history must be fetched).
The random choices come from a seeded generator (the seed is printed), and the counts of kills,
conflicts, faults and corruptions are printed at the end (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import IO

import pytest
from flow_helpers import (
    EPOCH,
    HISTORY_END,
    SEED,
    TINY_TRAINING,
    TRAIN,
    TRAIN_OPTIONS,
    copy_data,
    hash_outputs,
    runtime,
    smda_environment,
    start_twin,
)
from staged_world import stage_world, tiny_world

from smda.ingest.sources import OPERATIONAL
from smda.ops.train import train_from_store
from smda_twin.faults import Fault

pytestmark = pytest.mark.slow

START = date(2024, 5, 6)
BACKFILL_END = HISTORY_END + timedelta(days=3)
TODAY = HISTORY_END + timedelta(days=5 + 6)  # ERA5 published up to H + 6: `smda run` adds 3
ROUNDS = 8
FAULTS = (
    ("cds", Fault("status", status=500, times=2)),
    ("mswep", Fault("truncate", path=r"\.nc", method="GET", times=1)),
    ("earthdata", Fault("reset", times=1)),
    ("cds", Fault("status", status=429, retry_after=1, times=1)),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained on the world's staged products, and no operational input staged:
    the runs fetch them from the twin (so that a truncated input is staged again from the same
    provider file as in the clean run)."""
    data = tmp_path_factory.mktemp("chaos") / "data"
    rt = runtime(data, HISTORY_END)
    stage_world(rt.store, tiny_world(seed=SEED, epoch=EPOCH), TRAIN[0], HISTORY_END)
    outcome = train_from_store(rt.store, *TRAIN, config=TINY_TRAINING, **TRAIN_OPTIONS)
    rt.registry.register(outcome.bundle)
    for source in OPERATIONAL:  # the runs fetch their inputs from the twin, as in operations
        shutil.rmtree(rt.store.root / "staged" / rt.region / source)
        (rt.store.ledger_dir / f"{source}.json").unlink()
    return data


def _smda(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start ``smda ARGS``; its output goes to a temporary file (a pipe nobody reads while the
    test waits could fill up and stall it)."""
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by _finish
    proc = subprocess.Popen(
        [sys.executable, "-m", "smda", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _LOGS[proc.pid] = log
    return proc


_LOGS: dict[int, IO[str]] = {}


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    proc.wait(timeout=timeout)
    log = _LOGS.pop(proc.pid)
    log.seek(0)
    out = log.read()
    log.close()
    return proc.returncode, out


def _env(data: Path, endpoints: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **smda_environment(data, endpoints), "SMDA_LOCK_TIMEOUT": "120", **extra}


BACKFILL = ("backfill", "--start", START.isoformat(), "--end", BACKFILL_END.isoformat())


def _clean_run(env: dict[str, str]) -> None:
    """A backfill, then a daily run (75: the chain is already at the newest day published)."""
    code, out = _finish(_smda(env, *BACKFILL))
    assert code == 0, out
    code, out = _finish(_smda(env, "run"))
    assert code in (0, 75), out


def _outputs(data: Path) -> dict[str, str]:
    """Digests of the state files and COGs (the products a user reads)."""
    return {k: v for k, v in hash_outputs(data).items() if k.endswith((".nc", ".tif"))}


def _truncate_one(data: Path, rng: random.Random) -> Path | None:
    files = [
        p
        for pattern in ("staged/*/*/*/*.nc", "state/*/*/state_*.nc", "products/*/cog/*/*.tif")
        for p in data.glob(pattern)
        if p.stat().st_size > 1000
    ]
    if not files:
        return None
    victim = rng.choice(sorted(files))
    with victim.open("r+b") as fh:
        fh.truncate(victim.stat().st_size // 2)
    return victim


def test_chaos_then_one_repair_gives_a_clean_runs_bytes(template: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("SMDA_CHAOS_SEED", "20261205"))
    rng = random.Random(seed)
    twin = start_twin(tmp_path / "endpoints.json", TODAY, replicas=tmp_path / "replicas")
    try:
        clean = copy_data(template, tmp_path / "clean")
        _clean_run(_env(clean, tmp_path / "endpoints.json"))
        reference = _outputs(clean)
        assert len([k for k in reference if k.endswith(".tif")]) == 2 * ((TODAY - START).days - 4)

        data = copy_data(template, tmp_path / "chaos")
        env = _env(data, tmp_path / "endpoints.json")
        busy_env = {**env, "SMDA_LOCK_TIMEOUT": "0"}
        seen: Counter[str] = Counter()
        for _ in range(ROUNDS):
            provider, fault = rng.choice(FAULTS)
            twin.add_fault(provider, Fault(**{**fault.__dict__, "fired": 0}))
            seen["faults"] += 1
            if _truncate_one(data, rng) is not None:
                seen["corruptions"] += 1
            first = _smda(env, *BACKFILL)
            kill_at = time.monotonic() + rng.uniform(1.0, 10.0)
            time.sleep(rng.uniform(0.5, 3.0))
            second = _smda(busy_env, *rng.choice((BACKFILL, ("run",))))
            while first.poll() is None and time.monotonic() < kill_at:
                time.sleep(0.05)
            if first.poll() is None:
                first.send_signal(signal.SIGKILL)
                seen["kills"] += 1
            for proc in (first, second):
                code, out = _finish(proc)
                assert code in (0, 1, 73, 75, -signal.SIGKILL), out
                assert "Traceback" not in out, out
                seen["conflicts"] += proc is second and code == 73
        for plan in twin.faults.values():
            plan.clear()
        _clean_run(env)  # the scheduler's next runs
        code, out = _finish(_smda(env, "verify", "--repair"))
        assert code == 0, out
        code, out = _finish(_smda(env, "verify"))
        assert code == 0, out
        assert _outputs(data) == reference
        print(f"\nchaos (seed {seed}) survived: {dict(seen)}")
        assert seen["kills"] >= 1 and seen["conflicts"] >= 1 and seen["corruptions"] >= 1
    finally:
        twin.stop()
