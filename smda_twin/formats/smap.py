"""SMAP L3 radiometer soil-moisture granules (``SPL3SMP`` V009, ``SPL3SMP_E`` V006) as NSIDC serves them.

The file is plain HDF5 as the SMAP science data system writes it (STRUCTURE.md §1.1): no root
attributes, no dimension scales; dataset attributes are scalar fixed-length NUL-terminated ASCII
strings or numpy scalars of the dataset's type; ``Metadata`` holds only subgroups whose attributes
are variable-length ASCII strings and numbers. Datasets are 2-D ``(row, col)`` on EASE-Grid 2.0
(rows north→south, columns west→east), chunked one row per chunk and gzip level 2.

Layout of the current releases (v4 and later): groups ``Metadata``,
``Soil_Moisture_Retrieval_Data_AM`` and ``Soil_Moisture_Retrieval_Data_PM``, where every PM dataset
name carries the suffix ``_pm``. The dataset list, dtypes, fill values and attributes copy the real
early-layout SPL3SMP granule (R13080, 31 datasets), updated where the real SPL3SMP v8 attributes
are known (the qa4sm series, STRUCTURE.md §5): the DCA wording of ``soil_moisture`` and
``retrieval_qual_flag`` (4 flag bits, bit 0 set = not recommended), ``tb_time_seconds`` counted
from **noon** 2000-01-01 (``valid_max`` 940000000), ``vegetation_water_content`` in ``kg/m**2``,
the AM/PM wording of ``surface_flag`` and ``vegetation_opacity``, and a ``coordinates`` attribute
that points at the AM group's latitude/longitude in both groups (as the v8 PM attributes do).
For SPL3SMP_E the grid size in the text is 9 km (``36 km`` → ``9 km``, ``36_km_`` → ``9_km_``:
an assumption, no real E granule was available). The polar-grid groups of SPL3SMP_E and the ISO
XML attributes of ``Metadata`` are not written.

The writer derives what the producer derives: ``latitude``/``longitude`` (cell centres, −9999
where the cell has no brightness-temperature observation), ``EASE_row_index``/``EASE_column_index``
(65534 there), and ``tb_time_utc`` (``YYYY-MM-DDTHH:MM:SS.sssZ`` from ``tb_time_seconds``, ``N/A``
padded with blanks where unobserved). Every other dataset not given is fill. A cell counts as
observed where ``tb_time_seconds`` or ``soil_moisture`` is not fill. The given arrays are written
as they are: note that the real granule has ``retrieval_qual_flag`` 7 and ``surface_flag`` 2047,
not 65534, in the cells without observations.

Determinism: datasets are created without HDF5 object times, every attribute is a function of
the inputs (``creationDate`` = day + 2, the UUID is derived from the file name), so the same
inputs give byte-identical files. Numeric rows (chunks) that hold only fill are not written: they
stay unallocated and read back as the HDF5 fill value, which is set to ``_FillValue`` (the
producer writes them all, with HDF5 fill 0). ``tb_time_utc`` has no HDF5 fill value, as in the
real file, so all its rows are written. Chunks are deflated in a small thread pool before the
HDF5 lock is taken and stored with direct chunk writes (the same zlib stream HDF5's gzip filter
would produce). Only the band of rows that holds data is prepared and scanned: rows outside it
are fill in every dataset.
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from collections.abc import Buffer, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from smda.storage.iolock import serialized
from smda_twin.formats._common import atomic_target, put_fixed_string_attr
from smda_twin.formats.smap_metadata import metadata_tree, write_metadata

__all__ = [
    "AM_GROUP",
    "DATASET_NAMES",
    "PM_GROUP",
    "REQUIRED",
    "ease2_cell_centres",
    "spl3smp_e_filename",
    "spl3smp_filename",
    "write_spl3smp",
    "write_spl3smp_e",
]

AM_GROUP = "Soil_Moisture_Retrieval_Data_AM"
PM_GROUP = "Soil_Moisture_Retrieval_Data_PM"
REQUIRED = ("soil_moisture", "retrieval_qual_flag", "tb_time_seconds")
_DERIVED = ("latitude", "longitude", "EASE_row_index", "EASE_column_index", "tb_time_utc")
_F4_FILL = -9999.0
_U2_FILL = 65534
_NA_UTC = b"N/A".ljust(24)
_GZIP_LEVEL = 2
_BATCH_ROWS = 64  # rows deflated per thread-pool task
_J2000_NOON = np.datetime64("2000-01-01T12:00:00", "ms")


# EASE-Grid 2.0 global (EPSG:6933: cylindrical equal area, true scale at 30°, WGS84)
_A = 6378137.0
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)
_E = math.sqrt(_E2)
_X0 = -17367530.44516
_Y0 = 7314540.83064


@dataclass(frozen=True)
class _Grid:
    label: str  # "36 km" / "9 km", as the product's text says
    shape: tuple[int, int]
    cell_size: float  # metres


_M36 = _Grid("36 km", (406, 964), 36032.220840584)
_M09 = _Grid("9 km", (1624, 3856), 9008.055210146)


@dataclass(frozen=True)
class _Product:
    short_name: str  # SPL3SMP_E
    smap_short_name: str  # L3_SM_P_E
    version: str  # ECSVersionID
    file_prefix: str  # SMAP_L3_SM_P_E
    long_name: str
    grid: _Grid


_SPL3SMP = _Product(
    "SPL3SMP",
    "L3_SM_P",
    "009",
    "SMAP_L3_SM_P",
    "SMAP L3 Radiometer Global Daily 36 km EASE-Grid Soil Moisture",
    _M36,
)
_SPL3SMP_E = _Product(
    "SPL3SMP_E",
    "L3_SM_P_E",
    "006",
    "SMAP_L3_SM_P_E",
    "SMAP Enhanced L3 Radiometer Global Daily 9 km EASE-Grid Soil Moisture",
    _M09,
)


# ---------------------------------------------------------------------------------------------
# Dataset specifications (real SPL3SMP granule; v8 values where known)

Attr = str | float | int | np.generic


@dataclass(frozen=True)
class _Spec:
    dtype: str  # numpy dtype string with explicit byte order ("<f4"), or "S24"
    fill: float | int | None  # _FillValue attribute (None: no attribute)
    attrs: tuple[tuple[str, Attr], ...]
    layers: int = 0  # third dimension (landcover: 3)
    coordinates: bool = True


# name: (dtype, fill, long_name, units, (valid_min, valid_max), layers); {k} = "36 km" / "9 km"
_FRACTION = (0.0, 1.0)
_TABLE: dict[str, tuple[str, float | None, str, str | None, tuple[float, float] | None, int]] = {
    "EASE_column_index": ("<u2", _U2_FILL, "The column index of the {k} EASE grid cell that contains the associated data.", None, None, 0),
    "EASE_row_index": ("<u2", _U2_FILL, "The row index of the {k} EASE grid cell that contains the associated data.", None, None, 0),
    "albedo": ("<f4", _F4_FILL, "Diffuse reflecting power of the Earth&apos;s surface within the grid cell.", None, _FRACTION, 0),
    "boresight_incidence": ("<f4", _F4_FILL, "Representative angle between the antenna boresight vector and the normal to the Earth&apos;s surface for all footprints within the cell.", "degrees", (0.0, 90.0), 0),
    "freeze_thaw_fraction": ("<f4", _F4_FILL, "Fraction of the {k} grid cell that is denoted as frozen.  Based on binary flag that specifies freeze thaw conditions in each of the component 3 km grid cells.", None, _FRACTION, 0),
    "landcover_class": ("|u1", 254, "An enumerated type that specifies the most common landcover class in the grid cell based on the IGBP landcover map. The array order is longitude (ascending), followed by latitude (descending), and followed by IGBP land cover type descending dominance (only the first three types are listed)", None, None, 3),
    "landcover_class_fraction": ("<f4", _F4_FILL, "The fraction of the grid cell that contains the most common land cover in that area based on the IGBP landcover map.", None, _FRACTION, 3),
    "latitude": ("<f4", None, "Latitude of the center of the Earth based grid cell.", "degrees_north", None, 0),
    "latitude_centroid": ("<f4", _F4_FILL, "Weighted average of the latitude of the center of the  brightness temperature footprints that fall within the EASE grid cell.", "degrees", (-90.0, 90.0), 0),
    "longitude": ("<f4", None, "Longitude of the center of the Earth based grid cell.", "degrees_east", None, 0),
    "longitude_centroid": ("<f4", _F4_FILL, "Weighted average of the longitude of the center of the brightness temperature footprints that fall within the EASE grid cell.", "degrees", (-180.0, 179.999), 0),
    "radar_water_body_fraction": ("<f4", _F4_FILL, "The fraction of the area of the {k} grid cell that is covered by water based on the radar detection algorithm.", None, _FRACTION, 0),
    "retrieval_qual_flag": ("<u2", _U2_FILL, "Bit flags that record the conditions and the quality of the DCA retrieval algorithms that generate soil moisture for the grid cell.", None, None, 0),
    "roughness_coefficient": ("<f4", _F4_FILL, "A unitless value that is indicative of bare soil roughness within the {k} grid cell.", None, _FRACTION, 0),
    "soil_moisture": ("<f4", _F4_FILL, "Representative DCA soil moisture measurement for the Earth based grid cell.", "cm**3/cm**3", (0.02, 0.5), 0),
    "soil_moisture_error": ("<f4", _F4_FILL, "Net uncertainty measure of soil moisture measure for the Earth based grid cell. - Calculation method is TBD.", "cm**3/cm**3", (0.0, 0.2), 0),
    "static_water_body_fraction": ("<f4", _F4_FILL, "The fraction of the area of the {k} grid cell that is covered by static water based on a Digital Elevation Map.", None, _FRACTION, 0),
    "surface_flag": ("<u2", _U2_FILL, "Bit flags that record ambient surface conditions for the grid cell", None, None, 0),
    "surface_temperature": ("<f4", _F4_FILL, "Temperature at land surface based on GMAO GEOS-5 data.", "Kelvins", (0.0, 350.0), 0),
    "tb_3_corrected": ("<f4", _F4_FILL, "Third stokes parameter for each {k} grid cell calculated with an adjustment for the presence of water bodies", "Kelvin", (0.0, 330.0), 0),
    "tb_4_corrected": ("<f4", _F4_FILL, "Fourth stokes parameter for each {k} grid cell calculated with an adjustment for the presence of water bodies", "Kelvin", (0.0, 330.0), 0),
    "tb_h_corrected": ("<f4", _F4_FILL, "Horizontal polarization brightness temperature in {k} Earth grid cell adjusted for the presence of water bodies.", "Kelvin", (0.0, 330.0), 0),
    "tb_qual_flag_3": ("<u2", _U2_FILL, "Bit flags that represent the quality of the 3rd Stokes brightness temperature within each grid cell", None, None, 0),
    "tb_qual_flag_4": ("<u2", _U2_FILL, "Bit flags that represent the quality of the 4th Stokes brightness temperature within each grid cell", None, None, 0),
    "tb_qual_flag_h": ("<u2", _U2_FILL, "Bit flags that represent the quality of the horizontal polarization brightness temperature within each grid cell", None, None, 0),
    "tb_qual_flag_v": ("<u2", _U2_FILL, "Bit flags that represent the quality of the vertical polarization brightness temperature within each grid cell", None, None, 0),
    "tb_time_seconds": ("<f8", _F4_FILL, "Arithmetic average of the acquisition time of all of the brightness temperature footprints with a center that falls within the EASE grid cell in seconds since noon on January 1, 2000 UTC.", "seconds", (-999999.9, 940000000.0), 0),
    "tb_time_utc": ("S24", None, "Arithmetic average of the acquisition time of all of the brightness temperature footprints with a center that falls within the EASE grid cell in UTC.", None, None, 0),
    "tb_v_corrected": ("<f4", _F4_FILL, "Vertical polarization brightness temperature in {k} Earth grid cell adjusted for the presence of water bodies.", "Kelvin", (0.0, 330.0), 0),
    "vegetation_opacity": ("<f4", _F4_FILL, "The measured opacity of the vegetation used in {pm_opacity} in the grid cell.", None, (-999999.9, 999999.9), 0),
    "vegetation_water_content": ("<f4", _F4_FILL, "Representative measure of water in the vegetation within the {k} grid cell.", "kg/m**2", (0.0, 20.0), 0),
}  # fmt: skip

_TB_BITS = (
    "quality range RFI_detection RFI_correction NEDT direct_sun_correction reflected_sun_correction "
    "reflected_moon_correction direct_galaxy_correction reflected_galaxy_correction atmosphere_correction "
    "Faraday_rotation_correction null_value_bit water_correction RFI_check RFI_clean"
)
_MASKS_12 = ", ".join(f"{1 << i}s" for i in range(12))
_MASKS_16 = ", ".join(f"{1 << i}s" for i in range(16))
_STOKES_MASKS = ", ".join(f"{1 << i}s" for i in (*range(11), 12, 14, 15))  # no Faraday, water bits


def _flags(name: str, grid: _Grid, pm: bool) -> tuple[tuple[str, Attr], ...]:
    """flag_masks/flag_meanings of the bit-flag datasets (none for the others)."""
    if name == "retrieval_qual_flag":
        meanings = (
            "Retrieval_recommended Retrieval_attempted Retrieval_success FT_retrieval_success"
        )
        return (("flag_masks", "1s, 2s, 4s, 8s"), ("flag_meanings", meanings))
    if name == "surface_flag":
        k = grid.label.replace(" ", "_")
        frozen = "radar" if pm else "radiometer"
        bits = (
            f"static_water_body radar_water_body_detection coastal_proximity urban_area precipitation "
            f"snow_or_ice permanent_snow_or_ice {frozen}_frozen_ground model_frozen_ground "
            "mountainous_terrain dense_vegetation nadir_region"
        )
        return (
            ("flag_masks", _MASKS_12),
            ("flag_meanings", " ".join(f"{k}_{b}" for b in bits.split())),
        )
    if name.startswith("tb_qual_flag_"):
        key = name[-1]
        polarization = {"h": "Horizontal_polarization", "v": "Vertical_polarization"}
        prefix = polarization.get(key, "3rd_Stokes" if key == "3" else "4th_Stokes")
        names = _TB_BITS.split()
        masks = _MASKS_16
        if key in "34":
            names = [
                b for b in names if b not in ("Faraday_rotation_correction", "water_correction")
            ]
            masks = _STOKES_MASKS
        return (("flag_masks", masks), ("flag_meanings", " ".join(f"{prefix}_{b}" for b in names)))
    return ()


def _specs(grid: _Grid, pm: bool) -> dict[str, _Spec]:
    """The 31 datasets of one retrieval group, keyed by base name (no ``_pm`` suffix)."""
    rows, cols = grid.shape
    opacity = "DCA retrievals" if pm else "the DCA retrieval"
    specs: dict[str, _Spec] = {}
    for name, (dtype, fill, text, units, valid_range, layers) in _TABLE.items():
        attrs: list[tuple[str, Attr]] = list(_flags(name, grid, pm))
        attrs.append(("long_name", text.format(k=grid.label, pm_opacity=opacity)))
        if units is not None:
            attrs.append(("units", units))
        valid = valid_range
        if name in ("EASE_row_index", "EASE_column_index"):
            valid = (0, (rows if name == "EASE_row_index" else cols) - 1)
        if valid is not None:
            attrs += [("valid_max", valid[1]), ("valid_min", valid[0])]
        coordinates = name not in ("latitude", "longitude")
        specs[name] = _Spec(dtype, fill, tuple(attrs), layers, coordinates)
    return specs


DATASET_NAMES: tuple[str, ...] = tuple(_specs(_M36, pm=False))
"""Base names of the datasets in each retrieval group (PM adds ``_pm``)."""


# ---------------------------------------------------------------------------------------------
# EASE-Grid 2.0


def ease2_cell_centres(
    cell_size: float, shape: tuple[int, int]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Latitude of each row and longitude of each column of a global EASE-Grid 2.0 (degrees).

    Inverse of the cylindrical equal-area projection EPSG:6933 at the cell centres
    ``x = x0 + (col + 0.5)·res``, ``y = y0 − (row + 0.5)·res``, with the authalic-latitude
    series of Snyder (1987, eq. 3-18). Cast to float32 this reproduces the producer's
    latitude/longitude exactly in every cell of the real SPL3SMP granule, whereas pyproj's
    inverse (``smda.geo.ease2``) differs from it by one float32 step in 0.4 % of the cells.
    """
    rows, cols = shape
    k0 = math.cos(math.radians(30.0)) / math.sqrt(1.0 - _E2 * math.sin(math.radians(30.0)) ** 2)
    qp = (1.0 - _E2) * (1.0 / (1.0 - _E2) - (1.0 / (2.0 * _E)) * math.log((1.0 - _E) / (1.0 + _E)))
    x = _X0 + (np.arange(cols) + 0.5) * cell_size
    y = _Y0 - (np.arange(rows) + 0.5) * cell_size
    beta = np.arcsin(np.clip(2.0 * y * k0 / (_A * qp), -1.0, 1.0))
    e4, e6 = _E2 * _E2, _E2 * _E2 * _E2
    phi = (
        beta
        + (_E2 / 3.0 + 31.0 * e4 / 180.0 + 517.0 * e6 / 5040.0) * np.sin(2.0 * beta)
        + (23.0 * e4 / 360.0 + 251.0 * e6 / 3780.0) * np.sin(4.0 * beta)
        + (761.0 * e6 / 45360.0) * np.sin(6.0 * beta)
    )
    lon = np.degrees(x / (_A * k0))
    return np.degrees(phi), lon


