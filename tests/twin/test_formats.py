"""The twin's file writers produce the providers' real structures (compared with real producer files)."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smda_twin.formats import era5, gldas, ismn, mswep, smap

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def real() -> Path:
    if not REAL.is_dir():
        pytest.fail(
            f"real producer samples not found at {REAL}: check out ../shared beside the repository"
        )
    return REAL


# ------------------------------------------------------------------------------------------------
# netCDF helpers


def _attrs(var: Any) -> dict[str, Any]:
    return {k: var.getncattr(k) for k in var.ncattrs()}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return bool(a == b)
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.dtype != b_arr.dtype:
        return False
    return bool(np.array_equal(a_arr, b_arr, equal_nan=a_arr.dtype.kind == "f"))


def _compare_netcdf(
    mine: Path, real: Path, *, data_specific: set[str], skip_globals: set[str], ordered: bool = True
) -> None:
    """Same format, dimensions, variables (order, dtype, dims, filters, chunking), attributes.

    ``ordered``: attribute names in the same order (netCDF4-python cannot put ``_FillValue``
    after other attributes, which the real GLDAS file has).
    """
    with netCDF4.Dataset(mine) as m, netCDF4.Dataset(real) as r:
        assert m.data_model == r.data_model
        assert [(d.name, d.isunlimited()) for d in m.dimensions.values()] == [
            (d.name, d.isunlimited()) for d in r.dimensions.values()
        ]
        assert list(m.variables) == list(r.variables)
        for name, rv in r.variables.items():
            mv = m.variables[name]
            assert mv.dtype == rv.dtype, name
            assert mv.dimensions == rv.dimensions, name
            assert mv.filters() == rv.filters(), name
            if rv.chunking() == "contiguous":
                assert mv.chunking() == "contiguous", name
            else:
                assert mv.chunking() == [len(m.dimensions[d]) for d in mv.dimensions], name
            r_attrs, m_attrs = _attrs(rv), _attrs(mv)
            if ordered:
                assert list(m_attrs) == list(r_attrs), name
            else:
                assert sorted(m_attrs) == sorted(r_attrs), name
            for key, value in r_attrs.items():
                if key not in data_specific:
                    assert _same(m_attrs[key], value), (name, key, m_attrs[key], value)
        r_globals, m_globals = _attrs(r), _attrs(m)
        assert sorted(set(m_globals) - skip_globals) == sorted(set(r_globals) - skip_globals)
        for key, value in r_globals.items():
            if key not in skip_globals and key != "history":
                assert _same(m_globals[key], value), key


def _read_all(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return {name: np.asarray(var[...]) for name, var in ds.variables.items()}


# ------------------------------------------------------------------------------------------------
# ERA5

_ERA5_GRID_KEYS = {
    "GRIB_numberOfPoints",
    "GRIB_Nx",
    "GRIB_Ny",
    "GRIB_latitudeOfFirstGridPointInDegrees",
    "GRIB_latitudeOfLastGridPointInDegrees",
    "GRIB_longitudeOfFirstGridPointInDegrees",
    "GRIB_longitudeOfLastGridPointInDegrees",
}
_HISTORY = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d GRIB to CDM\+CF via cfgrib-[\d.]+/ecCodes-[\d.]+ with (\{.*\})$"
)

_INSTANT = (
    "era5/cds_2024_netcdf/era5_india_monthly12utc_instant/data_stream-oper_stepType-instant.nc"
)
_ACCUM = "era5/cds_2024_netcdf/era5_telangana_hourly_accum/data_stream-oper_stepType-accum.nc"
_LAND = "era5/cds_2024_netcdf/era5_land_kerala_daily12utc/era5land_kerala_may2024.nc"


def _era5_inputs(real_file: Path, n_time: int = 3) -> dict[str, Any]:
    """The real file's own coordinates and first values, as writer arguments."""
    values = _read_all(real_file)
    data = [
        n for n in values if n not in ("number", "valid_time", "latitude", "longitude", "expver")
    ]
    return {
        "fields": {n: values[n][:n_time] for n in data},
        "valid_time": values["valid_time"][:n_time].astype("datetime64[s]"),
        "latitude": values["latitude"],
        "longitude": values["longitude"],
        "expver": [str(e) for e in values["expver"][:n_time]],
    }


def _history_keys(path: Path) -> dict[str, Any]:
    with netCDF4.Dataset(path) as ds:
        match = _HISTORY.match(ds.getncattr("history"))
    assert match, "history is not cfgrib's"
    keys: dict[str, Any] = json.loads(match.group(1))
    assert keys.pop("source").endswith("data.grib")  # a temporary path at the CDS
    return keys


