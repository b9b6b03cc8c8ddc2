"""``python -m benchmarks train-memory``: the scaled training's memory against the region's size,
run end to end on two tiny regions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.train_memory import main

ROOT = Path(__file__).resolve().parents[1]


def test_an_unknown_option_is_refused_before_any_staging() -> None:
    with pytest.raises(SystemExit, match="unknown option"):
        main(["--size=8"])


@pytest.mark.slow
def test_prints_client_and_worker_peaks_and_the_projection(tmp_path: Path) -> None:
    env = {**os.environ, "SMDA_BENCH_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    args = ["train-memory", "--sizes=8,12", "--days=20", "--budget=600"]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    peaks = re.findall(r"client peak +(\d+) MB .*workers (\d+), (\d+) MB; (\d+) rows kept", out)
    assert len(peaks) == 3, out  # two sizes, then the larger with 16 × the budget
    for client, *workers, rows in peaks:
        assert int(client) > 50 and all(int(w) > 50 for w in workers) and int(rows) > 0
    assert int(peaks[2][3]) > int(peaks[1][3])  # the larger budget keeps more rows
    assert out.count("8 GB holds") == 2, out
    assert not list(tmp_path.glob("train-memory-*"))  # each run's band files are removed
