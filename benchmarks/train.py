"""The cost of ``smda train``'s default protocol on a region-year, beside its CV skill:
``python -m benchmarks train [--before] [--data=DIR]``.

The twin's demo region (10° × 10°, 1600 land cells, seed 42) is staged for 2015 (plus 30 days
of MSWEP history) with ``tests/staged_world.py`` once, under ``$SMDA_BENCH_DIR/train``
(``--data=DIR``: a store already staged the same way, e.g. by ``/work/bench/stage_year.py``;
only read). :func:`smda.ops.train.train_from_store` then trains on 2015-01-01 … 12-31 with the
default :class:`smda.science.model.TrainConfig` (blocked CV, one DAgger round, early stopping
with its RMSE tolerance), and prints the wall and CPU seconds per step, the trees of every fold
and the blocked CV skill (teacher-forced and free-running median R and ubRMSD against the
label). ``--before`` also trains with the protocol ``smda train`` had before issue 14: no early
stopping tolerance (every fit runs to the 1000-tree cap), 50 trees of patience and random-cell
CV beside the blocked one (the rows are binned once in both). ``--set=NAME=VALUE`` (repeatable) trains instead with those
fields of :class:`smda.science.bundle.HyperParams` changed (e.g. ``--set=learning_rate=0.1``), to
weigh a cheaper protocol by its CV skill against the labels. The machine's load average is printed with the figures:
the timings are only as quiet as the machine. The final model of the first protocol run is
written to ``$SMDA_BENCH_DIR/train/model-<protocol>.txt`` (``python -m benchmarks scale
--model=FILE`` steps a global day with it).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import fields, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

SEED = 42
START, END = date(2015, 1, 1), date(2015, 12, 31)
CHUNK_DAYS = 92
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
USAGE = "usage: python -m benchmarks train [--before] [--data=DIR] [--set=NAME=VALUE ...]"


def _store(data: Path | None) -> Any:
    """The staged region-year's store (staged under the cache unless ``data`` is given)."""
    from smda.storage.store import Store
    from smda_twin.world import DEMO_REGION, World, WorldSpec

    world = World(WorldSpec(seed=SEED, region=DEMO_REGION))
    if data is not None:
        return Store(data, world.grid)
    root = CACHE / "train" / "region-year"
    store = Store(root, world.grid)
    marker = root / "train_staged.json"
    spec = {"seed": SEED, "region": str(DEMO_REGION), "start": str(START), "end": str(END)}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return store
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from staged_world import stage_world

    t0, first = time.perf_counter(), START
    while first <= END:
        last = min(first + timedelta(days=CHUNK_DAYS - 1), END)
        stage_world(store, world, first, last, history_days=30 if first == START else 1)
        print(f"  staged {first} … {last} ({time.perf_counter() - t0:.0f} s)", flush=True)
        first = last + timedelta(days=1)
    marker.write_text(json.dumps(spec))
    return store


def _run(store: Any, name: str, config: Any, model_out: Path | None = None) -> list[str]:
    from smda.ops.train import train_from_store

    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = train_from_store(store, START, END, config=config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lines = [
        f"{name}: {wall:.0f} s wall, {cpu:.0f} s CPU (load average {load:.1f} at the start,"
        f" {os.getloadavg()[0]:.1f} at the end; 2 cores) — {outcome.cells} cells ×"
        f" {outcome.days} days, final model {outcome.bundle.num_trees} trees",
        "  steps (s): " + ", ".join(f"{k} {v:.0f}" for k, v in outcome.seconds.items()),
    ]
    for scheme, rep in outcome.bundle.cv_report.items():
        tf, fr = rep["teacher_forced"], rep["free_running"]
        lines += [
            f"  {scheme} CV ({rep['n_folds']} folds, {rep['block_deg']:g}°): teacher-forced"
            f" R {tf['r']:.4f} ubRMSD {tf['ubrmsd']:.4f}; free-running R {fr['r']:.4f}"
            f" ubRMSD {fr['ubrmsd']:.4f}",
            f"    trees per fold (early-stopping best): {rep['best_iterations']}",
        ]
    if model_out is not None:
        from smda.storage.atomic import atomic_write_bytes

        atomic_write_bytes(model_out, outcome.bundle.model.encode())
        lines.append(f"  final model written to {model_out}")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    given = [a.removeprefix("--data=") for a in args if a.startswith("--data=")]
    data = Path(given[-1]) if given else None
    unknown = [a for a in args if a != "--before" and not a.startswith(("--data=", "--set="))]
    if unknown:
        raise SystemExit(f"unknown option(s) {unknown}; {USAGE}")
    from smda.science.bundle import HyperParams
    from smda.science.model import TrainConfig

    changes = _changes([a.removeprefix("--set=") for a in args if a.startswith("--set=")])

    store = _store(data)
    print("train — smda train's default protocol on the demo region, 2015", flush=True)
    if changes:
        name = ", ".join(f"{k}={v}" for k, v in changes.items())
        variant = TrainConfig(hyper=replace(HyperParams(), **changes))
        out = CACHE / "train" / f"model-{'-'.join(f'{k}={v}' for k, v in changes.items())}.txt"
        print("\n".join(_run(store, f"default protocol with {name}", variant, out)), flush=True)
    else:
        out = CACHE / "train" / "model-default.txt"
        print("\n".join(_run(store, "default protocol", TrainConfig(), out)), flush=True)
    if "--before" in args:
        before = TrainConfig(
            hyper=HyperParams(early_stopping_rounds=50, early_stopping_min_delta=0.0),
            compare=("random",),
        )
        print("\n".join(_run(store, "before issue 14", before)), flush=True)


def _changes(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as HyperParams fields of their declared type."""
    from smda.science.bundle import HyperParams

    types = {f.name: type(getattr(HyperParams(), f.name)) for f in fields(HyperParams)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in types or not value:
            raise SystemExit(f"--set={pair}: give NAME=VALUE, NAME one of {sorted(types)}")
        out[name] = types[name](value)
    return out


if __name__ == "__main__":
    main()