@pytest.mark.parametrize(
    ("member", "dataset"),
    [
        (_INSTANT, "reanalysis-era5-single-levels"),
        (_ACCUM, "reanalysis-era5-single-levels"),
        (_LAND, "reanalysis-era5-land"),
    ],
)
def test_era5_file_matches_real_cds_file(
    real: Path, tmp_path: Path, member: str, dataset: str
) -> None:
    source = real / member
    args = _era5_inputs(source)
    out = tmp_path / "era5.nc"
    era5.write_era5_netcdf(out, dataset=dataset, **args)
    _compare_netcdf(out, source, data_specific=_ERA5_GRID_KEYS, skip_globals=set())
    assert _history_keys(out) == _history_keys(source)
    # values round-trip, including the real file's NaN (sea) points and the coordinates
    back = _read_all(out)
    for name, values in args["fields"].items():
        np.testing.assert_array_equal(back[name], values)
    with xr.open_dataset(out) as ds:
        assert ds.latitude.attrs["stored_direction"] == "decreasing" and bool(
            (ds.latitude.diff("latitude") < 0).all()
        )
        np.testing.assert_array_equal(
            ds.valid_time.values, args["valid_time"].astype("datetime64[ns]")
        )
        assert list(ds.expver.values) == args["expver"] and int(ds.number) == 0


def test_era5_land_metadata_table_matches_real_file(real: Path) -> None:
    params = era5.era5_params("reanalysis-era5-land")
    with netCDF4.Dataset(real / _LAND) as ds:
        for name in ("t2m", "swvl1", "tp", "sshf", "slhf"):
            var = ds[name]
            p = params[name]
            assert (var.GRIB_paramId, var.GRIB_dataType, var.GRIB_stepType) == (
                p.param_id,
                p.data_type,
                p.step_type,
            )
            assert (var.GRIB_name, var.units, var.standard_name, var.GRIB_typeOfLevel) == (
                p.name,
                p.units,
                p.cf_name,
                p.type_of_level,
            )


def test_era5_zip_response_has_real_members(real: Path, tmp_path: Path) -> None:
    instant, accum = _era5_inputs(real / _INSTANT), _era5_inputs(real / _ACCUM)
    # one grid for both kinds: the instant file's
    n_lat, n_lon = len(instant["latitude"]), len(instant["longitude"])
    fields = {**instant["fields"], "tp": accum["fields"]["tp"][:, :n_lat, :n_lon]}
    out = tmp_path / "response"
    media = era5.write_era5_response(out, **{**instant, "fields": fields})
    assert media == "application/zip"
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [
            "data_stream-oper_stepType-instant.nc",
            "data_stream-oper_stepType-accum.nc",
        ]
        archive.extractall(tmp_path / "members")
    for name, real_member in (("instant", _INSTANT), ("accum", _ACCUM)):
        mine = tmp_path / "members" / era5.zip_member_name(name)
        _compare_netcdf(mine, real / real_member, data_specific=_ERA5_GRID_KEYS, skip_globals=set())
        assert _history_keys(mine) == _history_keys(real / real_member)
    # a single kind comes back as a bare netCDF file
    single = tmp_path / "single"
    assert era5.write_era5_response(single, **instant) == "application/netcdf"
    assert single.read_bytes()[:4] == b"\x89HDF"
    # ERA5-Land never splits
    land = _era5_inputs(real / _LAND)
    assert (
        era5.write_era5_response(tmp_path / "land", dataset="reanalysis-era5-land", **land)
        == "application/netcdf"
    )


def test_era5_names_tables() -> None:
    assert set(era5.REQUEST_NAMES.values()) <= set(era5.STEP_TYPE)
    for short in (
        "t2m",
        "d2m",
        "ssrd",
        "u10",
        "v10",
        "sp",
        "tp",
        "swvl1",
        "z",
        "lsm",
        "slt",
        "cvh",
        "cvl",
        "tvh",
        "tvl",
    ):
        assert short in era5.REQUEST_NAMES.values()
    assert {n for n, k in era5.STEP_TYPE.items() if k == "accum"} >= {"tp", "ssrd"}
    assert era5.REQUEST_NAMES["total_precipitation"] == "tp" and era5.STEP_TYPE["t2m"] == "instant"


