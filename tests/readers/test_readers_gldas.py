"""GLDAS reader: the real GLDAS_NOAH025_3H v2.1 granule (STRUCTURE.md §4.1) and the twin's."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers.gldas import gldas_time, open_gldas
from smda_twin.formats.gldas import LATITUDE, SHAPE, write_gldas_noah025_3h

GRANULE = "gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4"


@pytest.fixture(scope="module")
def real(real_data: Path) -> xr.DataArray:
    return open_gldas(real_data / GRANULE)


def test_real_granule_layout(real: xr.DataArray) -> None:
    assert real.dims == ("lat", "lon") and real.shape == (600, 1440)
    assert real.dtype == np.float32
    assert real.attrs["units"] == "m3 m-3"
    lat, lon = real["lat"].values, real["lon"].values
    assert lat[0] == 89.875 and lat[-1] == -59.875 and np.all(np.diff(lat) == -0.25)  # flipped
    assert lon[0] == -179.875 and lon[-1] == 179.875
    assert real["time"].values == np.datetime64("2016-01-01T03:00")


def test_real_granule_values_in_m3_m3(real: xr.DataArray) -> None:
    values = real.values
    assert int(np.isfinite(values).sum()) == 243883
    assert float(np.nanmin(values)) == pytest.approx(1.9999999 / 100, abs=1e-7)
    assert float(np.nanmax(values)) == pytest.approx(47.596 / 100, abs=1e-5)
    assert float(np.nanmean(values.astype(np.float64))) == pytest.approx(25.5746 / 100, abs=1e-5)
    # Vienna: file index [0, 432, 785] (lat ascending) = 26.088 kg m-2
    vienna = real.sel(lat=48.125, lon=16.375)
    assert float(vienna) == pytest.approx(0.26088, abs=1e-6)
    assert real.values[599 - 432, 785] == vienna.values
    assert float(real.sel(lat=40.125, lon=20.125)) == pytest.approx(0.31668, abs=1e-6)


def test_time_is_decoded_despite_the_leading_space(real_data: Path) -> None:
    assert gldas_time(real_data / GRANULE) == datetime(2016, 1, 1, 3)


def test_twin_granule_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kg = rng.uniform(2.0, 48.0, SHAPE).astype(np.float32)
    kg[:40] = np.nan  # Antarctica: fill
    path = tmp_path / "GLDAS_NOAH025_3H.A20240701.2100.021.nc4"
    write_gldas_noah025_3h(path, time=datetime(2024, 7, 1, 21), fields={"SoilMoi0_10cm_inst": kg})
    field = open_gldas(path)
    assert gldas_time(path) == datetime(2024, 7, 1, 21)
    assert field["time"].values == np.datetime64("2024-07-01T21:00")
    np.testing.assert_array_equal(field["lat"].values, LATITUDE[::-1])
    np.testing.assert_allclose(field.values, (kg / np.float32(100))[::-1], rtol=1e-7)
    assert np.isnan(field.values[-40:]).all() and np.isfinite(field.values[:-40]).all()


# -------------------------------------------------------------------------------- bad files


def _write(path: Path, name: str, lat: np.ndarray, lon: np.ndarray, units: str = "kg m-2") -> Path:
    values = np.full((1, lat.size, lon.size), 20.0, dtype=np.float32)
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), values, {"units": units})},
        coords={"time": ("time", [8415360.0], {"units": " minutes since 2000-01-01 03:00:00"})},
    )
    ds = ds.assign_coords(lat=lat, lon=lon)
    ds.to_netcdf(path)
    return path


def test_window_of_the_grid_is_accepted(tmp_path: Path) -> None:
    lat, lon = np.array([40.125, 40.375]), np.array([10.125, 10.375, 10.625])
    field = open_gldas(_write(tmp_path / "w.nc4", "SoilMoi0_10cm_inst", lat, lon))
    assert field["lat"].values.tolist() == [40.375, 40.125]
    assert float(field.max()) == pytest.approx(0.2)


def test_missing_variable_raises(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.nc4", "SoilMoi10_40cm_inst", np.array([0.125]), np.array([0.125]))
    with pytest.raises(MalformedFile, match="no variable SoilMoi0_10cm_inst") as info:
        open_gldas(path)
    assert "g.nc4" in str(info.value)


def test_unexpected_grid_raises(tmp_path: Path) -> None:
    half = np.array([0.25, 0.75, 1.25])
    path = _write(tmp_path / "half.nc4", "SoilMoi0_10cm_inst", half, half)
    with pytest.raises(MalformedFile, match="unexpected grid"):
        open_gldas(path)


def test_wrong_units_raise(tmp_path: Path) -> None:
    axis = np.array([0.125, 0.375])
    path = _write(tmp_path / "u.nc4", "SoilMoi0_10cm_inst", axis, axis, units="m3 m-3")
    with pytest.raises(MalformedFile, match="units"):
        open_gldas(path)


@pytest.mark.parametrize("keep", [0, 100, 800_000])
def test_truncated_or_garbage_raises(real_data: Path, tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.nc4"
    path.write_bytes((real_data / GRANULE).read_bytes()[:keep])
    with pytest.raises(MalformedFile, match=r"cut\.nc4"):
        open_gldas(path)
    with pytest.raises(MalformedFile, match=r"cut\.nc4"):
        gldas_time(path)
