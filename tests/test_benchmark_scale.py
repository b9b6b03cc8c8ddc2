"""``python -m benchmarks scale --quick`` prints every row of its table with sane figures."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scale import PARTS, QUICK, WORKERS, main

ROOT = Path(__file__).resolve().parents[1]


def _numbers(line: str) -> list[float]:
    out = []
    for word in line.replace(",", " ").split():
        try:
            out.append(float(word))
        except ValueError:
            continue
    return out


def _expected_rows(part: str) -> int:
    """Points of ``part`` in the quick configuration: the cells axis, then the other days."""
    if part == "training":
        return len(QUICK.train_cells) + len(
            [d for d in QUICK.train_days if d != QUICK.train_fixed_days]
        )
    if part == "staging":
        return len(QUICK.cells)
    days = QUICK.step_days if part == "stepping" else QUICK.publish_days
    return len(QUICK.cells) + len(days) - 1


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_scale_benchmark_prints_every_row_with_positive_finite_figures(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "SMDA_BENCH_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "scale", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for part in PARTS:
        rows = [line for line in lines if line.startswith(f"{part} ")]
        assert len(rows) == _expected_rows(part), (part, rows)
        for row in rows:
            cells, days, seconds, per_day, peak = _numbers(row)[:5]
            assert cells > 0 and days >= 1, row
            for value in (seconds, per_day, peak):
                assert math.isfinite(value) and value > 0, row
            if part != "training":
                ratio = _numbers(row)[5]
                assert math.isfinite(ratio) and ratio > 0, row
    assert any(line.startswith("floor of a ") for line in lines)
    assert any(line.startswith("model stepped: the quick run's fit (") for line in lines)
    targets = [line for line in lines if "(≤ " in line or "(≥ " in line]
    assert len(targets) == 3, targets
    assert all(("pass" in t) or ("MISS" in t) for t in targets)
    per_minute = next(t for t in targets if "days per minute" in t)
    assert (
        "publish overlapped with the next step" in per_minute
        and "one after the other" in per_minute
    )
    for n in WORKERS:
        projected = [line for line in lines if line.strip().startswith(f"N = {n:2d}:")]
        assert len(projected) == 2, projected  # the backfill and the training
        for line in projected:
            hours = _numbers(line.split(":", 1)[1])[0]
            assert math.isfinite(hours) and hours > 0, line
    fitted = [line for line in lines if line.startswith("  ") and " = " in line and "per " in line]
    assert {line.split()[0] for line in fitted} >= set(PARTS)


def test_a_missing_model_file_is_refused_before_any_measurement(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no such file"):
        main(["--quick", f"--model={tmp_path / 'model.txt'}"])


def test_an_unknown_option_is_refused_with_the_usage() -> None:
    with pytest.raises(SystemExit, match=r"unknown option.*--model=FILE"):
        main(["--fast"])
