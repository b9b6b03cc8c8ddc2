"""The offline twin's cost: ten years of the demo region's truth, and its products.

Each figure is measured in a fresh world (nothing memoised), in this process:

- ``truth`` — ten years (2015–2024) of the demo region's truth (1600 cells × 4 tiles + 12
  stations, two layers, after a year of spin-up) — target ≤ 10 s;
- ``era5land``, ``gldas`` — the same ten years of each model product's own run;
- ``smap`` — one year of gridded daily SMAP (retrievals of both passes binned to 0.25°);
- peak memory (VmHWM).

Run: ``python -m benchmarks twin``.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> None:
    from smda_twin.world import DEMO_REGION, World, WorldSpec

    start, end = date(2015, 1, 1), date(2024, 12, 31)
    figures: dict[str, float] = {}
    world = World(WorldSpec(seed=42, region=DEMO_REGION))
    t0 = time.perf_counter()
    truth = world.truth(start, end)
    figures["truth 10 years"] = time.perf_counter() - t0
    for name in ("era5land", "gldas"):
        t0 = time.perf_counter()
        world.product_daily(name, start, end)
        figures[f"{name} 10 years"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    world.product_daily("smap", date(2016, 1, 1), date(2016, 12, 31))
    figures["smap 1 year (gridded)"] = time.perf_counter() - t0
    print(f"twin: demo region {world.grid.shape}, {truth.sizes['time']} days of truth")
    for name, seconds in figures.items():
        print(f"  {name:24s} {seconds:6.1f} s")
    print(f"  peak memory              {_peak_mb():6.0f} MB")
