"""The README's run command, end to end, as a new user runs it, twice (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pystac
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from smda.cli.demo import QUICK, run_demo
from smda.config import Settings
from smda.ops import open_runtime, stale_days

REGION = "r0.25_200_300_40x40"  # the demo region, 30–40° N, 105–95° W

SMALL = QUICK  # `smda demo --quick`


def _demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CDSAPI", "EARTHDATA", "SMDA_"))
    }
    env.update(SMDA_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), SMDA_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "smda", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=1500,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smda_demo_trains_backfills_runs_daily_publishes_and_reruns(
    tmp_path: Path,
) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    data = tmp_path / "data"
    products = data / "products" / REGION
    cogs = sorted((products / "cog").rglob("smda_sm_????????.tif"))
    assert len(cogs) == 40 + 3  # the backfill and three daily runs
    assert len(sorted((products / "cog").rglob("*_flags.tif"))) == len(cogs)
    for cog in (cogs[0], cogs[-1], cogs[-1].with_name(f"{cogs[-1].stem}_flags.tif")):
        valid, errors, _ = cog_validate(str(cog))
        assert valid, errors
        with rasterio.open(cog) as src:
            assert src.crs.to_epsg() == 4326
            assert src.res == (0.25, 0.25)
            assert tuple(round(v, 6) for v in src.bounds) == (-105.0, 30.0, -95.0, 40.0)
            if cog.stem.endswith("_flags"):
                assert src.descriptions == ("flags", "obs_count") and src.dtypes[0] == "uint8"
            else:
                assert src.descriptions == ("analysis", "uncertainty")
                assert src.units[0] == src.tags(1)["units"] == "m3 m-3"
    catalog = pystac.Catalog.from_file(str(products / "stac" / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert len(items) == len(cogs)
    assert "OSSE" in first.stdout and "analysis" in first.stdout and "open_loop" in first.stdout
    reports = sorted((data / "reports" / REGION).glob("evaluation_*.json"))
    assert len(reports) == 1
    table = json.loads(reports[0].read_text())["tables"]["truth"]
    assert {"analysis", "open_loop", "smap", "era5land", "climatology"} <= set(table)
    assert table["analysis"]["r"] > table["climatology"]["r"]
    # the demo shows assimilation at work: the nudged analysis ahead of the free-running model
    assert table["analysis"]["r"] > table["open_loop"]["r"]
    assert table["analysis"]["ubrmsd"] < table["open_loop"]["ubrmsd"]
    assert "trained" in first.stdout
    again = _demo(tmp_path)  # rerunnable: the model and the staged inputs are reused
    assert again.returncode == 0, again.stderr[-3000:]
    said = " ".join(again.stdout.split())  # rich may wrap lines
    assert "(reused)" in said, again.stdout[-2500:]
    assert len(sorted((products / "cog").rglob("*.tif"))) == 2 * len(cogs)
    assert not list(data.rglob("*.part")), "no temporary files may be left behind"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_second_demo_on_the_same_data_computes_no_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's daily runs re-fetch the MSWEP NRT files the twin revised since the backfill
    (its antecedent window) and recompute the days made of them; so the first demo leaves no
    stale day behind and a second one, nothing having changed, computes none."""
    for name in [k for k in os.environ if k.startswith("SMDA_")]:
        monkeypatch.delenv(name)
    settings = Settings(data_dir=tmp_path / "data")

    first = run_demo(settings, tmp_path / "twin", SMALL)

    backfilled = first.runs[: SMALL.backfill_days]
    daily = first.runs[SMALL.backfill_days :]
    assert all(r.status != "skipped" for r in first.runs)
    # each daily run also recomputed analysed days whose inputs the twin had revised
    assert len(daily) > SMALL.daily_runs and min(r.day for r in daily) <= backfilled[-1].day
    rt = open_runtime(settings, region=SMALL.region, today=SMALL.today)
    assert stale_days(rt) == []

    again = run_demo(settings, tmp_path / "twin", SMALL)

    assert not again.trained and again.model_version == first.model_version
    assert [(r.day, r.status) for r in again.runs if r.status != "skipped"] == []
    assert len(again.runs) == SMALL.backfill_days
    assert all("waiting" in line for line in again.daily), again.daily
    assert stale_days(rt) == []
