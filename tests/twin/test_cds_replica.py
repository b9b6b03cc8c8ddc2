"""The CDS replica, driven by the real cdsapi client (new-CDS protocol, ecmwf-datastores)."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest
import requests
import xarray as xr

from smda.geo.grid import BBox
from smda_twin.cds import CdsReplica
from smda_twin.clock import Clock
from smda_twin.faults import Fault, FaultPlan
from smda_twin.httpbase import RequestLog
from smda_twin.world import World, WorldSpec

TODAY = date(2024, 7, 20)
REGION = BBox(-100, 35, -99, 36)


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=3, region=REGION, epoch=date(2024, 1, 1)))


@pytest.fixture
def cds(world: World, tmp_path: Path) -> Iterator[CdsReplica]:
    replica = CdsReplica(
        world, Clock(TODAY), tmp_path / "cds", log=RequestLog(), faults=FaultPlan()
    ).start()
    yield replica
    replica.stop()


def client(cds: CdsReplica, key: str | None = None, retry_max: int = 3) -> Any:
    import cdsapi

    return cdsapi.Client(
        url=cds.url,
        key=key or cds.key,
        quiet=True,
        progress=False,
        retry_max=retry_max,
        sleep_max=0.2,
        timeout=10,
    )


def era5_request(day: date, variables: list[str], **extra: Any) -> dict[str, Any]:
    request = {
        "product_type": ["reanalysis"],
        "variable": variables,
        "year": [f"{day:%Y}"],
        "month": [f"{day:%m}"],
        "day": [f"{day:%d}"],
        "time": [f"{h:02d}:00" for h in range(24)],
        "area": [36, -100, 35, -99],
        "data_format": "netcdf",
        "download_format": "unarchived",
    }
    request.update(extra)
    return request


INSTANT = [
    "2m_temperature",
    "2m_dewpoint_temperature",
    "10m_u_component_of_wind",
    "surface_pressure",
]


def test_retrieve_instant_day_matches_new_cds_layout(
    cds: CdsReplica, tmp_path: Path, real_data: Path
) -> None:
    target = tmp_path / "era5.nc"
    client(cds).retrieve(
        "reanalysis-era5-single-levels", era5_request(date(2024, 7, 10), INSTANT), str(target)
    )
    real = (
        real_data
        / "era5/cds_2024_netcdf/era5_india_monthly12utc_instant/data_stream-oper_stepType-instant.nc"
    )
    with netCDF4.Dataset(target) as ours, netCDF4.Dataset(real) as ref:
        assert (
            list(ours.dimensions) == list(ref.dimensions) == ["valid_time", "latitude", "longitude"]
        )
        for name in ("valid_time", "latitude", "longitude", "number", "expver", "t2m"):
            assert ours[name].dtype == ref[name].dtype, name
            assert ours[name].dimensions == ref[name].dimensions, name
        assert set(ref["t2m"].ncattrs()) <= set(ours["t2m"].ncattrs())
        assert ours["valid_time"].units == ref["valid_time"].units
    with xr.open_dataset(target) as ds:
        assert ds.sizes["valid_time"] == 24
        assert np.all(np.diff(ds.latitude.values) < 0)
        assert ds.latitude.values[0] == 36.0 and ds.longitude.values[0] == -100.0
        assert set(ds.data_vars) >= {"t2m", "d2m", "u10", "sp"}
        assert set(ds.expver.values.tolist()) == {"0005"}  # 10 days old: ERA5T
        assert float(ds.t2m.mean()) > 280


def test_mixed_request_returns_instant_accum_zip(cds: CdsReplica, tmp_path: Path) -> None:
    target = tmp_path / "era5.zip"
    request = era5_request(
        date(2024, 7, 10),
        ["2m_temperature", "total_precipitation", "surface_solar_radiation_downwards"],
    )
    client(cds).retrieve("reanalysis-era5-single-levels", request, str(target))
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == [
            "data_stream-oper_stepType-accum.nc",
            "data_stream-oper_stepType-instant.nc",
        ]
        zf.extractall(tmp_path / "members")
    with xr.open_dataset(tmp_path / "members/data_stream-oper_stepType-accum.nc") as acc:
        assert set(acc.data_vars) == {"tp", "ssrd"}
        assert float(acc.ssrd.min()) >= 0


def test_final_era5_is_expver_0001(cds: CdsReplica, tmp_path: Path) -> None:
    target = tmp_path / "old.nc"
    client(cds).retrieve(
        "reanalysis-era5-single-levels",
        era5_request(date(2024, 3, 1), ["2m_temperature"]),
        str(target),
    )
    with xr.open_dataset(target) as ds:
        assert set(ds.expver.values.tolist()) == {"0001"}


def test_era5_land_at_tenth_degree(cds: CdsReplica, tmp_path: Path) -> None:
    target = tmp_path / "land.nc"
    request = era5_request(date(2024, 7, 1), ["volumetric_soil_water_layer_1"])
    request.pop("product_type")
    client(cds).retrieve("reanalysis-era5-land", request, str(target))
    with xr.open_dataset(target) as ds:
        assert ds.sizes["latitude"] == 11 and ds.sizes["longitude"] == 11
        assert 0.0 < float(ds.swvl1.mean()) < 0.6


def test_unpublished_day_fails_with_latest_date(cds: CdsReplica, tmp_path: Path) -> None:
    # the client asks for the failed job's results and raises the 400 it gets
    with pytest.raises(requests.HTTPError, match="latest available date is 2024-07-15"):
        client(cds).retrieve(
            "reanalysis-era5-single-levels",
            era5_request(date(2024, 7, 18), INSTANT),
            str(tmp_path / "x.nc"),
        )
    assert not (tmp_path / "x.nc").exists()


def test_bad_token_is_401(cds: CdsReplica, tmp_path: Path) -> None:
    with pytest.raises(requests.HTTPError, match="401"):
        client(cds, key="00000000-0000-0000-0000-000000000000").retrieve(
            "reanalysis-era5-single-levels",
            era5_request(date(2024, 7, 1), INSTANT),
            str(tmp_path / "x.nc"),
        )
    assert cds.server.log.count("cds", status=401) == 1  # not retried


def test_licence_not_accepted_is_403(cds: CdsReplica, tmp_path: Path) -> None:
    cds.faults.add(Fault("licence", path="execution"))
    with pytest.raises(requests.HTTPError, match="required licences not accepted"):
        client(cds).retrieve(
            "reanalysis-era5-single-levels",
            era5_request(date(2024, 7, 1), INSTANT),
            str(tmp_path / "x.nc"),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variable": ["soil_happiness"]}, "unknown variable"),
        ({"data_format": "grib"}, "netcdf"),
        ({"time": ["25:00"]}, "time"),
    ],
)
def test_invalid_request_is_400(
    cds: CdsReplica, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(requests.HTTPError, match=message):
        client(cds).retrieve(
            "reanalysis-era5-single-levels",
            era5_request(date(2024, 7, 1), INSTANT, **change),
            str(tmp_path / "x.nc"),
        )


def test_queued_job_is_polled_until_done(cds: CdsReplica, tmp_path: Path) -> None:
    cds.faults.add(Fault("queue", path="execution", polls=3))
    client(cds).retrieve(
        "reanalysis-era5-single-levels",
        era5_request(date(2024, 7, 1), ["2m_temperature"]),
        str(tmp_path / "q.nc"),
    )
    assert cds.server.log.count("cds", method="GET", path=r"/jobs/\w+$") >= 4
    assert (tmp_path / "q.nc").stat().st_size > 0


def test_failed_job_raises_with_traceback(cds: CdsReplica, tmp_path: Path) -> None:
    cds.faults.add(Fault("job_failed", path="execution"))
    with pytest.raises(requests.HTTPError, match=r"(?s)The job has failed.*MARS"):
        client(cds).retrieve(
            "reanalysis-era5-single-levels",
            era5_request(date(2024, 7, 1), INSTANT),
            str(tmp_path / "x.nc"),
        )


def test_server_errors_are_retried_by_the_client(
    cds: CdsReplica, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cds.faults.add(Fault("status", path="/processes/", method="GET", status=503, times=2))
    caplog.set_level(logging.WARNING)
    client(cds, retry_max=5).retrieve(
        "reanalysis-era5-single-levels",
        era5_request(date(2024, 7, 1), ["2m_temperature"]),
        str(tmp_path / "r.nc"),
    )
    assert cds.server.log.count("cds", path="/processes/reanalysis", method="GET", status=503) == 2


def test_truncated_download_is_recovered_by_the_client(cds: CdsReplica, tmp_path: Path) -> None:
    cds.faults.add(Fault("truncate", path="/download/"))
    target = tmp_path / "t.nc"
    client(cds).retrieve(
        "reanalysis-era5-single-levels", era5_request(date(2024, 7, 1), INSTANT), str(target)
    )
    downloads = [
        r for r in cds.server.log.records() if r.path.startswith("/download/") and r.method == "GET"
    ]
    assert len(downloads) == 2 and downloads[0].sent < downloads[1].sent
    with xr.open_dataset(target) as ds:
        assert ds.sizes["valid_time"] == 24


def test_global_request_uses_0_360_longitudes(cds: CdsReplica, tmp_path: Path) -> None:
    request = era5_request(date(2024, 7, 1), ["land_sea_mask"], time=["00:00"])
    request.pop("area")
    target = tmp_path / "lsm.nc"
    client(cds).retrieve("reanalysis-era5-single-levels", request, str(target))
    with xr.open_dataset(target) as ds:
        assert ds.sizes["latitude"] == 721 and ds.sizes["longitude"] == 1440
        assert float(ds.longitude[0]) == 0.0 and float(ds.longitude[-1]) == 359.75
        assert 0.2 < float(ds.lsm.mean()) < 0.45  # an Earth-like land fraction


def test_area_across_antimeridian(cds: CdsReplica, tmp_path: Path) -> None:
    request = era5_request(
        date(2024, 7, 1), ["land_sea_mask"], time=["00:00"], area=[-15, 177, -19, -178]
    )
    target = tmp_path / "fiji.nc"
    client(cds).retrieve("reanalysis-era5-single-levels", request, str(target))
    with xr.open_dataset(target) as ds:
        assert ds.sizes["longitude"] == 21
        lon = (ds.longitude.values + 180) % 360 - 180
        assert lon[0] == 177.0 and lon[-1] == -178.0


def test_catalogue_extent_ends_at_newest_published_day(cds: CdsReplica) -> None:
    from ecmwf.datastores import Client

    collection = Client(url=cds.url, key=cds.key, maximum_tries=1).get_collection(
        "reanalysis-era5-single-levels"
    )
    assert collection.end_datetime is not None
    assert collection.end_datetime.date() == date(2024, 7, 15)
    cds.clock.advance(3)
    assert Client(url=cds.url, key=cds.key).get_collection(
        "reanalysis-era5-land"
    ).end_datetime.date() == date(2024, 7, 18)
