"""Ingest time and peak memory: one month of every source through the offline twin.

What the demo does before it can train: start a fresh offline twin in this process (the
replicas run in background threads, as ``smda demo`` runs them), point the real clients
(cdsapi, earthaccess, fsspec) at it, and ``fetch_range`` one month of each source for the
demo region — download, check, stage on the 0.25° grid, write with provenance. The twin's
files are generated on demand during the run (its workdir starts empty), so the figures
include the twin's side; the world's one-off water-balance spin-up is timed on its own line.

Peak resident memory (``VmHWM``) is reset before each source where the kernel allows it
(``/proc/self/clear_refs``), so each row shows that source's peak. ``cpu s`` is the CPU time
of the whole process (client and twin threads) during the source: on a shared machine it
varies much less with the load than the elapsed time does.
"""

from __future__ import annotations

import logging
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.procstat import reset_peak
from smda.geo.grid import BBox

REGION = BBox(-105, 30, -95, 40)
TODAY = date(2024, 7, 20)
START, END = date(2024, 5, 1), date(2024, 5, 31)
SOURCES = ("era5", "era5land", "mswep", "smap", "gldas")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU time (user + system, all threads) of this process so far, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


Row = tuple[str, float, float, dict[str, int], float]  # source, elapsed s, cpu s, outcomes, MB


def _run(workdir: Path) -> tuple[float, list[Row]]:
    """Spin the world up, then fetch the month of each source; (spin-up s, rows)."""
    from smda.config import Settings
    from smda.ingest.context import make_context
    from smda.ingest.fetch import fetch_range
    from smda_twin.service import Twin, TwinConfig
    from smda_twin.world import WorldSpec

    config = TwinConfig(world=WorldSpec(region=REGION), today=TODAY)
    rows = []
    with Twin(config, workdir / "twin") as twin:
        t0 = time.perf_counter()
        twin.world.truth(START, END)  # the water balance every product derives from
        spin_up = time.perf_counter() - t0
        ctx = make_context(
            Settings(data_dir=workdir / "data"), region=REGION, endpoints=twin.endpoints()
        )
        for name in SOURCES:
            reset_peak()
            t0, c0 = time.perf_counter(), _cpu_s()
            report = fetch_range([name], START, END, ctx)
            elapsed, cpu = time.perf_counter() - t0, _cpu_s() - c0
            rows.append((name, elapsed, cpu, report.counts().get(name, {}), _peak_rss_mb()))
    return spin_up, rows


def main() -> None:
    logging.getLogger("smda").setLevel(logging.ERROR)
    days = (END - START).days + 1
    with tempfile.TemporaryDirectory(prefix="smda-bench-ingest-") as tmp:
        spin_up, rows = _run(Path(tmp))
    print(
        f"\ningest of {START:%Y-%m} ({days} days, region {REGION}) through a fresh in-process "
        f"twin ({os.cpu_count()} cores)"
    )
    print(f"{'source':9} {'total s':>8} {'s/day':>7} {'cpu s':>7} {'peak RSS MB':>12}  outcomes")
    total = total_cpu = 0.0
    for name, elapsed, cpu, counts, rss in rows:
        total += elapsed
        total_cpu += cpu
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"{name:9} {elapsed:8.1f} {elapsed / days:7.2f} {cpu:7.1f} {rss:12.0f}  {outcomes}")
    peak = max(r[4] for r in rows)
    print(f"{'all':9} {total:8.1f} {total / days:7.2f} {total_cpu:7.1f} {peak:12.0f}")
    print(f"(world spin-up before the sources, not included: {spin_up:.1f} s)")


if __name__ == "__main__":
    main()
