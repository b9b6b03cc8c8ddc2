"""Staging time and peak memory for one GLOBAL day of each source, from files on disk.

The offline twin writes global-sized provider files once (ERA5 24 h × 7 forcing variables as
the CDS instant/accum ZIP, MSWEP 0.1°, SPL3SMP_E M09 AM+PM, 8 GLDAS 3-hourly granules,
ERA5-Land ``swvl1`` 0.1° 24 h). Each source's production ``stage`` path (read →
stage on the 0.25° grid → atomic write with provenance) then runs in a fresh process, so the
peak resident memory (``ru_maxrss``) belongs to that source alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

DAY = date(2024, 7, 15)
CACHE = Path(os.environ.get("SMDA_BENCH_DIR", Path(tempfile.gettempdir()) / "smda-bench"))
FORCING = ["t2m", "d2m", "ssrd", "u10", "v10", "sp", "tp"]


def _prepare() -> dict[str, list[str]]:
    """Write the global files once (cached between runs)."""
    from smda.geo.grid import BBox, Grid
    from smda_twin.formats import era5 as era5_fmt
    from smda_twin.formats import gldas as gldas_fmt
    from smda_twin.formats import mswep as mswep_fmt
    from smda_twin.formats import smap as smap_fmt
    from smda_twin.world import World, WorldSpec

    CACHE.mkdir(parents=True, exist_ok=True)
    index = CACHE / "files.json"
    if index.exists():
        return dict(json.loads(index.read_text()))
    world = World(
        WorldSpec(region=BBox(-180, -90, 180, 90), epoch=DAY - timedelta(days=2), spinup_days=10)
    )
    files: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    lat = np.arange(90.0, -90.25, -0.25)
    lon = np.arange(0.0, 360.0, 0.25)
    fields = world.era5_hourly(DAY, lat, (lon + 180) % 360 - 180, FORCING)
    times = np.array(
        [
            np.datetime64(datetime(DAY.year, DAY.month, DAY.day) + timedelta(hours=h), "s")
            for h in range(24)
        ]
    )
    era5 = CACHE / "era5_global.zip"
    era5_fmt.write_era5_response(
        era5, fields=fields, valid_time=times, latitude=lat, longitude=lon, expver=["0005"] * 24
    )
    files["era5"] = [str(era5)]
    mswep = CACHE / mswep_fmt.mswep_filename(DAY)
    mswep_fmt.write_mswep_daily(
        mswep, day=DAY, precipitation=world.mswep_daily(DAY, Grid.global_grid(0.1))
    )
    files["mswep"] = [str(mswep)]
    obs = world.smap_l3e(DAY)
    smap = CACHE / smap_fmt.spl3smp_e_filename(DAY)
    smap_fmt.write_spl3smp_e(smap, day=DAY, am=obs.am, pm=obs.pm)
    files["smap"] = [str(smap)]
    lat_l = np.round(np.arange(900, -901, -1) * 0.1, 1)
    lon_l = np.round(np.arange(-1800, 1800) * 0.1, 1)
    land = world.era5land_hourly(DAY, lat_l, lon_l, ["swvl1"])
    era5land = CACHE / "era5land_global.nc"
    era5_fmt.write_era5_netcdf(
        era5land,
        fields=land,
        valid_time=times,
        latitude=lat_l,
        longitude=lon_l,
        expver=["0005"] * 24,
        dataset="reanalysis-era5-land",
    )
    files["era5land"] = [str(era5land)]
    files["gldas"] = []
    for h in range(0, 24, 3):
        t = datetime(DAY.year, DAY.month, DAY.day, h)
        path = CACHE / gldas_fmt.gldas_filename(t)
        gldas_fmt.write_gldas_noah025_3h(
            path, time=t, fields={"SoilMoi0_10cm_inst": world.gldas_3h(t)}
        )
        files["gldas"].append(str(path))
    print(
        f"prepared global files in {time.perf_counter() - t0:.0f} s under {CACHE}", file=sys.stderr
    )
    index.write_text(json.dumps(files))
    return files


def _stage_one(source_name: str, paths: list[str], out: str) -> dict[str, float]:
    """Child process: stage one global day of ``source_name`` and report time and memory."""
    from smda.geo.grid import GLOBAL_025
    from smda.ingest.sources import get_source
    from smda.ingest.sources.base import IngestContext
    from smda.storage.store import RawFile, Store, sha256_file

    ctx = IngestContext(
        store=Store(Path(out), GLOBAL_025), endpoints=None, today=DAY + timedelta(days=5)
    )
    raw = [
        RawFile(Path(p), Path(p).name, Path(p).stat().st_size, sha256_file(Path(p))) for p in paths
    ]
    source = get_source(source_name)
    t0 = time.perf_counter()
    data = source.stage(DAY, raw, ctx)
    t1 = time.perf_counter()
    ctx.store.write_staged(source_name, DAY, data, raw)
    t2 = time.perf_counter()
    return {
        "stage_s": t1 - t0,
        "write_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited
    across fork + exec from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    files = _prepare()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in ("era5", "mswep", "smap", "era5land", "gldas"):
            code = (
                "import json, sys; from benchmarks.stage_global import _stage_one; "
                f"print(json.dumps(_stage_one({name!r}, {files[name]!r}, {out!r})))"
            )
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            rows.append((name, json.loads(result.stdout.strip().splitlines()[-1])))
    print(
        f"\nstaging one global day ({DAY}) per source, from files on disk ({os.cpu_count()} cores)"
    )
    print(f"{'source':8} {'stage s':>8} {'write s':>8} {'total s':>8} {'peak RSS MB':>12}")
    total = 0.0
    for name, r in rows:
        total += r["total_s"]
        print(
            f"{name:8} {r['stage_s']:8.2f} {r['write_s']:8.2f} {r['total_s']:8.2f} {r['peak_rss_mb']:12.0f}"
        )
    peak = max(r["peak_rss_mb"] for _, r in rows)
    print(f"{'all':8} {'':8} {'':8} {total:8.2f} {peak:12.0f}   (targets: ≤ 15 s, ≤ 4096 MB)")


if __name__ == "__main__":
    main()
