"""ISMN reader: every real ISMN format (STRUCTURE.md §2, §5.2), the twin's archive, bad input."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smda.errors import MalformedFile
from smda.ingest.readers.ismn import IsmnStation, read_ismn
from smda_twin.formats.ismn import IsmnStation as TwinStation
from smda_twin.formats.ismn import write_ismn_archive

HAWAII = "colocated/hawaii_qa4sm/ismn_ceop"
MULTI = "ismn/multinetwork_header_values"


def _read(source: Path, tmp_path: Path, **options: object) -> dict[str, IsmnStation]:
    stations = read_ismn(source, workdir=tmp_path / "work", **options)  # type: ignore[arg-type]
    return {f"{s.network}/{s.station}/{s.sensor}@{s.depth_to:g}": s for s in stations}


def _flag_counts(
    source: Path, tmp_path: Path, key: str, flags: list[str], **options: object
) -> dict[str, int]:
    return {
        flag: len(_read(source, tmp_path, good_flags=(flag,), **options)[key].hourly)
        for flag in flags
    }


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


# -------------------------------------------------------------------------------- formats


def test_header_values_and_ceop_separate_read_the_same(real_data: Path, tmp_path: Path) -> None:
    (hv,) = read_ismn(real_data / "ismn/format_header_values", workdir=tmp_path, good_flags=None)
    (cs,) = read_ismn(real_data / "ismn/format_ceop_sep", workdir=tmp_path, good_flags=None)
    for one in (hv, cs):
        assert (one.network, one.station, one.sensor) == (
            "SMOSMANIA",
            "Narbonne",
            "ThetaProbe-ML2X",
        )
        assert (one.lat, one.lon, one.elevation) == (43.15, 2.9567, 112.0)
        assert (one.depth_from, one.depth_to) == (0.05, 0.05)
        assert len(one.hourly) == 741
        assert one.hourly.index[0] == _ts("2007-01-01 01:00") and one.hourly.iloc[0] == 0.2140
        assert one.hourly.index[-1] == _ts("2007-01-31 23:00") and one.hourly.iloc[-1] == 0.1524
    pd.testing.assert_series_equal(hv.hourly, cs.hourly)
    pd.testing.assert_series_equal(hv.soil_moisture, cs.soil_moisture)


def test_old_ceop_format_is_read_by_the_fallback_parser(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "ismn/format_ceop"
    every = read_ismn(source, workdir=tmp_path, max_depth=1.0, good_flags=None, min_count=1)
    assert [s.depth_to for s in every] == [0.05, 0.10, 0.20, 0.30]
    assert sum(len(s.hourly) for s in every) == 169  # one line per depth and hour
    (surface,) = read_ismn(source, workdir=tmp_path, good_flags=("U",), min_count=1)
    assert (surface.network, surface.station, surface.sensor) == ("SMOSMANIA", "Narbonne", "")
    assert (surface.lat, surface.lon, surface.elevation) == (43.15, 2.9567, 112.0)
    assert surface.hourly.index[0] == _ts("2010-10-21 02:00") and surface.hourly.iloc[0] == 0.2252
    ten = next(s for s in every if s.depth_to == 0.10)
    assert ten.hourly.iloc[0] == 0.2913  # the soil moisture column, not the temperature 12.20
    # an unchecked (U) archive has no G records
    (default,) = read_ismn(source, workdir=tmp_path)
    assert default.hourly.empty and default.soil_moisture.empty


def test_multinetwork_folder_with_cr_line_endings(real_data: Path, tmp_path: Path) -> None:
    source = real_data / MULTI
    assert b"\r" in next(source.rglob("*AAMU*.stm")).read_bytes()[:200]
    stations = _read(source, tmp_path, good_flags=None)
    assert sorted(stations) == [
        "MAQU/CST-01/ECH20-EC-TM@0.05",
        "MAQU/CST-02/ECH20-EC-TM@0.05",
        "SCAN/AAMU-jtg/Hydraprobe-Analog-(2.5-Volt)@0.05",
        "SCAN/Abrams/Hydraprobe-Analog-(2.5-Volt)@0.05",
        "SCAN/AdamsRanch#1/Hydraprobe-Analog-(2.5-Volt)@0.05",
        "SOILSCAPE/node414/EC5@0.05",
        "SOILSCAPE/node505/EC5@0.05",
        "SOILSCAPE/node703/EC5@0.05",
    ]
    aamu = stations["SCAN/AAMU-jtg/Hydraprobe-Analog-(2.5-Volt)@0.05"]
    assert len(aamu.hourly) == 42895  # incl. the 125 records without a provider flag
    assert aamu.hourly.index[0] == _ts("2007-03-22 21:00")  # not the 20070101 of the name
    cst = stations["MAQU/CST-01/ECH20-EC-TM@0.05"]
    assert len(cst.hourly) == 15927
    assert cst.hourly.index[0] == _ts("2008-07-01 00:00") and cst.hourly.iloc[0] == 0.5
    counts = _flag_counts(
        source,
        tmp_path,
        "SCAN/AAMU-jtg/Hydraprobe-Analog-(2.5-Volt)@0.05",
        ["U", "D02", "D02,D03", "D05", "D03", "C03"],
    )
    assert counts == {"U": 40336, "D02": 1368, "D02,D03": 358, "D05": 220, "D03": 189, "C03": 184}


def test_zip_reads_like_the_folder_and_leaves_workdir_empty(
    real_data: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    from_zip = read_ismn(real_data / f"{MULTI}.zip", workdir=workdir, good_flags=None)
    from_dir = read_ismn(real_data / MULTI, workdir=tmp_path / "other", good_flags=None)
    assert [s.file for s in from_zip] == [s.file for s in from_dir]
    for a, b in zip(from_zip, from_dir, strict=True):
        assert (a.network, a.station, a.lat, a.lon, a.depth_to) == (
            b.network,
            b.station,
            b.lat,
            b.lon,
            b.depth_to,
        )
        pd.testing.assert_series_equal(a.hourly, b.hourly)
    assert not any(workdir.rglob("*")), "extracted files must not stay in the workdir"


def test_unchecked_archive_yields_no_good_data(real_data: Path, tmp_path: Path) -> None:
    stations = read_ismn(real_data / MULTI, workdir=tmp_path)
    assert len(stations) == 8
    assert all(s.hourly.empty and s.soil_moisture.empty for s in stations)
    unchecked = read_ismn(real_data / MULTI, workdir=tmp_path, good_flags=("G", "U"))
    assert sum(len(s.hourly) for s in unchecked) > 100_000


def test_2017_archive_cosmos_needs_a_deeper_max_depth(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "ismn/archive_header_values_2017"
    assert read_ismn(source, workdir=tmp_path) == []
    stations = _read(source, tmp_path, max_depth=0.25, good_flags=None)
    arm = stations["COSMOS/ARM-1/Cosmic-ray-Probe@0.19"]
    assert (arm.lat, arm.lon, arm.elevation, arm.depth_from) == (36.6054, -97.4878, 322.0, 0.0)
    assert len(arm.hourly) == 6865
    assert arm.hourly.index[0] == _ts("2017-08-10 00:00") and arm.hourly.iloc[0] == 0.141
    assert arm.hourly.index[-1] == _ts("2018-08-09 23:00") and arm.hourly.iloc[-1] == 0.11
    barrow = stations["COSMOS/Barrow-ARM/Cosmic-ray-Probe@0.21"]
    assert len(barrow.hourly) == 7059 and barrow.hourly.iloc[0] == 0.177


def test_2025_layout_sensor_with_space_and_provider_flag_v(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "ismn/archive_header_values_2025"
    stations = _read(source, tmp_path, min_count=1)  # SCAN's 0.0508 m counts as surface
    b = stations["SCAN/Kainaliu/Hydraprobe-Analog-B@0.0508"]
    assert (b.lat, b.lon, b.elevation, b.depth_from) == (19.53322, -155.92914, 411.0, 0.0508)
    assert len(b.hourly) == 56  # all G (provider flag V)
    assert b.hourly.index[0] == _ts("2012-03-28 02:00") and b.hourly.iloc[0] == 0.22
    e = stations["SCAN/Kainaliu/Hydraprobe-Analog-E@0.0508"]
    assert len(e.hourly) == 11 and (e.hourly == 0.228).all()
    assert e.hourly.index[0] == _ts("2021-03-23 10:00") and e.hourly.index[-1] == _ts(
        "2021-03-23 20:00"
    )
    assert read_ismn(source, workdir=tmp_path, depth_tolerance=0.0) == []


def test_daily_mean_needs_min_count(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "ismn/archive_header_values_2025"
    key = "SCAN/Kainaliu/Hydraprobe-Analog-E@0.0508"
    assert _read(source, tmp_path)[key].soil_moisture.empty  # 11 records < default 12
    e = _read(source, tmp_path, min_count=11)[key]
    assert e.soil_moisture.index.tolist() == [_ts("2021-03-23")]
    assert e.soil_moisture.iloc[0] == pytest.approx(0.228) and e.n_values.iloc[0] == 11
    with pytest.raises(ValueError, match="min_count"):
        read_ismn(source, workdir=tmp_path, min_count=0)


# -------------------------------------------------------------------------------- Hawaii (§5.2)


def test_hawaii_cosmos_silversword(real_data: Path, tmp_path: Path) -> None:
    source = real_data / HAWAII
    key = "COSMOS/SilverSword/Cosmic-ray-Probe@0.17"
    every = _read(source, tmp_path, max_depth=0.2, good_flags=None)[key]
    assert (every.lat, every.lon, every.elevation) == (19.765, -155.4234, 2868.0)
    assert (every.depth_from, every.depth_to) == (0.0, 0.17)
    assert len(every.hourly) == 14832
    assert every.hourly.index[0] == _ts("2017-01-01 00:00") and every.hourly.iloc[0] == 0.337
    assert every.hourly.index[-1] == _ts("2018-12-31 23:00") and every.hourly.iloc[-1] == 0.311
    counts = _flag_counts(
        source, tmp_path, key, ["G", "D05", "C02", "C02,D10", "D07"], max_depth=0.2
    )
    assert counts == {"G": 14734, "D05": 69, "C02": 19, "C02,D10": 9, "D07": 1}
    good = _read(source, tmp_path, max_depth=0.2, min_count=1)[key]
    assert good.hourly.mean() == pytest.approx(0.297868, abs=1e-6)
    daily = good.hourly.groupby(good.hourly.index.floor("D")).mean()
    pd.testing.assert_series_equal(good.soil_moisture, daily, check_names=False, check_freq=False)
    assert (good.n_values >= 1).all() and good.n_values.sum() == 14734
    assert "COSMOS/SilverSword/Cosmic-ray-Probe@0.17" not in _read(source, tmp_path)


def test_hawaii_scan_stations(real_data: Path, tmp_path: Path) -> None:
    stations = _read(real_data / HAWAII, tmp_path, good_flags=None)
    pua = stations["SCAN/PuaAkala/Hydraprobe-Analog-(2.5-Volt)@0.0508"]
    assert (pua.lat, pua.lon, pua.elevation) == (19.8, -155.333, 1948.89)
    assert len(pua.hourly) == 16359 and pua.hourly.iloc[0] == 0.637
    silver = stations["SCAN/SilverSword/Hydraprobe-Analog-(2.5-Volt)@0.0508"]
    assert len(silver.hourly) == 8196
    assert silver.hourly.index[0] == _ts("2018-01-24 10:00") and silver.hourly.iloc[0] == 0.24
    counts = _flag_counts(
        real_data / HAWAII,
        tmp_path,
        "SCAN/PuaAkala/Hydraprobe-Analog-(2.5-Volt)@0.0508",
        ["G", "C02"],
    )
    assert counts == {"G": 11200, "C02": 4905}


# -------------------------------------------------------------------------------- twin archive


def test_twin_archive_with_cr_endings(tmp_path: Path) -> None:
    times = np.arange("2024-07-01T00", "2024-07-03T00", dtype="datetime64[h]")
    values = np.linspace(0.2, 0.3, times.size)
    flags = ["G"] * times.size
    flags[5] = "D05"
    station = TwinStation(
        network="TWIN", station="Alpha", lat=35.5, lon=-99.5, elevation=300.0,
        depth_from=0.05, depth_to=0.05, sensor="ThetaProbe ML2X", times=times,
        values=values, flags=flags, provider_flags=["M"] * times.size,
    )  # fmt: skip
    deep = TwinStation(
        network="TWIN", station="Alpha", lat=35.5, lon=-99.5, elevation=300.0,
        depth_from=0.2, depth_to=0.2, sensor="ThetaProbe ML2X", times=times,
        values=values, flags=flags,
    )  # fmt: skip
    path = write_ismn_archive(tmp_path / "ismn.zip", [station, deep], newline="\r")
    (got,) = read_ismn(path, workdir=tmp_path / "work")
    assert (got.network, got.station, got.lat, got.lon, got.depth_to) == (
        "TWIN",
        "Alpha",
        35.5,
        -99.5,
        0.05,
    )
    assert len(got.hourly) == times.size - 1
    expected = pd.Series(np.round(values, 4), index=pd.DatetimeIndex(times.astype("M8[ns]")))
    expected = expected.drop(expected.index[5])
    np.testing.assert_allclose(got.hourly.values, expected.values, atol=1e-9)
    assert got.soil_moisture.index.tolist() == [datetime(2024, 7, 1), datetime(2024, 7, 2)]
    assert got.n_values.tolist() == [23, 24]


# -------------------------------------------------------------------------------- bad input


def test_malformed_data_file_raises_naming_it(real_data: Path, tmp_path: Path) -> None:
    station_dir = tmp_path / "dl" / "NET" / "ST"
    station_dir.mkdir(parents=True)
    name = "NET_NET_ST_sm_0.050000_0.050000_Probe_20200101_20201231.stm"
    shutil.copy(real_data / "ismn/malformed/mal_formed_file.txt", station_dir / name)
    shutil.copytree(
        real_data / "ismn/format_header_values/SMOSMANIA", tmp_path / "dl" / "SMOSMANIA"
    )
    with pytest.raises(MalformedFile, match="not an ISMN data file") as info:
        read_ismn(tmp_path / "dl", workdir=tmp_path / "work")
    assert name in str(info.value)


def test_no_data_files_or_not_a_download(real_data: Path, tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match=r"no ISMN data files \(\*\.stm\)"):
        read_ismn(real_data / "ismn/malformed", workdir=tmp_path)
    with pytest.raises(MalformedFile, match="neither a folder nor"):
        read_ismn(real_data / "ismn/malformed/mal_formed_file.txt", workdir=tmp_path)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes((real_data / f"{MULTI}.zip").read_bytes()[:300_000])
    with pytest.raises(MalformedFile, match=r"cut\.zip"):
        read_ismn(truncated, workdir=tmp_path)


def test_files_of_other_variables_are_not_opened(real_data: Path, tmp_path: Path) -> None:
    download = tmp_path / "dl"
    shutil.copytree(real_data / "ismn/format_header_values", download)
    other = (
        "SMOSMANIA_SMOSMANIA_Narbonne_ts_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"
    )
    (download / "SMOSMANIA" / other).write_text("no good data here")
    (station,) = read_ismn(download, workdir=tmp_path / "work", good_flags=None)
    assert len(station.hourly) == 741