# ---------------------------------------------------------------------------------------------
# File names and metadata


def spl3smp_e_filename(day: date, crid: str = "R19240", counter: int = 1) -> str:
    """``SMAP_L3_SM_P_E_YYYYMMDD_<crid>_NNN.h5`` (NNN: production counter, the highest wins)."""
    return f"{_SPL3SMP_E.file_prefix}_{day:%Y%m%d}_{crid}_{counter:03d}.h5"


def spl3smp_filename(day: date, crid: str = "R19240", counter: int = 1) -> str:
    """``SMAP_L3_SM_P_YYYYMMDD_<crid>_NNN.h5``."""
    return f"{_SPL3SMP.file_prefix}_{day:%Y%m%d}_{crid}_{counter:03d}.h5"


def _row_runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Half-open [start, stop) runs of True in a 1-D mask."""
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _validated(
    values: Mapping[str, npt.ArrayLike],
    specs: Mapping[str, _Spec],
    shape: tuple[int, int],
    group: str,
) -> dict[str, np.ndarray]:
    """The given datasets as arrays of the right shape (not converted yet); ValueError if not."""
    problems = []
    out: dict[str, np.ndarray] = {}
    for name in REQUIRED:
        if name not in values:
            problems.append(f"{group}: {name} is required")
    for name, data in values.items():
        if name in _DERIVED:
            problems.append(f"{group}: {name} is derived by the writer, do not pass it")
            continue
        if name not in specs:
            problems.append(
                f"{group}: unknown dataset {name!r} (valid: {sorted(set(specs) - set(_DERIVED))})"
            )
            continue
        spec = specs[name]
        expected = (*shape, spec.layers) if spec.layers else shape
        array = np.asarray(data)
        if array.shape != expected:
            problems.append(f"{group}: {name} has shape {array.shape}, expected {expected}")
            continue
        out[name] = array
    if problems:
        raise ValueError("invalid SMAP L3 input: " + "; ".join(problems))
    return out


def _fill(spec: _Spec) -> np.ndarray:
    """The value of a cell without data (the HDF5 fill value of the dataset)."""
    return np.asarray(spec.fill if spec.fill is not None else _F4_FILL, dtype=spec.dtype)


def _band(arrays: Mapping[str, np.ndarray], specs: Mapping[str, _Spec], nrows: int) -> slice:
    """The rows from the first to the last that hold anything but fill in any dataset (NaN
    counts as data). Rows outside it are fill everywhere: nothing of them is written."""
    rows = np.zeros(nrows, dtype=bool)
    for name, array in arrays.items():
        fill = specs[name].fill if specs[name].fill is not None else _F4_FILL
        rows |= (array != fill).any(axis=tuple(range(1, array.ndim)))
    found = np.flatnonzero(rows)
    return slice(int(found[0]), int(found[-1]) + 1) if found.size else slice(0, 0)


def _converted(array: np.ndarray, spec: _Spec) -> np.ndarray:
    """``array`` in the dataset's dtype, NaN written as the fill value (a new array)."""
    out = array.astype(spec.dtype)
    if np.dtype(spec.dtype).kind == "f" and spec.fill is not None:
        np.copyto(out, np.asarray(spec.fill, dtype=spec.dtype), where=np.isnan(out))
    return out


