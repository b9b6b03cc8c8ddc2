"""Direct variable access to netCDF files (netCDF-4 through h5py, netCDF-3 through xarray)."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers.ncfile import (
    StoredChunk,
    decode_cf_time,
    decode_values,
    open_ncfile,
    unpack,
)

GLDAS = "gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4"


def _write(path: Path, fmt: str) -> Path:
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.createDimension("time", 1)
        ds.createDimension("y", 2)
        ds.createDimension("x", 3)
        ds.createDimension("nv", 2)  # a dimension without a variable
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "hours since 2024-07-01 00:00:00"
        t[:] = [6.0]
        y = ds.createVariable("y", "f4", ("y",))
        y[:] = [1.0, 2.0]
        v = ds.createVariable("v", "i2", ("time", "x", "y"), fill_value=np.int16(-1))
        v.setncatts({"scale_factor": 0.5, "add_offset": 10.0, "units": "K"})
        v.set_auto_maskandscale(False)
        v[:] = np.array([[[0, 1], [-1, 3], [4, 5]]], dtype=np.int16)
        b = ds.createVariable("bounds", "f4", ("y", "nv"))
        b[:] = np.zeros((2, 2))
    return path


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC"])
def test_dims_attributes_and_raw_values(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path / f"{fmt}.nc", fmt)
    with open_ncfile(path) as nc:
        assert sorted(nc.variables()) == ["bounds", "time", "v", "y"]
        assert "v" in nc and "nv" not in nc and "w" not in nc
        assert nc.dims("v") == ("time", "x", "y")  # x has no variable, y is one
        assert nc.dims("y") == ("y",) and nc.shape("v") == (1, 3, 2)
        assert nc.attrs("v", ("units", "scale_factor", "absent")) == {
            "units": "K",
            "scale_factor": 0.5,
        }
        assert "DIMENSION_LIST" not in nc.attrs("v") and nc.attrs("v")["_FillValue"] == -1
        raw = nc.read("v")
        assert raw.dtype == np.int16 and raw.tolist() == [[[0, 1], [-1, 3], [4, 5]]]
        assert nc.read("v", (0, slice(1, 3))).tolist() == [[-1, 3], [4, 5]]
        decoded = decode_values(raw, nc.attrs("v"))
        assert decoded.dtype == np.float32
        np.testing.assert_array_equal(decoded[0], [[10.0, 10.5], [np.nan, 11.5], [12.0, 12.5]])
        times = decode_cf_time(nc.read("time"), nc.attrs("time")["units"], nc.label)
        assert times.tolist() == [np.datetime64("2024-07-01T06:00", "ns").astype(int)]


def test_decode_in_place_keeps_the_fill_mask(tmp_path: Path) -> None:
    raw = np.array([1.0, -9999.0, 3.0], dtype=np.float32)
    out = decode_values(raw, {"_FillValue": -9999.0, "missing_value": [-9999.0]}, copy=False)
    assert out is raw and np.isnan(out[1]) and out[2] == 3.0
    copied = decode_values(np.array([np.nan, 1.0], dtype=np.float32), {"_FillValue": np.nan})
    assert np.isnan(copied[0]) and copied[1] == 1.0


def test_real_gldas_granule_through_h5py(real_data: Path) -> None:
    with open_ncfile(real_data / GLDAS) as nc:
        assert nc.dims("SoilMoi0_10cm_inst") == ("time", "lat", "lon")
        attrs = nc.attrs("SoilMoi0_10cm_inst", ("units", "_FillValue"))
        assert attrs == {"units": "kg m-2", "_FillValue": -9999.0}
        assert nc.attrs("time")["units"] == " minutes since 2000-01-01 03:00:00"
        moment = decode_cf_time(nc.read("time"), nc.attrs("time")["units"], nc.label)
    assert moment.tolist() == [np.datetime64("2016-01-01T03:00", "ns").astype(int)]


def test_time_units_and_calendars_are_checked() -> None:
    with pytest.raises(MalformedFile, match="not '<unit> since <date>'"):
        decode_cf_time([1.0], "fortnights since 2000-01-01", "f.nc")
    with pytest.raises(MalformedFile, match="calendar"):
        decode_cf_time([1.0], "days since 2000-01-01", "f.nc", calendar="360_day")
    with pytest.raises(MalformedFile, match="reference date"):
        decode_cf_time([1.0], "days since yesterday", "f.nc")


@pytest.mark.parametrize("keep", [0, 10, 3000])
def test_not_netcdf_or_truncated(tmp_path: Path, keep: int) -> None:
    good = _write(tmp_path / "good.nc", "NETCDF4")
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[:keep])
    with pytest.raises(MalformedFile, match=r"cut\.nc"), open_ncfile(cut):
        pass


def test_xarray_sees_what_ncfile_reads(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.nc", "NETCDF4")
    with xr.open_dataset(path) as ds, open_ncfile(path) as nc:
        expected = ds["v"].values
        got = decode_values(nc.read("v"), nc.attrs("v"))
    np.testing.assert_array_equal(got, expected.astype(np.float32))


@pytest.mark.parametrize(
    ("options", "stored"),
    [
        ({"compression": "gzip", "shuffle": True, "chunks": (1, 30, 40)}, True),
        ({"compression": "gzip", "chunks": (1, 30, 40)}, True),
        ({"shuffle": True, "chunks": (1, 30, 40)}, True),
        ({"compression": "gzip", "shuffle": True, "chunks": (1, 15, 40)}, False),  # two chunks
        ({"compression": "gzip", "fletcher32": True, "chunks": (1, 30, 40)}, False),
        ({}, False),  # contiguous
    ],
)
@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<u2", "<f8"])
def test_a_stored_chunk_unpacks_to_what_hdf5_reads(
    tmp_path: Path, options: dict[str, object], stored: bool, dtype: str
) -> None:
    import h5py

    rng = np.random.default_rng(3)
    values = (rng.random((1, 30, 40)) * 1000).astype(dtype)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, **options)  # type: ignore[arg-type]
    with open_ncfile(path) as nc:
        got = nc.read_stored("v")
    assert isinstance(got, StoredChunk) is stored
    out = unpack(got)
    assert out.dtype == np.dtype(dtype) and out.flags.writeable
    np.testing.assert_array_equal(out, values)


def test_an_unwritten_chunk_reads_as_fill(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "v", shape=(2, 3), dtype="<f4", chunks=(2, 3), compression="gzip", fillvalue=-1.0
        )
    with open_ncfile(path) as nc:
        assert unpack(nc.read_stored("v")).tolist() == [[-1.0] * 3] * 2


def test_a_corrupt_chunk_is_a_malformed_file(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "bad.h5"
    values = np.arange(1200, dtype="<f4").reshape(30, 40)
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, chunks=(30, 40), compression="gzip", shuffle=True)
    with open_ncfile(path) as nc:
        chunk = nc.read_stored("v")
    assert isinstance(chunk, StoredChunk)
    data = bytearray(chunk.data)
    data[len(data) // 2] ^= 0xFF
    broken = StoredChunk(chunk.label, "v", bytes(data), chunk.dtype, chunk.shape, True, True)
    with pytest.raises(MalformedFile, match=r"bad\.h5.*v cannot be read"):
        unpack(broken)
