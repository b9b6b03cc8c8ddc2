"""MSWEP reader: the twin's daily files and re-oriented variants (no real MSWEP file exists)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers.mswep import LATITUDE, LONGITUDE, open_mswep
from smda_twin.formats.mswep import SHAPE, write_mswep_daily

DAY = date(2024, 7, 1)
# every cell different and exact in float32: row · 4000 + col
PATTERN = (np.arange(SHAPE[0])[:, None] * 4000 + np.arange(SHAPE[1])[None, :]).astype(np.float32)


@pytest.fixture(scope="module")
def twin_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mswep") / "2024183.nc"
    values = PATTERN.copy()
    values[0, :10] = np.nan
    write_mswep_daily(path, day=DAY, precipitation=values)
    return path


@pytest.fixture(scope="module")
def reference(twin_file: Path) -> xr.DataArray:
    return open_mswep(twin_file)


def test_twin_file(reference: xr.DataArray) -> None:
    assert reference.dims == ("lat", "lon") and reference.shape == SHAPE
    assert reference.dtype == np.float32 and reference.attrs["units"] == "mm day-1"
    np.testing.assert_array_equal(reference["lat"].values, LATITUDE)
    np.testing.assert_array_equal(reference["lon"].values, LONGITUDE)
    assert LATITUDE[0] == 89.95 and LATITUDE[-1] == -89.95
    assert LONGITUDE[0] == -179.95 and LONGITUDE[-1] == 179.95
    assert reference["time"].values == np.datetime64("2024-07-01")
    assert np.isnan(reference.values[0, :10]).all()  # the −9999 fill
    np.testing.assert_array_equal(reference.values[1:], PATTERN[1:])


def _variant(
    tmp_path: Path, name: str, change: Callable[[xr.Dataset], xr.Dataset], twin_file: Path
) -> Path:
    with xr.open_dataset(twin_file) as ds:
        changed = change(ds.load())
    path = tmp_path / f"{name}.nc"
    changed.to_netcdf(path)
    return path


VARIANTS: dict[str, Callable[[xr.Dataset], xr.Dataset]] = {
    "south_to_north": lambda ds: ds.isel(lat=slice(None, None, -1)),
    "lon_0_360": lambda ds: ds.assign_coords(lon=ds["lon"] % 360).sortby("lon"),
    "rolled_start_at_100": lambda ds: ds.roll(lon=800, roll_coords=True),
    "lon_lat_order": lambda ds: ds.transpose("time", "lon", "lat"),
    "long_names_no_time": lambda ds: ds.isel(time=0, drop=True).rename(
        lat="latitude", lon="longitude"
    ),
    "everything": lambda ds: (
        ds.assign_coords(lon=ds["lon"] % 360)
        .sortby("lon")
        .isel(lat=slice(None, None, -1))
        .transpose("lon", "lat", "time")
    ),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_orientation_is_normalised(
    name: str, tmp_path: Path, twin_file: Path, reference: xr.DataArray
) -> None:
    field = open_mswep(_variant(tmp_path, name, VARIANTS[name], twin_file))
    assert field.dims == ("lat", "lon")
    np.testing.assert_array_equal(field["lat"].values, LATITUDE)
    np.testing.assert_array_equal(field["lon"].values, LONGITUDE)
    np.testing.assert_array_equal(field.values, reference.values)


# -------------------------------------------------------------------------------- bad files


def _small(path: Path, lat: np.ndarray, lon: np.ndarray, ntime: int = 1) -> Path:
    xr.Dataset(
        {"precipitation": (("time", "lat", "lon"), np.zeros((ntime, lat.size, lon.size), "f4"))},
        coords={"time": np.arange(ntime) * 1.0, "lat": lat, "lon": lon},
    ).to_netcdf(path)
    return path


def test_regional_window_is_not_a_daily_global_file(tmp_path: Path) -> None:
    path = _small(tmp_path / "window.nc", LATITUDE[:100], LONGITUDE[:200])
    with pytest.raises(MalformedFile, match="unexpected grid") as info:
        open_mswep(path)
    assert "window.nc" in str(info.value)


def test_other_resolution_raises(tmp_path: Path) -> None:
    lat = np.linspace(89.875, -89.875, 720)
    lon = np.linspace(-179.875, 179.875, 1440)
    with pytest.raises(MalformedFile, match="unexpected grid"):
        open_mswep(_small(tmp_path / "q.nc", lat, lon))


def test_shifted_centres_raise(tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match=r"not the 0\.1° global grid"):
        open_mswep(_small(tmp_path / "s.nc", LATITUDE, LONGITUDE + 0.05))


def test_several_time_steps_raise(tmp_path: Path) -> None:
    path = _small(tmp_path / "3h.nc", LATITUDE[:2], LONGITUDE[:2], ntime=8)
    with pytest.raises(MalformedFile, match="one daily field"):
        open_mswep(path)


def test_missing_variable_raises(tmp_path: Path) -> None:
    path = tmp_path / "p.nc"
    xr.Dataset({"precip": (("lat", "lon"), np.zeros((2, 2), "f4"))}).to_netcdf(path)
    with pytest.raises(MalformedFile, match="no variable precipitation"):
        open_mswep(path)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.5, 0.99])
def test_truncated_or_garbage_raises(twin_file: Path, tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "2024183.nc"
    data = twin_file.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(MalformedFile, match=r"2024183\.nc"):
        open_mswep(path)
