"""The ismn source on a real ISMN download (Hawaii, CEOP-separate format)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from smda.config import Settings
from smda.errors import ConfigError
from smda.geo.grid import BBox
from smda.ingest.context import make_context
from smda.ingest.fetch import fetch_range
from smda.ingest.readers.ismn import read_ismn


def test_ismn_download_staged_per_day(real_data: Path, tmp_path: Path) -> None:
    download = real_data / "colocated" / "hawaii_qa4sm" / "ismn_ceop"
    ctx = make_context(
        Settings(data_dir=tmp_path),
        region=BBox(-156, 19, -155, 20),
        today=date(2025, 1, 1),
        ismn_path=download,
    )
    report = fetch_range(["ismn"], date(2017, 2, 1), date(2017, 2, 10), ctx)
    with tempfile.TemporaryDirectory() as work:
        [pua] = [s for s in read_ismn(download, workdir=Path(work)) if s.station == "PuaAkala"]
    expected = pua.soil_moisture["2017-02-01":"2017-02-10"]
    fetched = report.by_status("fetched")
    assert report.ok and len(fetched) == len(expected) > 0, report.outcomes
    assert {o.status for o in report.outcomes} == {"fetched", "not_available"}
    first = fetched[0].day
    ds = ctx.store.open_staged("ismn", first)
    assert float(ds.soil_moisture[0]) == pytest.approx(float(expected.iloc[0]), rel=1e-6)
    # surface sensors only: SCAN Pua Akala (5.08 cm, G values from 2017-01-16); COSMOS (0–17 cm)
    # is too deep; SCAN Silver Sword starts in 2018
    assert list(ds.station.values) == ["SCAN/PuaAkala/Hydraprobe-Analog-(2.5-Volt)"]
    assert 0.0 < float(ds.soil_moisture[0]) < 0.7
    assert np.isclose(float(ds.lat[0]), 19.8)
    again = fetch_range(
        ["ismn"],
        date(2017, 2, 1),
        date(2017, 2, 10),
        make_context(
            Settings(data_dir=tmp_path),
            region=BBox(-156, 19, -155, 20),
            today=date(2025, 1, 1),
            ismn_path=download,
        ),
    )
    assert {o.status for o in again.outcomes} <= {"skipped", "not_available"}
    assert len(again.by_status("skipped")) == len(expected)


def test_ismn_without_a_download_says_what_to_do(tmp_path: Path) -> None:
    ctx = make_context(
        Settings(data_dir=tmp_path), region=BBox(-156, 19, -155, 20), today=date(2025, 1, 1)
    )
    report = fetch_range(["ismn"], date(2017, 1, 1), date(2017, 1, 1), ctx)
    assert report.outcomes[0].status == "failed" and "--ismn" in report.outcomes[0].reason
    with pytest.raises(ConfigError):
        from smda.ingest.sources import get_source

        get_source("ismn").newest_available(ctx)


def test_twin_ismn_download_round_trip(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from smda.cli import app

    archive = tmp_path / "ismn.zip"
    args = ["twin", "ismn", "--start", "2024-02-01", "--end", "2024-02-10", "--out", str(archive)]
    result = CliRunner().invoke(app, [*args, "--region=-100,35,-99,36", "--epoch", "2023-10-01"])
    assert result.exit_code == 0, result.output
    ctx = make_context(
        Settings(data_dir=tmp_path / "d"),
        region=BBox(-100, 35, -99, 36),
        today=date(2025, 1, 1),
        ismn_path=archive,
    )
    report = fetch_range(["ismn"], date(2024, 2, 1), date(2024, 2, 10), ctx)
    assert len(report.by_status("fetched")) == 10, report.outcomes
    ds = ctx.store.open_staged("ismn", date(2024, 2, 5))
    assert ds.sizes["station"] >= 8  # most of the 12 stations have ≥ 12 good hours that day
    assert np.all((ds.soil_moisture > 0) & (ds.soil_moisture < 0.6))
