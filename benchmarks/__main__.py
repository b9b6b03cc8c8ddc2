"""Run benchmarks and print their figures: ``python -m benchmarks [name ...] [--quick]``.

Without names every benchmark but ``scale`` and ``train`` runs (``scale`` takes ~3 minutes on
2 cores once its global files are made, longer the first time: name it; ``--quick`` gives it a tiny configuration; ``train`` trains on a staged
region-year: name it, ``--before`` adds the protocol before issue 14, ``--data=DIR`` a store
already staged; ``train-memory`` the scaled training's memory against the region's size;
``operations --model=FILE`` steps the global days with any LightGBM model file;
``global-year`` stages a global year day by day and trains on it at scale).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import (
    global_year,
    ingest,
    operations,
    osse,
    scale,
    science,
    stage_global,
    train,
    train_memory,
    twin,
)

BENCHMARKS: dict[str, Callable[[], None]] = {
    "stage": stage_global.main,
    "ingest": ingest.main,
    "science": science.main,
    "operations": lambda: operations.main([]),
    "osse": osse.main,
    "twin": twin.main,
}
OPT_IN: dict[str, Callable[[list[str]], None]] = {
    "scale": scale.main,
    "train": train.main,
    "train-memory": train_memory.main,
    "global-year": global_year.main,
}
"""Benchmarks that run only when named; they take the options."""
WITH_OPTIONS: dict[str, Callable[[list[str]], None]] = {"operations": operations.main}
"""Benchmarks of the default run that take options when named (``operations --model=FILE``)."""


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    options = [a for a in argv if a.startswith("-")]
    unknown = [n for n in names if n not in BENCHMARKS and n not in OPT_IN]
    if unknown:
        choices = ", ".join([*BENCHMARKS, *OPT_IN])
        print(f"unknown benchmark(s) {unknown}; choose from {choices}", file=sys.stderr)
        return 2
    takes = {**OPT_IN, **WITH_OPTIONS}
    if options and not any(n in takes for n in names):
        print(f"options {options} are for {', '.join(takes)} only", file=sys.stderr)
        return 2
    for name in names:
        if name in takes and (options or name in OPT_IN):
            takes[name](options)
        else:
            BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
