"""Run every benchmark and print its figures: ``python -m benchmarks [name ...]``."""

from __future__ import annotations

import sys

from benchmarks import ingest, operations, osse, science, stage_global, twin

BENCHMARKS = {
    "stage": stage_global.main,
    "ingest": ingest.main,
    "science": science.main,
    "operations": operations.main,
    "osse": osse.main,
    "twin": twin.main,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr
        )
        return 2
    for name in names:
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
