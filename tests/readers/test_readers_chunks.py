"""HDF5 chunks decoded outside h5py: the values h5py gives, for every layout the decoder takes;
the layouts it does not take are left to h5py; ERA5 files read through it are unchanged."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers import open_netcdf
from smda.ingest.readers.chunks import decode, read_raw
from smda.ingest.readers.era5 import open_era5
from smda_twin.formats.era5 import write_era5_netcdf

CDS = "era5/cds_2024_netcdf"
REAL = [
    f"{CDS}/era5_land_kerala_daily12utc/era5land_kerala_may2024.nc",
    f"{CDS}/era5_telangana_hourly_accum/data_stream-oper_stepType-accum.nc",
    f"{CDS}/era5_india_monthly12utc_instant/data_stream-oper_stepType-instant.nc",
]

LAYOUTS = [  # (dtype, chunks, create_dataset options)
    ("f4", (2, 10, 20), {"compression": "gzip", "shuffle": True}),  # edge chunks cut
    ("f4", (5, 33, 47), {"compression": "gzip", "shuffle": True}),  # one chunk, decoded in place
    ("f4", (1, 33, 47), {"compression": "gzip", "shuffle": True, "compression_opts": 9}),
    ("f8", (5, 33, 47), {"compression": "gzip"}),  # deflate alone
    ("i2", (1, 33, 47), {"shuffle": True}),  # shuffle alone
    ("u1", (3, 7, 47), {"compression": "gzip", "shuffle": True}),
    ("f4", (2, 10, 20), {}),  # chunked, no filter
]


@pytest.mark.parametrize(("dtype", "chunks", "options"), LAYOUTS)
@pytest.mark.parametrize("in_memory", [False, True])
def test_decoded_chunks_equal_h5py(
    tmp_path: Path, dtype: str, chunks: tuple[int, ...], options: dict[str, object], in_memory: bool
) -> None:
    rng = np.random.default_rng(3)
    values = (rng.normal(size=(5, 33, 47)) * 50).astype(dtype)
    if values.dtype.kind == "f":
        values[0, 0, :3] = np.nan
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, chunks=chunks, **options)
    image = path.read_bytes() if in_memory else None
    with (
        h5py.File(io.BytesIO(image) if image else path, "r") as f,
        ThreadPoolExecutor(2) as pool,
    ):
        raw = read_raw(f["v"], image)
        assert raw is not None
        got = decode(raw, pool).result()
        expected = f["v"][...]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_chunks_the_file_does_not_hold_take_the_fill_value(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset(
            "v", shape=(4, 30, 40), dtype="f4", chunks=(2, 10, 20), compression="gzip",
            fillvalue=np.nan,
        )  # fmt: skip
        d[0:2, 10:20, 20:40] = 1.5
    with h5py.File(path, "r") as f, ThreadPoolExecutor(2) as pool:
        raw = read_raw(f["v"])
        assert raw is not None and len(raw.chunks) == 1
        np.testing.assert_array_equal(decode(raw, pool).result(), f["v"][...])


@pytest.mark.parametrize(
    "options", [{"compression": "gzip", "fletcher32": True}, {"compression": "lzf"}, {}]
)
def test_layouts_it_cannot_decode_are_left_to_h5py(
    tmp_path: Path, options: dict[str, object]
) -> None:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        chunks = (2, 10, 20) if options else None
        f.create_dataset("v", data=np.ones((4, 30, 40), "f4"), chunks=chunks, **options)
    with h5py.File(path, "r") as f:
        assert read_raw(f["v"]) is None


@pytest.mark.parametrize("name", REAL)
def test_real_cds_files_read_as_xarray_decodes_them(real_data: Path, name: str) -> None:
    ds = open_era5(real_data / name)
    with open_netcdf(real_data / name) as raw:
        for var in ds.data_vars:
            expected = raw[var].transpose(..., "latitude", "longitude").values
            flip = raw["latitude"].values[1] > raw["latitude"].values[0]
            expected = expected.reshape(ds[var].shape)[:, ::-1] if flip else expected
            np.testing.assert_array_equal(ds[var].values, expected.reshape(ds[var].shape))


def _twin_file(path: Path) -> Path:
    rng = np.random.default_rng(5)
    lat, lon = np.arange(40.0, 30.0, -0.25), np.arange(0.0, 12.0, 0.25)
    fields = {"t2m": (280 + rng.normal(size=(24, lat.size, lon.size))).astype("f4")}
    times = np.datetime64("2024-07-15T00", "s") + np.arange(24) * np.timedelta64(3600, "s")
    write_era5_netcdf(
        path, fields=fields, valid_time=times, latitude=lat, longitude=lon, expver=["0005"] * 24
    )
    return path


def test_twin_file_reads_its_written_values(tmp_path: Path) -> None:
    path = _twin_file(tmp_path / "era5.nc")
    with xr.open_dataset(path, engine="h5netcdf") as raw:
        expected = raw["t2m"].values
    np.testing.assert_array_equal(open_era5(path)["t2m"].values, expected)


def test_a_corrupt_chunk_raises_malformed_naming_the_file(tmp_path: Path) -> None:
    path = _twin_file(tmp_path / "era5.nc")
    with h5py.File(path, "r") as f:
        info = f["t2m"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    middle = info.byte_offset + info.size // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(MalformedFile, match=r"era5\.nc: t2m cannot be read"):
        open_era5(path)