@dataclass(frozen=True)
class _Pass:
    """One retrieval group ready to write: its arrays cut to the band of rows ``start…`` that
    holds data (``tb_time_utc``: the sparse cells, whole-grid rows), and its raw inputs' band."""

    start: int
    arrays: dict[str, np.ndarray | _Sparse]
    raw: dict[str, np.ndarray]


def _prepare(
    values: Mapping[str, npt.ArrayLike], specs: Mapping[str, _Spec], grid: _Grid, group: str
) -> _Pass:
    inputs = _validated(values, specs, grid.shape, group)
    band = _band(inputs, specs, grid.shape[0])
    raw = {name: array[band] for name, array in inputs.items()}
    prepared = {name: _converted(array, specs[name]) for name, array in raw.items()}
    start = int(band.start)
    return _Pass(start, {**prepared, **_derive(prepared, grid, start)}, raw)


_DIGITS2 = np.array([list(f"{i:02d}".encode()) for i in range(100)], dtype=np.uint8)
_DIGITS3 = np.array([list(f"{i:03d}".encode()) for i in range(1000)], dtype=np.uint8)


def _utc_strings(seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.bytes_]:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` for seconds since 2000-01-01T12:00:00 UTC (no leap seconds)."""
    moment = _J2000_NOON + np.round(seconds * 1000.0).astype(np.int64).astype("timedelta64[ms]")
    day = moment.astype("datetime64[D]")
    days, inverse = np.unique(day, return_inverse=True)
    prefix = np.datetime_as_string(days, unit="D").astype("S10").view(np.uint8).reshape(-1, 10)
    millis = (moment - day).astype(np.int64)
    raw = np.empty((seconds.size, 24), dtype=np.uint8)
    raw[:, :10] = prefix[inverse]
    raw[:, 10] = ord("T")
    raw[:, 11:13] = _DIGITS2[millis // 3_600_000]
    raw[:, 13] = ord(":")
    raw[:, 14:16] = _DIGITS2[millis // 60_000 % 60]
    raw[:, 16] = ord(":")
    raw[:, 17:19] = _DIGITS2[millis // 1000 % 60]
    raw[:, 19] = ord(".")
    raw[:, 20:23] = _DIGITS3[millis % 1000]
    raw[:, 23] = ord("Z")
    return raw.view("S24").ravel()


@dataclass(frozen=True)
class _Sparse:
    """Row-major list of the non-fill cells of a string dataset."""

    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    values: npt.NDArray[np.bytes_]


def _derive(
    arrays: Mapping[str, np.ndarray], grid: _Grid, start: int
) -> dict[str, np.ndarray | _Sparse]:
    """latitude, longitude and EASE indices where observed; tb_time_utc where timed.

    ``arrays`` hold the band of grid rows from ``start``; so do the derived arrays (the sparse
    ``tb_time_utc`` gives whole-grid rows).
    """
    seconds = arrays["tb_time_seconds"]
    timed = seconds != _F4_FILL
    observed = timed | (arrays["soil_moisture"] != np.float32(_F4_FILL))
    lat_row, lon_col = ease2_cell_centres(grid.cell_size, grid.shape)
    rows, cols = np.nonzero(observed)
    derived: dict[str, np.ndarray | _Sparse] = {}
    for name, per_cell, fill, dtype in (
        ("latitude", lat_row[rows + start], _F4_FILL, "<f4"),
        ("longitude", lon_col[cols], _F4_FILL, "<f4"),
        ("EASE_row_index", rows + start, _U2_FILL, "<u2"),
        ("EASE_column_index", cols, _U2_FILL, "<u2"),
    ):
        full = np.full(observed.shape, fill, dtype=dtype)
        full[rows, cols] = per_cell
        derived[name] = full
    t_rows, t_cols = np.nonzero(timed)
    derived["tb_time_utc"] = _Sparse(t_rows + start, t_cols, _utc_strings(seconds[t_rows, t_cols]))
    return derived


def _dense_chunks(
    values: np.ndarray, fill: np.ndarray, start: int = 0
) -> Iterator[tuple[int, Buffer]]:
    """(grid row, raw bytes) of every row that holds something other than ``fill``
    (``values`` hold the grid rows from ``start``)."""
    rows = (values != fill).any(axis=tuple(range(1, values.ndim)))
    contiguous = np.ascontiguousarray(values)
    for row in np.flatnonzero(rows):
        yield start + int(row), memoryview(contiguous[row])


def _sparse_chunks(sparse: _Sparse, shape: tuple[int, int]) -> Iterator[tuple[int, Buffer]]:
    """(row, raw bytes) of every row: the producer writes ``N/A`` rows too (see :func:`_create`)."""
    rows, cols = shape
    bounds = np.searchsorted(sparse.rows, np.arange(rows + 1))
    blank = _blank_row(cols)
    for row in range(rows):
        start, stop = bounds[row], bounds[row + 1]
        if start == stop:
            yield row, blank
            continue
        line = np.frombuffer(blank, dtype="S24").copy()  # a memcpy, unlike np.full of S24
        line[sparse.cols[start:stop]] = sparse.values[start:stop]
        yield row, line.tobytes()


@lru_cache(maxsize=4)
def _blank_row(cols: int) -> bytes:
    """Raw bytes of a ``tb_time_utc`` row without observations."""
    return np.full(cols, _NA_UTC, dtype="S24").tobytes()


@lru_cache(maxsize=4)
def _blank_row_deflated(cols: int) -> bytes:
    return zlib.compress(_blank_row(cols), _GZIP_LEVEL)


def _compress(item: tuple[int, Buffer]) -> tuple[int, bytes]:
    row, data = item
    if isinstance(data, bytes) and data is _blank_row(len(data) // 24):
        return row, _blank_row_deflated(len(data) // 24)  # compressed once
    return row, zlib.compress(data, _GZIP_LEVEL)


def _compress_batch(batch: tuple[tuple[int, Buffer], ...]) -> list[tuple[int, bytes]]:
    return [_compress(item) for item in batch]


Deflated = list[tuple[int, bytes]]  # (grid row, deflated row chunk), rows in order


def _deflate(chunks: Iterator[tuple[int, Buffer]], pool: ThreadPoolExecutor) -> Deflated:
    """Deflate row chunks in parallel (zlib releases the GIL), before the HDF5 lock is taken.

    Equivalent to letting HDF5's deflate filter compress them (same zlib stream), but uses
    more than one core and leaves the library free meanwhile.
    """
    deflated: Deflated = []
    for batch in pool.map(_compress_batch, itertools.batched(chunks, _BATCH_ROWS)):
        deflated += batch
    return deflated


def _deflate_pass(data: _Pass, specs: Mapping[str, _Spec], grid: _Grid) -> dict[str, Deflated]:
    """The deflated row chunks of every dataset of a pass that has values."""
    out: dict[str, Deflated] = {}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for base, spec in specs.items():
            values = data.arrays.get(base)
            if isinstance(values, _Sparse):
                out[base] = _deflate(_sparse_chunks(values, grid.shape), pool)
            elif values is not None:
                out[base] = _deflate(_dense_chunks(values, _fill(spec), data.start), pool)
    return out


def _write_chunks(dataset: h5py.Dataset, chunks: Deflated) -> None:
    """Store deflated row chunks as they are; rows never written stay unallocated and read
    as the fill value."""
    tail = (0,) * (dataset.ndim - 1)
    for row, data in chunks:
        dataset.id.write_direct_chunk((row, *tail), data)


def _write_attrs(dataset: h5py.Dataset, spec: _Spec, coordinates: str) -> None:
    if spec.fill is not None:
        dataset.attrs.create("_FillValue", np.asarray(spec.fill, dtype=spec.dtype))
    if spec.coordinates:
        put_fixed_string_attr(dataset, "coordinates", coordinates)
    for name, value in spec.attrs:
        if isinstance(value, str):
            put_fixed_string_attr(dataset, name, value)
        else:
            dataset.attrs.create(name, np.asarray(value, dtype=spec.dtype))


def _create(group: h5py.Group, name: str, spec: _Spec, shape: tuple[int, int]) -> h5py.Dataset:
    full = (*shape, spec.layers) if spec.layers else shape
    chunks = (1, shape[1], spec.layers) if spec.layers else (1, shape[1])
    if spec.dtype == "S24":
        # NUL-terminated like the producer's (h5py would make it NUL-padded) and, like the
        # producer's, without an HDF5 fill value: netCDF-C crashes on a fixed-length string
        # fill value, so every row is written instead (unobserved cells hold "N/A   …").
        tid = h5py.h5t.C_S1.copy()
        tid.set_size(24)
        tid.set_strpad(h5py.h5t.STR_NULLTERM)
        return group.create_dataset(
            name,
            shape=full,
            dtype=h5py.Datatype(tid),
            chunks=chunks,
            compression="gzip",
            compression_opts=_GZIP_LEVEL,
            track_times=False,
        )
    return group.create_dataset(
        name,
        shape=full,
        dtype=spec.dtype,
        chunks=chunks,
        compression="gzip",
        compression_opts=_GZIP_LEVEL,
        fillvalue=np.asarray(spec.fill if spec.fill is not None else _F4_FILL, dtype=spec.dtype),
        track_times=False,
    )


def _write_group(
    root: h5py.File, name: str, grid: _Grid, chunks: Mapping[str, Deflated], pm: bool
) -> None:
    specs = _specs(grid, pm)
    coordinates = f"/{AM_GROUP}/latitude /{AM_GROUP}/longitude"
    group = root.create_group(name)
    suffix = "_pm" if pm else ""
    for base, spec in specs.items():
        dataset = _create(group, base + suffix, spec, grid.shape)
        _write_attrs(dataset, spec, coordinates)
        _write_chunks(dataset, chunks.get(base, []))


def _stats(values: Mapping[str, npt.ArrayLike]) -> dict[str, float]:
    """Missing and out-of-range percentages (cells outside the given band count as neither)."""
    sm = np.asarray(values["soil_moisture"], dtype=np.float32)
    seconds = np.asarray(values["tb_time_seconds"], dtype=np.float64)
    valid = (sm != np.float32(_F4_FILL)) & ~np.isnan(sm)
    attempted = int(((seconds != _F4_FILL) | valid).sum())
    missing = 100.0 * (attempted - int(valid.sum())) / attempted if attempted else 100.0
    outside = int(((sm[valid] < np.float32(0.02)) | (sm[valid] > np.float32(0.5))).sum())
    return {
        "missing_percent": missing,
        "out_of_range_percent": 100.0 * outside / max(int(valid.sum()), 1),
    }


def _write(
    path: str | os.PathLike[str],
    product: _Product,
    day: date,
    am: Mapping[str, npt.ArrayLike],
    pm: Mapping[str, npt.ArrayLike],
    crid: str,
    counter: int,
) -> None:
    file_name = f"{product.file_prefix}_{day:%Y%m%d}_{crid}_{counter:03d}.h5"
    for label, values in (("AM", am), ("PM", pm)):
        missing = [n for n in REQUIRED if n not in values]
        if missing:
            raise ValueError(f"invalid SMAP L3 input: {label} lacks {missing}")
    grid = product.grid
    am_specs, pm_specs = _specs(grid, pm=False), _specs(grid, pm=True)
    am_pass = _prepare(am, am_specs, grid, AM_GROUP)
    pm_pass = _prepare(pm, pm_specs, grid, PM_GROUP)
    metadata = metadata_tree(product, day, crid, file_name, _stats(am_pass.raw))
    am_chunks = _deflate_pass(am_pass, am_specs, grid)  # outside the HDF5 lock
    pm_chunks = _deflate_pass(pm_pass, pm_specs, grid)
    with atomic_target(path) as tmp:  # the file is synced after the library lock is released
        _write_file(tmp, grid, metadata, am_chunks, pm_chunks)


@serialized
def _write_file(
    path: Path,
    grid: _Grid,
    metadata: Mapping[str, Mapping[str, Attr]],
    am: Mapping[str, Deflated],
    pm: Mapping[str, Deflated],
) -> None:
    with h5py.File(path, "w", libver="earliest") as root:
        write_metadata(root, metadata)
        _write_group(root, AM_GROUP, grid, am, pm=False)
        _write_group(root, PM_GROUP, grid, pm, pm=True)


def write_spl3smp_e(
    path: str | os.PathLike[str],
    *,
    day: date,
    am: Mapping[str, npt.ArrayLike],
    pm: Mapping[str, npt.ArrayLike],
    crid: str = "R19240",
    counter: int = 1,
) -> None:
    """Write an ``SPL3SMP_E`` V006 granule (EASE-Grid 2.0 M09, 1624 × 3856) atomically.

    Parameters
    ----------
    path
        Target file (NSIDC's name is :func:`spl3smp_e_filename`).
    day
        The UTC day the granule composites.
    am, pm
        Base dataset name (no ``_pm`` suffix, see :data:`DATASET_NAMES`) → full-grid array
        ``(row, col)`` (``landcover_*``: ``(row, col, 3)``). Required: ``soil_moisture``
        (cm3/cm3, −9999 where none), ``retrieval_qual_flag`` (uint16, 65534 where none) and
        ``tb_time_seconds`` (seconds since 2000-01-01T12:00:00 UTC, −9999 where unobserved).
        NaN in float inputs is written as −9999. latitude, longitude, EASE indices and
        ``tb_time_utc`` are derived and must not be given.
    crid, counter
        Composite release ID and production counter, recorded in the metadata.
    """
    _write(path, _SPL3SMP_E, day, am, pm, crid, counter)


def write_spl3smp(
    path: str | os.PathLike[str],
    *,
    day: date,
    am: Mapping[str, npt.ArrayLike],
    pm: Mapping[str, npt.ArrayLike],
    crid: str = "R19240",
    counter: int = 1,
) -> None:
    """Write an ``SPL3SMP`` V009 granule (EASE-Grid 2.0 M36, 406 × 964); as :func:`write_spl3smp_e`."""
    _write(path, _SPL3SMP, day, am, pm, crid, counter)
