"""The MSWEP file-server replica: daily files, publication by the clock, NRT revisions."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import requests
import xarray as xr

from smda.geo.grid import BBox
from smda_twin.clock import Clock
from smda_twin.faults import FaultPlan
from smda_twin.httpbase import RequestLog
from smda_twin.mswep import MswepReplica
from smda_twin.world import World, WorldSpec

TODAY = date(2024, 7, 20)


@pytest.fixture
def mswep(tmp_path: Path) -> Iterator[MswepReplica]:
    world = World(WorldSpec(seed=3, region=BBox(-100, 35, -99, 36), epoch=date(2024, 1, 1)))
    replica = MswepReplica(
        world, Clock(TODAY), tmp_path / "m", log=RequestLog(), faults=FaultPlan()
    ).start()
    yield replica
    replica.stop()


def url(replica: MswepReplica, day: date) -> str:
    return replica.url_template.format(yyyy=f"{day:%Y}", ddd=f"{day:%j}")


def test_daily_file_layout(mswep: MswepReplica, tmp_path: Path) -> None:
    r = requests.get(url(mswep, date(2024, 7, 1)), timeout=30)
    assert r.status_code == 200
    assert url(mswep, date(2024, 7, 1)).endswith("/2024183.nc")
    (tmp_path / "f.nc").write_bytes(r.content)
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        p = ds["precipitation"]
        assert p.shape[-2:] == (1800, 3600)
        lat = ds[p.dims[-2]].values
        lon = ds[p.dims[-1]].values
        assert lat[0] == pytest.approx(89.95) and lat[-1] == pytest.approx(-89.95)
        assert lon[0] == pytest.approx(-179.95) and lon[-1] == pytest.approx(179.95)
        assert float(p.min()) >= 0.0


def test_future_days_are_not_published(mswep: MswepReplica) -> None:
    assert requests.get(url(mswep, date(2024, 7, 20)), timeout=30).status_code == 200
    assert requests.get(url(mswep, date(2024, 7, 21)), timeout=30).status_code == 404
    index = requests.get(mswep.server.base_url + "/MSWEP_V280/NRT/Daily/", timeout=5).text
    assert "2024202.nc" in index and "2024203.nc" not in index


def test_nrt_files_are_revised_in_place_then_final(mswep: MswepReplica, tmp_path: Path) -> None:
    day = date(2024, 7, 15)
    first = requests.get(url(mswep, day), timeout=30)
    mswep.clock.advance(1)
    second = requests.get(url(mswep, day), timeout=30)
    assert first.headers["ETag"] != second.headers["ETag"]
    t1 = email.utils.parsedate_to_datetime(first.headers["Last-Modified"])
    t2 = email.utils.parsedate_to_datetime(second.headers["Last-Modified"])
    assert t2 > t1
    assert first.content != second.content
    mswep.clock.advance(20)
    final_a = requests.get(url(mswep, day), timeout=30)
    mswep.clock.advance(5)
    final_b = requests.get(url(mswep, day), timeout=30)
    assert final_a.headers["ETag"] == final_b.headers["ETag"] and final_a.content == final_b.content
    for name, body in (("a", second.content), ("b", final_a.content)):
        (tmp_path / f"{name}.nc").write_bytes(body)
    with xr.open_dataset(tmp_path / "a.nc") as a, xr.open_dataset(tmp_path / "b.nc") as b:
        diff = np.abs(a.precipitation.values - b.precipitation.values)
        assert np.nanmax(diff) > 0
