"""SMAP L3 reader: the real early-layout SPL3SMP granule (STRUCTURE.md §1.1) and the twin's AM/PM granules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import h5py
import numpy as np
import pytest

from smda.errors import MalformedFile
from smda.geo.ease2 import M09, M36
from smda.ingest.readers.smap import (
    SURFACE_FLAG_BITS,
    SmapGranule,
    SmapPass,
    check_hdf5,
    read_spl3smp,
)
from smda_twin.formats.smap import write_spl3smp, write_spl3smp_e

SPL3SMP = "smap/SPL3SMP/2015.04.01/SMAP_L3_SM_P_20150401_R13080_001.h5"


@pytest.fixture(scope="module")
def real(real_data: Path) -> SmapGranule:
    return read_spl3smp(real_data / SPL3SMP, extras=True)


# -------------------------------------------------------------------------------- real granule


def test_real_early_layout_is_the_am_pass_on_m36(real: SmapGranule) -> None:
    assert real.grid is M36
    assert real.day == date(2015, 4, 1)
    assert list(real.passes) == ["AM"]
    am = real.passes["AM"]
    for array in (am.soil_moisture, am.retrieval_qual_flag, am.surface_flag, am.tb_time_seconds):
        assert array.shape == (406, 964)
    assert am.soil_moisture.dtype == np.float32
    assert am.retrieval_qual_flag.dtype == np.uint16 and am.surface_flag.dtype == np.uint16
    assert am.tb_time_seconds.dtype == np.float64


def test_real_soil_moisture_facts(real: SmapGranule) -> None:
    sm = real.passes["AM"].soil_moisture
    valid = np.isfinite(sm)
    assert int(valid.sum()) == 35278 and sm.size == 391384
    assert sm[100, 200] == pytest.approx(0.042025514, abs=1e-8)
    assert sm[17, 515] == pytest.approx(0.22535984, abs=1e-8)
    assert sm[144, 767] == pytest.approx(0.3502773, abs=1e-7)
    assert np.isnan(sm[200, 300])
    assert float(np.nanmin(sm)) == pytest.approx(0.02, abs=1e-7)
    assert float(np.nanmax(sm)) == pytest.approx(0.9390723, abs=1e-7)
    assert int((sm[valid] > np.float32(0.5)).sum()) == 2002  # not masked by valid_max
    assert float(sm[valid].astype(np.float64).sum()) == pytest.approx(6958.1223, abs=1e-3)


def test_real_quality_flags(real: SmapGranule) -> None:
    am = real.passes["AM"]
    qual = am.retrieval_qual_flag[am.valid]
    values, counts = np.unique(qual, return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {0: 20878, 1: 10373, 5: 4027}
    assert int(am.recommended.sum()) == 20878
    assert not am.recommended[200, 300]
    # outside the retrievals the producer writes 7 / 2047, not the fill 65534
    assert am.retrieval_qual_flag[200, 300] == 7 and am.surface_flag[200, 300] == 2047


def test_real_surface_flag_names_come_from_the_file(real: SmapGranule) -> None:
    am = real.passes["AM"]
    assert am.surface_flag_bits == SURFACE_FLAG_BITS  # "36_km_" prefix removed
    water = am.surface_mask("static_water_body")
    assert np.array_equal(water, (am.surface_flag & 1) != 0)
    frozen = am.surface_mask("radar_frozen_ground", "model_frozen_ground")
    assert np.array_equal(frozen, (am.surface_flag & (128 | 256)) != 0)
    with pytest.raises(KeyError, match="valid:"):
        am.surface_mask("lava")


def test_real_tb_time_uses_the_j2000_noon_epoch(real: SmapGranule) -> None:
    am = real.passes["AM"]
    assert am.tb_time_seconds[144, 767] == pytest.approx(481202053.045, abs=1e-3)
    moment = am.tb_time()[144, 767]
    # tb_time_utc says 23:14:13.047; the seconds give .045 (the producer's rounding)
    assert abs(moment - np.datetime64("2015-04-01T23:14:13.047")) <= np.timedelta64(5, "ms")
    assert np.isnat(am.tb_time()[200, 300])


def test_real_extras(real: SmapGranule) -> None:
    am = real.passes["AM"]
    assert am.surface_temperature is not None and am.soil_moisture_error is not None
    assert am.freeze_thaw_fraction is not None
    assert am.surface_temperature[100, 200] == pytest.approx(287.0922, abs=1e-3)
    assert np.isnan(am.soil_moisture_error[100, 200])  # −9999 in the file
    assert am.freeze_thaw_fraction[100, 200] == 0.0


def test_without_extras_optional_fields_are_none(real_data: Path) -> None:
    am = read_spl3smp(real_data / SPL3SMP).passes["AM"]
    assert am.soil_moisture_error is None and am.surface_temperature is None
    assert am.freeze_thaw_fraction is None


# -------------------------------------------------------------------------------- twin granules


def _pass(shape: tuple[int, int], seed: int, rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """Random retrievals in 20 % of the cells of ``rows`` (the rest fill), as the writer takes them."""
    rng = np.random.default_rng(seed)
    observed = np.zeros(shape, dtype=bool)
    band = observed[rows]
    band[...] = rng.random(band.shape) < 0.2
    n = int(observed.sum())
    out = {
        "soil_moisture": (np.float32, -9999.0, rng.uniform(0.02, 0.5, n)),
        "retrieval_qual_flag": (np.uint16, 65534, rng.integers(0, 8, n)),
        "surface_flag": (np.uint16, 65534, rng.integers(0, 4096, n)),
        "tb_time_seconds": (np.float64, -9999.0, 7.7e8 + rng.uniform(0, 86400, n)),
        "surface_temperature": (np.float32, -9999.0, np.full(n, 290.0)),
    }
    arrays = {}
    for name, (dtype, fill, values) in out.items():
        array = np.full(shape, fill, dtype=dtype)
        array[observed] = values
        arrays[name] = array
    return arrays


def _assert_pass_equal(got: SmapPass, given: dict[str, np.ndarray]) -> None:
    sm, seconds = given["soil_moisture"], given["tb_time_seconds"]
    np.testing.assert_array_equal(got.soil_moisture, np.where(sm == -9999, np.nan, sm))
    np.testing.assert_array_equal(got.retrieval_qual_flag, given["retrieval_qual_flag"])
    np.testing.assert_array_equal(got.surface_flag, given["surface_flag"])
    np.testing.assert_array_equal(got.tb_time_seconds, np.where(seconds == -9999, np.nan, seconds))


def test_twin_spl3smp_e_am_pm_on_m09_reads_every_field_of_both_passes(tmp_path: Path) -> None:
    """A global M09 granule round-trips (its read time is in ``python -m benchmarks stage``,
    not asserted here: the test suite runs on a loaded, shared machine)."""
    band = slice(700, 900)  # a full-grid read, but a quick write
    am, pm = _pass(M09.shape, 1, band), _pass(M09.shape, 2, band)
    path = tmp_path / "SMAP_L3_SM_P_E_20240701_R19240_001.h5"
    write_spl3smp_e(path, day=date(2024, 7, 1), am=am, pm=pm)
    granule = read_spl3smp(path)
    assert granule.grid is M09 and granule.day == date(2024, 7, 1)
    assert list(granule.passes) == ["AM", "PM"]
    _assert_pass_equal(granule.passes["AM"], am)
    _assert_pass_equal(granule.passes["PM"], pm)
    assert "radiometer_frozen_ground" in granule.passes["AM"].surface_flag_bits
    assert "radar_frozen_ground" in granule.passes["PM"].surface_flag_bits
    # one name serves both passes for the observed-frozen bit (bit 7)
    for one in granule.passes.values():
        np.testing.assert_array_equal(
            one.surface_mask("radar_frozen_ground"),
            (one.surface_flag != 65534) & ((one.surface_flag & 128) != 0),
        )


def test_twin_spl3smp_m36_pm_suffix_and_extras(tmp_path: Path) -> None:
    am, pm = _pass(M36.shape, 3), _pass(M36.shape, 4)
    path = tmp_path / "SMAP_L3_SM_P_20240702_R19240_001.h5"
    write_spl3smp(path, day=date(2024, 7, 2), am=am, pm=pm)
    with h5py.File(path) as f:
        assert "soil_moisture_pm" in f["Soil_Moisture_Retrieval_Data_PM"]
    granule = read_spl3smp(path, extras=True)
    assert granule.grid is M36 and granule.day == date(2024, 7, 2)
    _assert_pass_equal(granule.passes["PM"], pm)
    temp = granule.passes["PM"].surface_temperature
    assert temp is not None
    np.testing.assert_array_equal(np.isfinite(temp), pm["soil_moisture"] != -9999)
    recommended = (am["soil_moisture"] != -9999) & ((am["retrieval_qual_flag"] & 1) == 0)
    np.testing.assert_array_equal(granule.passes["AM"].recommended, recommended)
    check_hdf5(path)


# -------------------------------------------------------------------------------- bad files


@pytest.fixture(scope="module")
def small_twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smap") / "SMAP_L3_SM_P_20240703_R19240_001.h5"
    write_spl3smp(path, day=date(2024, 7, 3), am=_pass(M36.shape, 5), pm=_pass(M36.shape, 6))
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9])
def test_truncated_granule_raises_malformed(
    small_twin: Path, tmp_path: Path, fraction: float
) -> None:
    data = small_twin.read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: int(len(data) * fraction)])
    for call in (read_spl3smp, check_hdf5):
        with pytest.raises(MalformedFile, match=r"cut\.h5") as info:
            call(path)
        assert "HDF5" in str(info.value)


def test_truncated_real_granule_raises_malformed(real_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "SMAP_L3_SM_P_20150401_R13080_001.h5"
    path.write_bytes((real_data / SPL3SMP).read_bytes()[:5_000_000])
    with pytest.raises(MalformedFile, match="truncated"):
        check_hdf5(path)


def test_html_error_page_is_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "granule.h5"
    path.write_text("<html><body>Earthdata Login</body></html>")
    with pytest.raises(MalformedFile, match="not HDF5"):
        read_spl3smp(path)


def test_missing_group_dataset_or_grid_raise(tmp_path: Path) -> None:
    path = tmp_path / "SMAP_L3_SM_P_20240704_R19240_001.h5"
    with h5py.File(path, "w") as f:
        f.create_group("Metadata")
    with pytest.raises(MalformedFile, match="no retrieval group"):
        read_spl3smp(path)
    with h5py.File(path, "w") as f:
        group = f.create_group("Soil_Moisture_Retrieval_Data_AM")
        for name in ("soil_moisture", "retrieval_qual_flag", "tb_time_seconds"):
            group.create_dataset(name, data=np.zeros(M36.shape))
    with pytest.raises(MalformedFile, match="no dataset surface_flag"):
        read_spl3smp(path)
    with h5py.File(path, "w") as f:
        group = f.create_group("Soil_Moisture_Retrieval_Data")
        for name in ("soil_moisture", "retrieval_qual_flag", "tb_time_seconds", "surface_flag"):
            group.create_dataset(name, data=np.zeros((10, 20)))
    with pytest.raises(MalformedFile, match="unexpected grid"):
        read_spl3smp(path)


# -------------------------------------------------------------------------------- row bands


def test_a_band_of_rows_reads_what_the_full_grid_holds_there(tmp_path: Path) -> None:
    band = slice(700, 900)
    am, pm = _pass(M09.shape, 5, band), _pass(M09.shape, 6, band)
    path = tmp_path / "SMAP_L3_SM_P_E_20240703_R19240_001.h5"
    write_spl3smp_e(path, day=date(2024, 7, 3), am=am, pm=pm)
    full = read_spl3smp(path, extras=True)
    part = read_spl3smp(path, extras=True, rows=slice(690, 910))
    assert full.first_row == 0 and part.first_row == 690 and part.grid is M09
    for name in ("AM", "PM"):
        for field in ("soil_moisture", "retrieval_qual_flag", "surface_flag", "tb_time_seconds"):
            whole, some = getattr(full.passes[name], field), getattr(part.passes[name], field)
            assert some.shape == (220, M09.ncols)
            np.testing.assert_array_equal(some, whole[690:910])
    assert part.passes["AM"].surface_flag_bits == full.passes["AM"].surface_flag_bits
    with pytest.raises(ValueError, match="step 1"):
        read_spl3smp(path, rows=slice(0, 10, 2))


def test_real_granule_band(real_data: Path, real: SmapGranule) -> None:
    part = read_spl3smp(real_data / SPL3SMP, rows=slice(95, 105))
    assert part.first_row == 95 and list(part.passes) == ["AM"]
    np.testing.assert_array_equal(
        part.passes["AM"].soil_moisture, real.passes["AM"].soil_moisture[95:105]
    )