def test_era5_rejects_what_the_cds_never_writes(tmp_path: Path) -> None:
    times = np.array(["2024-01-01T00"], dtype="datetime64[s]")
    grid: dict[str, Any] = {
        "valid_time": times,
        "latitude": [1.0, 0.0],
        "longitude": [0.0, 1.0],
        "expver": ["0005"],
    }
    field = np.zeros((1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="one stepType"):
        era5.write_era5_netcdf(tmp_path / "x.nc", fields={"t2m": field, "tp": field}, **grid)
    with pytest.raises(ValueError, match="decreasing"):
        era5.write_era5_netcdf(
            tmp_path / "x.nc", fields={"t2m": field}, **{**grid, "latitude": [0.0, 1.0]}
        )
    with pytest.raises(ValueError, match="not offered by reanalysis-era5-land"):
        era5.write_era5_netcdf(
            tmp_path / "x.nc", fields={"slt": field}, dataset="reanalysis-era5-land", **grid
        )
    with pytest.raises(ValueError, match="unknown CDS dataset"):
        era5.write_era5_netcdf(tmp_path / "x.nc", fields={"t2m": field}, dataset="era6", **grid)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_era5_is_deterministic(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    args: dict[str, Any] = {
        "fields": {
            "t2m": rng.random((2, 3, 4), dtype=np.float32),
            "tp": rng.random((2, 3, 4), dtype=np.float32),
        },
        "valid_time": np.array(["2024-01-01T00", "2024-01-01T01"], dtype="datetime64[s]"),
        "latitude": [40.0, 39.75, 39.5],
        "longitude": [10.0, 10.25, 10.5, 10.75],
        "expver": ["0005", "0005"],
    }
    era5.write_era5_response(tmp_path / "a.zip", **args)
    era5.write_era5_response(tmp_path / "b.zip", **args)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


# ------------------------------------------------------------------------------------------------
# SMAP L3

_SMAP_REAL = "smap/SPL3SMP/2015.04.01/SMAP_L3_SM_P_20150401_R13080_001.h5"
_SMAP_V8 = "colocated/hawaii_qa4sm/ts_cell0165/SMAP_L3/SMAP_V8_{}/netcdf/0165.nc"


def _real_smap_inputs(real: Path) -> dict[str, np.ndarray]:
    with h5py.File(real / _SMAP_REAL) as f:
        g = f["Soil_Moisture_Retrieval_Data"]
        names = (
            "soil_moisture",
            "retrieval_qual_flag",
            "tb_time_seconds",
            "surface_flag",
            "surface_temperature",
        )
        return {n: g[n][...] for n in names}


@pytest.fixture(scope="module")
def spl3smp(real: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 2015 granule's values written in the current AM/PM layout (PM: the same values)."""
    values = _real_smap_inputs(real)
    out = tmp_path_factory.mktemp("smap") / smap.spl3smp_filename(date(2015, 4, 1))
    smap.write_spl3smp(out, day=date(2015, 4, 1), am=values, pm=values)
    return out


def _string_layout(obj: Any, name: str) -> tuple[bool, int]:
    tid = obj.attrs.get_id(name).get_type()
    return tid.is_variable_str(), tid.get_strpad()


def test_spl3smp_layout_matches_real_granule(real: Path, spl3smp: Path) -> None:
    with h5py.File(real / _SMAP_REAL) as r, h5py.File(spl3smp) as m:
        assert dict(m.attrs) == {} and dict(r.attrs) == {}
        assert list(m) == ["Metadata", smap.AM_GROUP, smap.PM_GROUP]
        assert set(m["Metadata"]) == set(r["Metadata"])
        for sub in ("DatasetIdentification", "Extent", "GridSpatialRepresentation", "ProcessStep"):
            assert set(m["Metadata"][sub].attrs) <= set(r["Metadata"][sub].attrs), sub
        for sub in ("DatasetIdentification", "Extent"):
            assert set(m["Metadata"][sub].attrs) == set(r["Metadata"][sub].attrs), sub
            for key in m["Metadata"][sub].attrs:
                if isinstance(r["Metadata"][sub].attrs[key], str):
                    assert _string_layout(m["Metadata"][sub], key) == _string_layout(
                        r["Metadata"][sub], key
                    )
        ident = m["Metadata/DatasetIdentification"].attrs
        assert (ident["shortName"], ident["SMAPShortName"], ident["ECSVersionID"]) == (
            "SPL3SMP",
            "L3_SM_P",
            "009",
        )
        assert ident["fileName"] == spl3smp.name and ident["CompositeReleaseID"] == "R19240"
        assert m["Metadata/Extent"].attrs["rangeBeginningDateTime"] == "2015-04-01T00:00:00.000Z"

        early = r["Soil_Moisture_Retrieval_Data"]
        am, pm = m[smap.AM_GROUP], m[smap.PM_GROUP]
        assert set(am) == set(early)
        assert set(pm) == {f"{n}_pm" for n in early}
        for name, rd in early.items():
            for md in (am[name], pm[f"{name}_pm"]):
                assert (md.dtype, md.shape, md.chunks, md.compression) == (
                    rd.dtype,
                    rd.shape,
                    rd.chunks,
                    rd.compression,
                )
                assert md.compression_opts == rd.compression_opts and md.shuffle == rd.shuffle
                assert set(md.attrs) == set(rd.attrs), (
                    name
                )  # no dimension scales, same attribute names
                if "_FillValue" in rd.attrs:
                    assert md.attrs["_FillValue"] == rd.attrs["_FillValue"]
                    assert md.attrs["_FillValue"].dtype == rd.attrs["_FillValue"].dtype
                for key in rd.attrs:
                    if isinstance(rd.attrs[key], bytes):
                        assert _string_layout(md, key) == _string_layout(rd, key), (name, key)
                    else:
                        assert md.attrs[key].dtype == rd.attrs[key].dtype, (name, key)
                if "units" in rd.attrs and name != "vegetation_water_content":
                    assert md.attrs["units"] == rd.attrs["units"], name


def test_spl3smp_attributes_follow_real_v8_where_known(real: Path, spl3smp: Path) -> None:
    with h5py.File(spl3smp) as m:
        for group, suffix, label in ((smap.AM_GROUP, "", "AM"), (smap.PM_GROUP, "_pm", "PM")):
            with netCDF4.Dataset(real / _SMAP_V8.format(label)) as v8:
                names = [n for n in v8.variables if v8[n].dimensions == ("locations", "time")]
                assert len(names) == 9
                for name in names:
                    ours = m[group][name + suffix]
                    for key in v8[name].ncattrs():
                        if key == "name":  # added by the time-series converter
                            continue
                        value = ours.attrs[key]
                        value = value.decode() if isinstance(value, bytes) else value
                        assert _same(value, v8[name].getncattr(key)), (label, name, key)


def test_spl3smp_round_trip_and_derived_coordinates(real: Path, spl3smp: Path) -> None:
    values = _real_smap_inputs(real)
    with h5py.File(real / _SMAP_REAL) as r, h5py.File(spl3smp) as m:
        early = r["Soil_Moisture_Retrieval_Data"]
        for group, suffix in ((smap.AM_GROUP, ""), (smap.PM_GROUP, "_pm")):
            g = m[group]
            for name, array in values.items():
                np.testing.assert_array_equal(g[name + suffix][...], array)
            # derived exactly as the producer: coordinates and indices where a TB was observed
            for name in ("latitude", "longitude", "EASE_row_index", "EASE_column_index"):
                np.testing.assert_array_equal(g[name + suffix][...], early[name][...], err_msg=name)
            ours, theirs = g["tb_time_utc" + suffix][...], early["tb_time_utc"][...]
            timed = values["tb_time_seconds"] != -9999.0
            np.testing.assert_array_equal(ours[~timed], theirs[~timed])  # "N/A" padded
            good = timed & (
                np.char.find(theirs, b"*") < 0
            )  # 97 real cells have ".***" milliseconds
            ours_t = np.array([s[:23].decode() for s in ours[good]], dtype="datetime64[ms]")
            theirs_t = np.array([s[:23].decode() for s in theirs[good]], dtype="datetime64[ms]")
            # the producer averages tb_time_utc separately: it differs from tb_time_seconds by ≤ 4 ms
            assert np.abs((ours_t - theirs_t).astype(np.int64)).max() <= 4
    # what a reader sees through xarray (netCDF-C) and h5netcdf
    with xr.open_dataset(spl3smp, group=smap.PM_GROUP) as ds:
        assert float(ds.soil_moisture_pm[100, 200]) == pytest.approx(0.042025514)
        assert int(ds.soil_moisture_pm.notnull().sum()) == 35278
        assert float(ds.latitude_pm[100, 200]) == pytest.approx(30.311827)
    with xr.open_dataset(spl3smp, group=smap.AM_GROUP, engine="h5netcdf", phony_dims="sort") as ds:
        assert ds.soil_moisture.dims == ("phony_dim_0", "phony_dim_1")
        assert float(ds.soil_moisture[144, 767]) == pytest.approx(0.3502773)


def test_spl3smp_e_layout(tmp_path: Path) -> None:
    shape = (1624, 3856)
    sm = np.full(shape, -9999.0, np.float32)
    sm[400:410, 1000:1010] = 0.3
    qual = np.where(sm > 0, 0, 65534).astype(np.uint16)
    seconds = np.where(sm > 0, 7.6e8, -9999.0)
    am: dict[str, np.ndarray] = {
        "soil_moisture": sm,
        "retrieval_qual_flag": qual,
        "tb_time_seconds": seconds,
    }
    pm = {**am, "soil_moisture": np.where(sm > 0, 0.2, np.nan)}
    day = date(2024, 3, 1)
    out = tmp_path / smap.spl3smp_e_filename(day)
    assert out.name == "SMAP_L3_SM_P_E_20240301_R19240_001.h5"
    assert smap.spl3smp_filename(day, "R19240", 2) == "SMAP_L3_SM_P_20240301_R19240_002.h5"
    smap.write_spl3smp_e(out, day=day, am=am, pm=pm)
    with h5py.File(out) as f:
        ident = f["Metadata/DatasetIdentification"].attrs
        assert (ident["shortName"], ident["SMAPShortName"], ident["ECSVersionID"]) == (
            "SPL3SMP_E",
            "L3_SM_P_E",
            "006",
        )
        assert f["Metadata/GridSpatialRepresentation/Column"].attrs["dimensionSize"] == 3856
        for name in smap.DATASET_NAMES:
            assert f[smap.AM_GROUP][name].shape[:2] == shape
            assert f[smap.AM_GROUP][name].chunks[:2] == (1, 3856)
            assert name + "_pm" in f[smap.PM_GROUP]
        assert f[smap.AM_GROUP]["EASE_row_index"].attrs["valid_max"] == 1623
        assert b"9 km" in f[smap.AM_GROUP]["vegetation_water_content"].attrs["long_name"]
        np.testing.assert_array_equal(
            f[smap.PM_GROUP]["soil_moisture_pm"][400:410, 1000:1010], np.float32(0.2)
        )
        assert f[smap.PM_GROUP]["soil_moisture_pm"][0, 0] == -9999.0  # NaN in → fill out
        assert f[smap.AM_GROUP]["albedo"][405, 1005] == -9999.0  # not given → fill
        lat, lon = f[smap.AM_GROUP]["latitude"][405, 1005], f[smap.AM_GROUP]["longitude"][405, 1005]
        assert f[smap.AM_GROUP]["latitude"][0, 0] == -9999.0
        assert (
            f[smap.AM_GROUP]["tb_time_utc"][405, 1005] == b"2024-01-31T19:06:40.000Z"
        )  # J2000 noon + 7.6e8 s
    # the centre of cell (405, 1005) on EPSG:6933 (SOURCES.md)
    from pyproj import Transformer

    x = -17367530.44516 + (1005 + 0.5) * 9008.055210146
    y = 7314540.83064 - (405 + 0.5) * 9008.055210146
    want_lon, want_lat = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True).transform(
        x, y
    )
    assert (lat, lon) == (pytest.approx(want_lat, abs=1e-5), pytest.approx(want_lon, abs=1e-5))
    lat36, lon36 = smap.ease2_cell_centres(36032.220840584, (406, 964))
    assert (lon36[0], lat36[0]) == (
        pytest.approx(-179.813, abs=1e-3),
        pytest.approx(83.632, abs=1e-3),
    )


def test_smap_rejects_bad_input_and_is_deterministic(tmp_path: Path) -> None:
    shape = (406, 964)
    good: dict[str, Any] = {
        "soil_moisture": np.full(shape, -9999.0, np.float32),
        "retrieval_qual_flag": np.full(shape, 65534, np.uint16),
        "tb_time_seconds": np.full(shape, -9999.0),
    }
    good["soil_moisture"][10, 10], good["tb_time_seconds"][10, 10] = 0.25, 5e8
    with pytest.raises(ValueError, match="lacks"):
        smap.write_spl3smp(tmp_path / "x.h5", day=date(2020, 1, 1), am=good, pm={})
    with pytest.raises(ValueError, match="derived by the writer"):
        smap.write_spl3smp(
            tmp_path / "x.h5",
            day=date(2020, 1, 1),
            am={**good, "latitude": good["soil_moisture"]},
            pm=good,
        )
    with pytest.raises(ValueError, match="unknown dataset"):
        smap.write_spl3smp(
            tmp_path / "x.h5", day=date(2020, 1, 1), am={**good, "soil_moisture_pm": 1}, pm=good
        )
    with pytest.raises(ValueError, match="shape"):
        smap.write_spl3smp(
            tmp_path / "x.h5",
            day=date(2020, 1, 1),
            am={**good, "albedo": np.zeros((2, 2))},
            pm=good,
        )
    assert not list(tmp_path.iterdir())
    smap.write_spl3smp(tmp_path / "a.h5", day=date(2020, 1, 1), am=good, pm=good)
    smap.write_spl3smp(tmp_path / "b.h5", day=date(2020, 1, 1), am=good, pm=good)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


# ------------------------------------------------------------------------------------------------
# GLDAS

_GLDAS = "gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4"


def test_gldas_matches_real_granule(real: Path, tmp_path: Path) -> None:
    source = real / _GLDAS
    values = _read_all(source)
    when = datetime(2016, 1, 1, 3)
    out = tmp_path / gldas.gldas_filename(when)
    assert out.name == source.name
    fields = {n: values[n] for n in ("SoilMoi0_10cm_inst", "SoilMoi10_40cm_inst")}
    gldas.write_gldas_noah025_3h(
        out, time=when, fields=fields, created=datetime(2016, 11, 8, 11, 16, 19, 593000)
    )
    # the writer derives vmin/vmax from the values: with the real values they are the real ones
    _compare_netcdf(out, source, data_specific=set(), skip_globals={"NCO"}, ordered=False)
    with netCDF4.Dataset(out) as m, netCDF4.Dataset(source) as r:
        assert m.getncattr("history") == "created on date: 2016-11-08T11:16:19.593"
        assert r.getncattr("history").endswith(m.getncattr("history"))
        assert m["time"].units == " minutes since 2000-01-01 03:00:00"
    back = _read_all(out)
    for name in values:
        np.testing.assert_array_equal(back[name], values[name], err_msg=name)
    with xr.open_dataset(out) as ds:
        assert ds.time.values[0] == np.datetime64("2016-01-01T03:00")
        assert float(ds.SoilMoi0_10cm_inst[0, 432, 785]) == pytest.approx(26.088, abs=1e-3)
        assert int(ds.SoilMoi0_10cm_inst.notnull().sum()) == 243883


def test_gldas_variables_follow_the_granule_xml(real: Path, tmp_path: Path) -> None:
    text = (real / "gldas" / "GLDAS_NOAH025_3H.A20150101.0000.021.nc4.xml").read_text()
    listed = re.findall(r"<ParameterName>([^:]+):(.+) \[(.*)\]</ParameterName>", text)
    assert {name: (long, units) for name, long, units in listed} == {
        n: (v.long_name, v.units) for n, v in gldas.VARIABLES.items()
    }
    sm = np.full(gldas.SHAPE, np.nan, np.float32)
    sm[300:310, 700:720] = 25.0
    rain = np.where(np.isnan(sm), np.nan, 1e-5).astype(np.float32)
    out = tmp_path / "g.nc4"
    gldas.write_gldas_noah025_3h(
        out, time=datetime(2024, 5, 1, 21), fields={"Rainf_f_tavg": rain, "SoilMoi0_10cm_inst": sm}
    )
    with netCDF4.Dataset(out) as ds:
        assert list(ds.variables)[:2] == ["SoilMoi0_10cm_inst", "Rainf_f_tavg"]  # product order
        assert (
            ds["Rainf_f_tavg"].cell_methods == "time: mean"
            and ds["Rainf_f_tavg"].units == "kg m-2 s-1"
        )
        assert (ds["SoilMoi0_10cm_inst"].vmin, ds["SoilMoi0_10cm_inst"].vmax) == (25.0, 25.0)
        minutes = (datetime(2024, 5, 1, 21) - datetime(2000, 1, 1, 3)).total_seconds() / 60
        np.testing.assert_array_equal(ds["time_bnds"][:], [[minutes - 180, minutes]])
        assert (ds["time"].begin_date, ds["time"].begin_time) == ("20240501", "210000")
    with pytest.raises(ValueError, match="3-hourly"):
        gldas.write_gldas_noah025_3h(
            out, time=datetime(2024, 5, 1, 4), fields={"SoilMoi0_10cm_inst": sm}
        )
    with pytest.raises(ValueError, match="required"):
        gldas.write_gldas_noah025_3h(
            out, time=datetime(2024, 5, 1, 3), fields={"Rainf_f_tavg": rain}
        )
    with pytest.raises(ValueError, match="unknown GLDAS variable"):
        gldas.write_gldas_noah025_3h(
            out, time=datetime(2024, 5, 1, 3), fields={"SoilMoi0_10cm_inst": sm, "sm": sm}
        )


# ------------------------------------------------------------------------------------------------
# MSWEP (no real file: SOURCES.md)


def test_mswep_daily_follows_sources_md(tmp_path: Path) -> None:
    day = date(2024, 2, 29)
    assert (
        mswep.mswep_filename(day) == "2024060.nc"
        and mswep.mswep_filename(date(2023, 1, 1)) == "2023001.nc"
    )
    rng = np.random.default_rng(5)
    precip = rng.gamma(0.5, 4.0, mswep.SHAPE).astype(np.float32)
    out = tmp_path / mswep.mswep_filename(day)
    mswep.write_mswep_daily(out, day=day, precipitation=precip)
    with netCDF4.Dataset(out) as ds:
        assert ds.data_model == "NETCDF4"
        assert {n: len(d) for n, d in ds.dimensions.items()} == {
            "time": 1,
            "lat": 1800,
            "lon": 3600,
        }
        var = ds["precipitation"]
        assert var.dimensions == ("time", "lat", "lon") and var.dtype == np.float32
        assert var.filters()["zlib"] and var.units == "mm/d"
        lat, lon = ds["lat"][:], ds["lon"][:]
        assert (
            lat[0] == pytest.approx(89.95)
            and lat[-1] == pytest.approx(-89.95)
            and np.all(np.diff(lat) < 0)
        )
        assert lon[0] == pytest.approx(-179.95) and lon[-1] == pytest.approx(179.95)
    with xr.open_dataset(out) as ds:
        assert ds.time.values[0] == np.datetime64("2024-02-29")
        np.testing.assert_array_equal(ds.precipitation.values[0], precip)
    with pytest.raises(ValueError, match="shape"):
        mswep.write_mswep_daily(out, day=day, precipitation=np.zeros((180, 360)))


# ------------------------------------------------------------------------------------------------
# ISMN

_RECORD = re.compile(r"^(\d{4}/\d\d/\d\d) (\d\d:\d\d) +(-?\d+\.\d+) (\S+)(?: (\S+))? *$")


def _parse_stm(path: Path) -> tuple[str, list[tuple[str, float, str, str]]]:
    """A minimal line parser: header, then (timestamp, value, ismn flag, provider flag) records."""
    lines = [line for line in path.read_bytes().decode("ascii").splitlines() if line.strip()]
    records = []
    for line in lines[1:]:
        match = _RECORD.match(line)
        assert match, line
        records.append((f"{match[1]} {match[2]}", float(match[3]), match[4], match[5] or ""))
    return lines[0], records


_ARM1 = "ismn/archive_header_values_2017/COSMOS/ARM-1/COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
_NARBONNE = "ismn/format_header_values/SMOSMANIA/SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"


def _station_from_real(path: Path, **facts: Any) -> ismn.IsmnStation:
    _, records = _parse_stm(path)
    return ismn.IsmnStation(
        times=np.array([r[0].replace("/", "-") for r in records], dtype="datetime64[m]"),
        values=[r[1] for r in records],
        flags=[r[2] for r in records],
        provider_flags=[r[3] for r in records],
        **facts,
    )


_ARM1_FACTS: dict[str, Any] = {
    "network": "COSMOS",
    "station": "ARM-1",
    "lat": 36.6054,
    "lon": -97.4878,
    "elevation": 322.0,
    "depth_from": 0.0,
    "depth_to": 0.19,
    "sensor": "Cosmic-ray-Probe",
    "period": (date(2017, 8, 10), date(2018, 8, 9)),
}


@pytest.mark.parametrize(
    ("member", "facts"),
    [
        (_ARM1, _ARM1_FACTS),
        (
            _NARBONNE,
            {
                "network": "SMOSMANIA",
                "station": "Narbonne",
                "lat": 43.15,
                "lon": 2.9567,
                "elevation": 112.0,
                "depth_from": 0.05,
                "depth_to": 0.05,
                "sensor": "ThetaProbe-ML2X",
                "period": (date(2007, 1, 1), date(2007, 1, 31)),
            },
        ),
    ],
)
def test_ismn_lines_match_real_header_values_file(
    real: Path, tmp_path: Path, member: str, facts: dict[str, Any]
) -> None:
    source = real / member
    station = _station_from_real(source, **facts)
    out = ismn.write_ismn_station(
        tmp_path, **{k: getattr(station, k) for k in station.__dataclass_fields__}
    )
    assert out.name == source.name
    assert out.parent == tmp_path / facts["network"] / facts["station"]
    mine = [line.rstrip() for line in out.read_text().splitlines()]
    theirs = [
        line.rstrip() for line in source.read_bytes().decode("ascii").splitlines() if line.strip()
    ]
    assert mine == theirs  # byte for byte, up to trailing blanks and line endings


def test_ismn_static_variables_like_real(real: Path, tmp_path: Path) -> None:
    station = _station_from_real(real / _ARM1, **_ARM1_FACTS)
    ismn.write_ismn_station(
        tmp_path, **{k: getattr(station, k) for k in station.__dataclass_fields__}
    )
    name = "COSMOS_COSMOS_ARM-1_static_variables.csv"
    mine = pd.read_csv(tmp_path / "COSMOS" / "ARM-1" / name, sep=";")
    theirs = pd.read_csv(
        real
        / "ismn"
        / "archive_header_values_2025"
        / "SCAN"
        / "Kainaliu"
        / "SCAN_SCAN_Kainaliu_static_variables.csv",
        sep=";",
    )
    assert list(mine.columns) == list(theirs.columns)
    assert set(mine.quantity_name) == set(theirs.quantity_name)


def _series(n: int = 48) -> dict[str, Any]:
    times = np.datetime64("2017-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")
    flags = ["G"] * n
    flags[3], flags[4] = "D05", "C02,D10"
    provider = ["M"] * n
    provider[5] = ""
    return {
        "times": times,
        "values": np.round(0.2 + 0.05 * np.sin(np.arange(n) / 5), 4),
        "flags": flags,
        "provider_flags": provider,
    }


def _check_ismn_reads(
    source: Path, series: dict[str, Any], sensors: dict[tuple[str, str], str]
) -> None:
    from ismn.interface import ISMN_Interface

    interface = ISMN_Interface(str(source))
    ids = interface.get_dataset_ids("soil_moisture", min_depth=0.0, max_depth=0.2)
    assert len(ids) == len(sensors)
    for i in ids:
        data, meta = interface.read(i, return_meta=True)
        key = (meta["network"]["val"], meta["station"]["val"])
        assert meta["instrument"]["val"] == sensors[key]
        np.testing.assert_allclose(data["soil_moisture"].to_numpy(), series["values"])
        assert list(data["soil_moisture_flag"]) == series["flags"]
        orig = [("" if pd.isna(f) else f) for f in data["soil_moisture_orig_flag"]]
        assert orig == series["provider_flags"]
        assert list(data.index) == list(pd.to_datetime(series["times"]))


def test_ismn_files_and_archive_are_readable_by_ismn(tmp_path: Path) -> None:
    series = _series()
    stations = [
        ismn.IsmnStation(
            "SCAN",
            "Kainaliu",
            19.53322,
            -155.92914,
            411.0,
            0.0508,
            0.0508,
            "Hydraprobe Analog_B",
            **series,
        ),
        ismn.IsmnStation(
            "COSMOS",
            "SilverSword",
            19.765,
            -155.4234,
            2868.0,
            0.0,
            0.17,
            "Cosmic-ray-Probe",
            **series,
        ),
    ]
    sensors = {
        ("SCAN", "Kainaliu"): "Hydraprobe-Analog-B",
        ("COSMOS", "SilverSword"): "Cosmic-ray-Probe",
    }
    folder = tmp_path / "folder"
    for s in stations:
        ismn.write_ismn_station(
            folder, **{k: getattr(s, k) for k in s.__dataclass_fields__}, newline="\r"
        )
    _check_ismn_reads(folder, series, sensors)

    archive = (
        tmp_path
        / "zipped"
        / ismn.ismn_archive_filename(date(2017, 1, 1), date(2017, 1, 2), created=date(2025, 6, 17))
    )
    archive.parent.mkdir()
    ismn.write_ismn_archive(archive, stations)
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert names[:2] == ["Readme.txt", "ISMN_qualityflags_description.txt"]
    assert "SCAN/" in names and "SCAN/Kainaliu/" in names
    assert (
        "SCAN/Kainaliu/SCAN_SCAN_Kainaliu_sm_0.050800_0.050800_Hydraprobe-Analog-B_20170101_20170102.stm"
        in names
    )
    assert "COSMOS/SilverSword/COSMOS_COSMOS_SilverSword_static_variables.csv" in names
    _check_ismn_reads(archive, series, sensors)

    again = tmp_path / "again.zip"
    ismn.write_ismn_archive(again, stations)
    assert again.read_bytes() == archive.read_bytes()


def test_ismn_rejects_what_ismn_cannot_read(tmp_path: Path) -> None:
    series = _series(8)
    base: dict[str, Any] = {
        "network": "SCAN",
        "station": "Pua",
        "lat": 19.8,
        "lon": -155.3,
        "elevation": 1948.9,
        "depth_from": 0.05,
        "depth_to": 0.05,
        "sensor": "X",
    }
    with pytest.raises(ValueError, match="without '_'"):
        ismn.write_ismn_station(tmp_path, **{**base, "station": "Pua_Akala"}, **series)
    with pytest.raises(ValueError, match="provider flag"):
        ismn.write_ismn_station(tmp_path, **base, **{**series, "provider_flags": [""] * 8})
    with pytest.raises(ValueError, match="increasing"):
        ismn.write_ismn_station(tmp_path, **base, **{**series, "times": series["times"][::-1]})
    with pytest.raises(ValueError, match="finite"):
        ismn.write_ismn_station(tmp_path, **base, **{**series, "values": [0.1, np.nan, *[0.2] * 6]})
    assert not list(tmp_path.rglob("*.stm"))


def test_ismn_default_provider_flag_and_line_endings(tmp_path: Path) -> None:
    series = {**_series(6), "provider_flags": None}
    out = ismn.write_ismn_station(
        tmp_path,
        network="SMOSMANIA",
        station="Narbonne",
        lat=43.15,
        lon=2.9567,
        elevation=112.0,
        depth_from=0.05,
        depth_to=0.05,
        sensor="ThetaProbe-ML2X",
        newline="\r",
        **series,
    )
    raw = out.read_bytes()
    assert b"\n" not in raw and raw.count(b"\r") == 7  # CR only, as the 2019 archives
    header, records = _parse_stm(out)
    assert header.split()[:3] == ["SMOSMANIA", "SMOSMANIA", "Narbonne"]
    assert [r[3] for r in records] == ["M"] * 6
    assert [r[1] for r in records] == list(series["values"])
