"""ERA5/ERA5-Land reader: real CDS files (STRUCTURE.md §3), the twin's files, and bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers.era5 import open_era5
from smda_twin.formats.era5 import write_era5_netcdf, write_era5_response, zip_member_name

CDS = "era5/cds_2024_netcdf"
KERALA = f"{CDS}/era5_land_kerala_daily12utc/era5land_kerala_may2024.nc"
TELANGANA = f"{CDS}/era5_telangana_hourly_accum/data_stream-oper_stepType-accum.nc"
INDIA = f"{CDS}/era5_india_monthly12utc_instant/data_stream-oper_stepType-instant.nc"
LEGACY = "era5/cds_legacy_2018/example_downloaded_raw.nc"


def _check_layout(ds: xr.Dataset) -> None:
    assert tuple(ds.dims) == ("time", "latitude", "longitude")
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert np.all(np.diff(ds["latitude"].values) < 0)
    lon = ds["longitude"].values
    assert np.all((lon >= -180.0) & (lon < 180.0))
    assert ds["expver"].dims == ("time",) and ds["expver"].dtype.kind == "U"
    assert "number" not in ds.coords and "valid_time" not in ds.coords
    for var in ds.data_vars.values():
        assert var.dims == ("time", "latitude", "longitude") and var.dtype == np.float32


# -------------------------------------------------------------------------------- real files


def test_era5_land_kerala_facts(real_data: Path) -> None:
    ds = open_era5(real_data / KERALA)
    _check_layout(ds)
    assert dict(ds.sizes) == {"time": 15, "latitude": 49, "longitude": 31}
    assert set(ds.data_vars) == {"t2m", "swvl1", "tp", "sshf", "slhf"}
    assert ds["time"].values[0] == np.datetime64("2024-05-01T12:00")
    assert ds["time"].values[-1] == np.datetime64("2024-05-15T12:00")
    assert ds["latitude"].values[[0, -1]] == pytest.approx([12.8, 8.0])
    assert ds["longitude"].values[[0, -1]] == pytest.approx([74.8, 77.8])
    for name in ds.data_vars:
        assert int(np.isnan(ds[name].values).sum()) == 9585 and ds[name].size == 22785
    assert ds["latitude"].values[24] == pytest.approx(10.4)
    assert ds["longitude"].values[15] == pytest.approx(76.3)
    assert float(ds["t2m"].values[0, 24, 15]) == pytest.approx(305.0302734375, abs=1e-4)
    assert float(ds["swvl1"].values[0, 24, 15]) == pytest.approx(0.3651885986328125, abs=1e-7)
    assert float(ds["tp"].values[0, 24, 15]) == pytest.approx(0.0009716033819131553, abs=1e-9)
    assert float(ds["t2m"].mean()) == pytest.approx(303.2507, abs=1e-3)
    assert float(ds["swvl1"].mean()) == pytest.approx(0.2999786, abs=1e-6)
    assert float(ds["tp"].mean()) == pytest.approx(0.00322039, abs=1e-8)
    assert ds["swvl1"].attrs["units"] == "m**3 m**-3"
    assert set(ds["expver"].values) == {"0001"}
    assert ds.attrs["source_layout"] == "cds-netcdf"


def test_era5_hourly_accum_member_facts(real_data: Path) -> None:
    ds = open_era5(real_data / TELANGANA)
    _check_layout(ds)
    assert dict(ds.sizes) == {"time": 168, "latitude": 21, "longitude": 21}
    assert ds["time"].values[0] == np.datetime64("2023-09-01T00:00")
    assert ds["time"].values[-1] == np.datetime64("2023-09-07T23:00")
    tp = ds["tp"].values
    assert not np.isnan(tp).any()
    assert tp[0, 0, 0] == 0.0
    assert tp[10, 10, 10] == pytest.approx(4.76837158203125e-07, rel=1e-6)
    assert tp.max() == pytest.approx(0.02366018, abs=1e-8)
    assert tp.astype(np.float64).sum() == pytest.approx(42.9978, abs=1e-3)
    assert ds["tp"].attrs["GRIB_stepType"] == "accum"


def test_era5_monthly_instant_member_facts_and_era5t(real_data: Path) -> None:
    ds = open_era5(real_data / INDIA)
    _check_layout(ds)
    assert dict(ds.sizes) == {"time": 132, "latitude": 5, "longitude": 5}
    assert float(ds["t2m"].values[0, 0, 0]) == pytest.approx(291.4532470703125, abs=1e-4)
    assert float(ds["slt"].values[0, 0, 0]) == 4.0
    assert float(ds["t2m"].mean()) == pytest.approx(304.1479, abs=1e-3)
    # the last month (2024-12) was still ERA5T when it was downloaded
    assert list(ds["expver"].values[-2:]) == ["0001", "0005"]
    assert (ds["expver"].values == "0001").sum() == 131


def test_legacy_packed_netcdf3_is_unpacked_clipped_and_wrapped(real_data: Path) -> None:
    path = real_data / LEGACY
    with netCDF4.Dataset(path) as raw:
        raw.set_auto_maskandscale(False)
        assert raw["swvl1"][0, 10, 20] == -29690
        assert raw["swvl1"].dtype == np.int16
    ds = open_era5(path)
    _check_layout(ds)
    assert ds.attrs["source_layout"] == "cds-netcdf3-packed"
    assert dict(ds.sizes) == {"time": 4, "latitude": 37, "longitude": 72}
    assert list(ds["time"].values) == list(
        np.array(["2010-01-01T00", "2010-01-01T06", "2010-01-01T12", "2010-01-01T18"], "M8[ns]")
    )
    assert ds["latitude"].values[10] == 40.0 and ds["latitude"].values[[0, -1]].tolist() == [
        90,
        -90,
    ]
    # 0 … 355 wrapped in place: 0 … 175, −180 … −5 (the order is the file's)
    lon = ds["longitude"].values
    assert lon[20] == 100.0
    assert lon[:36].tolist() == [5.0 * i for i in range(36)]
    assert lon[36:].tolist() == [-180.0 + 5.0 * i for i in range(36)]
    swvl1 = ds["swvl1"].values
    assert float(swvl1[0, 10, 20]) == pytest.approx(0.031968425708860215, abs=1e-7)
    assert float(swvl1.min()) == 0.0  # unpacked min −0.00326…, clipped
    assert float(swvl1.max()) == pytest.approx(0.7473735651001334, abs=1e-6)
    assert float(ds["lsm"].min()) >= 0.0 and float(ds["lsm"].max()) <= 1.0
    assert list(ds["expver"].values) == ["", "", "", ""]


def test_zip_of_a_real_member_reads_like_the_member(real_data: Path, tmp_path: Path) -> None:
    target = tmp_path / "answer.nc"  # the CDS names it .nc even when it is a ZIP
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(real_data / TELANGANA, zip_member_name("accum"))
        archive.writestr("README.txt", "not data")
    from_zip = open_era5(target)
    assert from_zip.attrs["source_layout"] == "cds-zip"
    xr.testing.assert_identical(
        from_zip.drop_attrs(), open_era5(real_data / TELANGANA).drop_attrs()
    )


# -------------------------------------------------------------------------------- twin files

TIMES = np.array(["2024-07-01T00", "2024-07-01T01", "2024-07-01T02"], dtype="datetime64[s]")


def _fields(names: list[str], shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {n: rng.random(shape, dtype=np.float32) for n in names}


def test_twin_instant_accum_zip_is_merged(tmp_path: Path) -> None:
    lat, lon = np.array([50.0, 49.75]), np.array([10.0, 10.25, 10.5])
    fields = _fields(["t2m", "u10", "tp", "ssrd"], (3, 2, 3))
    expver = ["0001", "0005", "0005"]
    path = tmp_path / "era5.nc"
    media = write_era5_response(
        path, fields=fields, valid_time=TIMES, latitude=lat, longitude=lon, expver=expver
    )
    assert media == "application/zip"
    ds = open_era5(path)
    _check_layout(ds)
    assert ds.attrs["source_layout"] == "cds-zip"
    assert set(ds.data_vars) == {"t2m", "u10", "tp", "ssrd"}
    for name, values in fields.items():
        np.testing.assert_array_equal(ds[name].values, values)
    assert list(ds["expver"].values) == expver
    assert list(ds["time"].values) == list(TIMES.astype("datetime64[ns]"))


def test_antimeridian_request_stays_contiguous(tmp_path: Path) -> None:
    lon = np.array([179.5, 179.75, 180.0, 180.25, 180.5])
    fields = _fields(["t2m"], (3, 2, 5))
    path = tmp_path / "am.nc"
    write_era5_netcdf(
        path,
        fields=fields,
        valid_time=TIMES,
        latitude=[1.0, 0.75],
        longitude=lon,
        expver=["0001"] * 3,
    )
    ds = open_era5(path)
    assert ds["longitude"].values.tolist() == [179.5, 179.75, -180.0, -179.75, -179.5]
    np.testing.assert_array_equal(ds["t2m"].values, fields["t2m"])


def test_global_0_360_longitudes_are_wrapped_without_reordering(tmp_path: Path) -> None:
    lon = np.arange(0.0, 360.0, 90.0)
    fields = _fields(["swvl1"], (3, 2, 4))
    path = tmp_path / "g.nc"
    write_era5_netcdf(
        path,
        fields=fields,
        valid_time=TIMES,
        latitude=[0.25, 0.0],
        longitude=lon,
        expver=["0001"] * 3,
    )
    ds = open_era5(path)
    assert ds["longitude"].values.tolist() == [0.0, 90.0, -180.0, -90.0]
    np.testing.assert_array_equal(ds["swvl1"].values, fields["swvl1"])


def test_increasing_latitude_is_flipped(tmp_path: Path) -> None:
    values = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    raw = xr.Dataset(
        {"t2m": (("valid_time", "latitude", "longitude"), values)},
        coords={
            "valid_time": TIMES[:2].astype("datetime64[ns]"),
            "latitude": [10.0, 10.25, 10.5],
            "longitude": [20.0, 20.25],
        },
    )
    path = tmp_path / "up.nc"
    raw.to_netcdf(path)
    ds = open_era5(path)
    assert ds["latitude"].values.tolist() == [10.5, 10.25, 10.0]
    np.testing.assert_array_equal(ds["t2m"].values, values[:, ::-1, :])
    assert list(ds["expver"].values) == ["", ""]


def test_old_cds_expver_dimension_is_collapsed(tmp_path: Path) -> None:
    final = np.full((3, 2, 2), np.nan, dtype=np.float32)
    provisional = np.full((3, 2, 2), np.nan, dtype=np.float32)
    final[:2] = 0.25
    provisional[2] = 0.5
    provisional[2, 0, 1] = -0.0003  # packing noise
    raw = xr.Dataset(
        {"swvl1": (("time", "expver", "latitude", "longitude"), np.stack([final, provisional], 1))},
        coords={
            "time": TIMES.astype("datetime64[ns]"),
            "expver": [1, 5],
            "latitude": [1.0, 0.75],
            "longitude": [0.0, 0.25],
        },
    )
    path = tmp_path / "mixed.nc"
    packing = {"dtype": "int16", "scale_factor": 1e-4, "add_offset": 0.0, "_FillValue": -32767}
    raw.to_netcdf(path, format="NETCDF3_64BIT", encoding={"swvl1": packing})
    ds = open_era5(path)
    _check_layout(ds)
    assert ds.attrs["source_layout"] == "cds-netcdf3-packed"
    assert list(ds["expver"].values) == ["0001", "0001", "0005"]
    assert ds["swvl1"].values[:, 0, 0].tolist() == pytest.approx([0.25, 0.25, 0.5])
    assert ds["swvl1"].values[2, 0, 1] == 0.0


# -------------------------------------------------------------------------------- bad files


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a netCDF file"),
        (b"<html>502 Bad Gateway</html>" * 10, "not a netCDF file"),
        (b"PK\x03\x04" + b"\0" * 100, "ZIP"),
    ],
)
def test_garbage_raises_malformed_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.nc"
    path.write_bytes(content)
    with pytest.raises(MalformedFile, match=message) as info:
        open_era5(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", [KERALA, LEGACY])
def test_truncated_file_raises_malformed(real_data: Path, tmp_path: Path, name: str) -> None:
    path = _truncated(real_data / name, tmp_path / "cut.nc")
    with pytest.raises(MalformedFile, match=r"cut\.nc"):
        open_era5(path)


def test_truncated_zip_member_raises_malformed(real_data: Path, tmp_path: Path) -> None:
    cut = _truncated(real_data / TELANGANA, tmp_path / "cut.nc")
    path = tmp_path / "answer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(cut, zip_member_name("accum"))
    with pytest.raises(MalformedFile, match=r"answer\.zip!data_stream-oper_stepType-accum\.nc"):
        open_era5(path)


def test_zip_without_netcdf_member_raises(tmp_path: Path) -> None:
    path = tmp_path / "answer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("error.txt", "request failed")
    with pytest.raises(MalformedFile, match=r"no \.nc member"):
        open_era5(path)


def test_zip_members_on_different_grids_raise(real_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "answer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(real_data / INDIA, zip_member_name("instant"))
        archive.write(real_data / TELANGANA, zip_member_name("accum"))
    with pytest.raises(MalformedFile, match="do not share"):
        open_era5(path)


def test_netcdf_without_era5_structure_raises(real_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "gldas.nc"
    path.write_bytes((real_data / "gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4").read_bytes())
    with pytest.raises(MalformedFile, match="no latitude coordinate"):
        open_era5(path)
    flat = tmp_path / "flat.nc"
    xr.Dataset(
        {"t2m": (("latitude", "longitude"), np.zeros((2, 2), np.float32))},
        coords={"latitude": [1.0, 0.0], "longitude": [0.0, 1.0], "valid_time": [0]},
    ).to_netcdf(flat)
    with pytest.raises(MalformedFile, match="no data variable with dims"):
        open_era5(flat)
