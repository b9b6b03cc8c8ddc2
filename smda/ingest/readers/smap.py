"""SMAP L3 radiometer soil-moisture granules (``SPL3SMP`` 36 km, ``SPL3SMP_E`` 9 km), read with h5py.

Two layouts exist, and both are read:

- **early** (ECS v003, e.g. the real ``SMAP_L3_SM_P_20150401_R13080_001.h5``; STRUCTURE.md §1.1):
  one group ``Soil_Moisture_Retrieval_Data`` holding the descending (≈ 6 AM local) retrievals.
  It is returned as the ``"AM"`` pass;
- **current** (v4 and later, the twin's SPL3SMP and SPL3SMP_E): groups
  ``Soil_Moisture_Retrieval_Data_AM`` and ``Soil_Moisture_Retrieval_Data_PM``, where every PM
  dataset name carries the suffix ``_pm`` (``soil_moisture_pm``, …). Returned as ``"AM"`` and
  ``"PM"``. The polar-grid groups of SPL3SMP_E are not read.

The grid follows from the array shape: 406 × 964 is :data:`smda.geo.ease2.M36`, 1624 × 3856 is
:data:`smda.geo.ease2.M09`; rows run north → south, columns west → east. The ``latitude``/``longitude``
datasets are not read (they are −9999 where nothing was retrieved): use the grid.

Only the datasets a pass needs are read (a global M09 granule reads in a fraction of a second):
``soil_moisture``, ``retrieval_qual_flag``, ``surface_flag`` and ``tb_time_seconds``; with
``extras=True`` also ``soil_moisture_error``, ``freeze_thaw_fraction`` and
``surface_temperature``. ``rows=`` reads a band of whole grid rows only: the producer stores
one row per HDF5 chunk, so a regional read decompresses the region's rows and nothing else.

Flag semantics
--------------
- ``retrieval_qual_flag`` (uint16, fill 65534): flag_meanings ``Retrieval_recommended
  Retrieval_attempted Retrieval_success [FT_retrieval_success]`` with masks 1, 2, 4 (, 8) — a
  **set** bit means the condition *failed*: bit 0 set = retrieval **not** recommended
  (:attr:`SmapPass.recommended`). In the real 2015 granule 0 → 20878 cells, 1 → 10373, 5 → 4027.
- ``surface_flag`` (uint16, fill 65534): 12 bits, names from the dataset's ``flag_meanings``
  with the ``36_km_``/``9_km_`` prefix removed (:data:`SURFACE_FLAG_BITS` when the attribute is
  absent): static_water_body, radar_water_body_detection, coastal_proximity, urban_area,
  precipitation, snow_or_ice, permanent_snow_or_ice, radar_frozen_ground (early granules and the
  PM pass; the AM pass of current releases says ``radiometer_frozen_ground``),
  model_frozen_ground, mountainous_terrain, dense_vegetation, nadir_region.
  :meth:`SmapPass.surface_mask` turns names into a boolean mask.
- ``tb_time_seconds`` (float64): seconds since **2000-01-01T12:00:00 UTC** (J2000) — the early
  granule's long_name says "since midnight", but its values match ``tb_time_utc`` only with the
  noon epoch (STRUCTURE.md §1.1). :meth:`SmapPass.tb_time` converts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from smda.geo.ease2 import M09, M36, EaseGrid
from smda.ingest.readers import malformed
from smda.storage.iolock import serialized

__all__ = [
    "EARLY_GROUP",
    "GROUPS",
    "J2000",
    "SURFACE_FLAG_BITS",
    "SmapGranule",
    "SmapPass",
    "check_hdf5",
    "read_spl3smp",
]

EARLY_GROUP = "Soil_Moisture_Retrieval_Data"
"""The single retrieval group of early (v003) granules: the descending (AM) pass."""
GROUPS = {"AM": "Soil_Moisture_Retrieval_Data_AM", "PM": "Soil_Moisture_Retrieval_Data_PM"}
"""Pass → retrieval group of current granules (PM dataset names end in ``_pm``)."""
J2000 = np.datetime64("2000-01-01T12:00:00", "ms")
"""Epoch of ``tb_time_seconds``."""
FLAG_FILL = 65534
_FLOAT_FILL = -9999.0

_NAMES_12 = (
    "static_water_body radar_water_body_detection coastal_proximity urban_area precipitation "
    "snow_or_ice permanent_snow_or_ice radar_frozen_ground model_frozen_ground "
    "mountainous_terrain dense_vegetation nadir_region"
)
SURFACE_FLAG_BITS: dict[str, int] = {name: 1 << i for i, name in enumerate(_NAMES_12.split())}
"""``surface_flag`` name → mask when a file has no ``flag_meanings`` (the real early layout)."""

_REQUIRED = ("soil_moisture", "retrieval_qual_flag", "surface_flag", "tb_time_seconds")
_EXTRAS = ("soil_moisture_error", "freeze_thaw_fraction", "surface_temperature")
_GRIDS = {M36.shape: M36, M09.shape: M09}
_PREFIX = re.compile(r"^\d+_km_")
_NAME_DAY = re.compile(r"_(\d{8})_")

FlagArray = npt.NDArray[np.uint16]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class SmapPass:
    """One pass (AM or PM) of an L3 granule; every array is 2-D (row, col) on the granule's grid.

    Attributes
    ----------
    soil_moisture:
        float32, m3 m-3 (the file says cm**3/cm**3), NaN where fill (−9999). Not masked by the
        valid range 0.02–0.5: 2002 valid values of the real 2015 granule exceed 0.5.
    retrieval_qual_flag, surface_flag:
        uint16 bit flags, 65534 where fill (module docstring).
    tb_time_seconds:
        float64, seconds since 2000-01-01T12:00:00 UTC, NaN where fill.
    soil_moisture_error, freeze_thaw_fraction, surface_temperature:
        float32 (m3 m-3, fraction, K), NaN where fill; None unless read with ``extras=True``
        (or when the granule lacks them).
    surface_flag_bits:
        ``surface_flag`` bit name (grid prefix removed) → mask, from the file.
    """

    soil_moisture: npt.NDArray[np.float32]
    retrieval_qual_flag: FlagArray
    surface_flag: FlagArray
    tb_time_seconds: npt.NDArray[np.float64]
    soil_moisture_error: npt.NDArray[np.float32] | None = None
    freeze_thaw_fraction: npt.NDArray[np.float32] | None = None
    surface_temperature: npt.NDArray[np.float32] | None = None
    surface_flag_bits: Mapping[str, int] = field(default_factory=lambda: dict(SURFACE_FLAG_BITS))

    @property
    def valid(self) -> BoolArray:
        """Cells with a soil-moisture value (not fill)."""
        return np.isfinite(self.soil_moisture)

    @property
    def recommended(self) -> BoolArray:
        """Valid cells whose retrieval is recommended (``retrieval_qual_flag`` bit 0 clear)."""
        qual = self.retrieval_qual_flag
        return np.asarray(self.valid & (qual != FLAG_FILL) & ((qual & 1) == 0))

    def surface_mask(self, *names: str) -> BoolArray:
        """Cells where any of the named ``surface_flag`` bits is set (fill cells: False).

        Names are those of :attr:`surface_flag_bits`; a name ending in ``frozen_ground`` with no
        exact match (``radar_`` vs ``radiometer_``) matches every ``*frozen_ground`` bit except
        ``model_frozen_ground``. ``surface_mask("static_water_body", "snow_or_ice",
        "permanent_snow_or_ice", "radar_frozen_ground")`` is a typical exclusion.

        Raises
        ------
        KeyError
            A name matches no bit; the message lists the valid names.
        """
        mask = 0
        for name in names:
            if name in self.surface_flag_bits:
                mask |= self.surface_flag_bits[name]
                continue
            frozen = [
                bit
                for key, bit in self.surface_flag_bits.items()
                if name.endswith("frozen_ground")
                and key.endswith("_frozen_ground")
                and key != "model_frozen_ground"
            ]
            if not frozen:
                raise KeyError(
                    f"unknown surface_flag bit {name!r}; valid: {sorted(self.surface_flag_bits)}"
                )
            for bit in frozen:
                mask |= bit
        flags = self.surface_flag
        return np.asarray((flags != FLAG_FILL) & ((flags & mask) != 0))

    def tb_time(self) -> npt.NDArray[np.datetime64]:
        """Observation time (datetime64[ms], UTC; NaT where no observation)."""
        seconds = self.tb_time_seconds
        ok = np.isfinite(seconds)
        millis = np.where(ok, np.round(np.where(ok, seconds, 0.0) * 1000.0), 0).astype(np.int64)
        out = J2000 + millis.astype("timedelta64[ms]")
        out[~ok] = np.datetime64("NaT", "ms")
        return out


@dataclass(frozen=True, eq=False)
class SmapGranule:
    """An L3 granule: its EASE-Grid 2.0 grid, UTC day and passes (``"AM"``, and ``"PM"`` if present).

    ``first_row`` is the grid row of the passes' first array row: 0 when the whole grid was
    read, the start of the band when it was read with ``rows=``.
    """

    grid: EaseGrid
    day: date
    passes: dict[str, SmapPass]
    path: Path
    first_row: int = 0


def _text(value: object) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("ascii", "replace").rstrip("\x00").strip()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return str(value).strip()


def _day(root: h5py.File, path: Path) -> date:
    try:
        text = _text(root["Metadata/Extent"].attrs["rangeBeginningDateTime"])
        return date.fromisoformat(text[:10])
    except (KeyError, ValueError, OSError):
        pass
    match = _NAME_DAY.search(path.name)
    if match:
        digits = match.group(1)
        try:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            pass
    raise malformed(
        path, "no day: neither Metadata/Extent/rangeBeginningDateTime nor YYYYMMDD in the name"
    )


def _flag_bits(dataset: h5py.Dataset) -> dict[str, int]:
    try:
        meanings = _text(dataset.attrs["flag_meanings"]).split()
        masks = [
            int(m.strip().rstrip("sSuU")) for m in _text(dataset.attrs["flag_masks"]).split(",")
        ]
    except (KeyError, ValueError, OSError):
        return dict(SURFACE_FLAG_BITS)
    if len(meanings) != len(masks):
        return dict(SURFACE_FLAG_BITS)
    return {_PREFIX.sub("", name): mask for name, mask in zip(meanings, masks, strict=True)}


def _read(
    group: h5py.Group, name: str, path: Path, rows: slice | None = None
) -> npt.NDArray[np.generic]:
    try:
        values = group[name][() if rows is None else rows]
    except KeyError as exc:
        raise malformed(path, f"group {group.name} has no dataset {name}") from exc
    except (OSError, RuntimeError, ValueError) as exc:
        raise malformed(
            path, f"{group.name}/{name} cannot be read (truncated or corrupt?): {exc}"
        ) from exc
    return np.asarray(values)


def _floats[F: np.floating[Any]](values: npt.NDArray[np.generic], dtype: type[F]) -> npt.NDArray[F]:
    out = values.astype(dtype, copy=True)
    out[out == _FLOAT_FILL] = np.nan
    return out


def _read_pass(
    group: h5py.Group, suffix: str, extras: bool, path: Path, rows: slice | None = None
) -> SmapPass:
    arrays = {name: _read(group, name + suffix, path, rows) for name in _REQUIRED}
    optional: dict[str, npt.NDArray[np.float32] | None] = dict.fromkeys(_EXTRAS)
    if extras:
        for name in _EXTRAS:
            if name + suffix in group:
                optional[name] = _floats(_read(group, name + suffix, path, rows), np.float32)
    shapes = {a.shape for a in arrays.values()} | {
        a.shape for a in optional.values() if a is not None
    }
    if len(shapes) != 1:
        raise malformed(path, f"datasets of {group.name} differ in shape: {sorted(shapes)}")
    return SmapPass(
        soil_moisture=_floats(arrays["soil_moisture"], np.float32),
        retrieval_qual_flag=arrays["retrieval_qual_flag"].astype(np.uint16, copy=False),
        surface_flag=arrays["surface_flag"].astype(np.uint16, copy=False),
        tb_time_seconds=_floats(arrays["tb_time_seconds"], np.float64),
        surface_flag_bits=_flag_bits(group["surface_flag" + suffix]),
        **optional,
    )


@serialized
def read_spl3smp(
    path: str | os.PathLike[str], *, extras: bool = False, rows: slice | None = None
) -> SmapGranule:
    """Read an SPL3SMP or SPL3SMP_E granule (early single-group or current AM/PM layout).

    Parameters
    ----------
    path:
        The ``.h5`` granule.
    extras:
        Also read ``soil_moisture_error``, ``freeze_thaw_fraction`` and ``surface_temperature``.
    rows:
        Read only these grid rows (a ``slice`` with step 1; full width): every array of the
        passes is then (band rows, grid columns) and ``first_row`` says where the band starts.
        Default: the whole grid.

    Returns
    -------
    SmapGranule
        ``grid`` (M36 or M09, by shape), ``day`` (UTC, from ``Metadata/Extent`` or the file
        name), ``passes``: ``{"AM": SmapPass}`` for an early granule, ``{"AM", "PM"}`` for a
        current one (a current granule missing one of the groups returns the other), and
        ``first_row``.

    Raises
    ------
    MalformedFile
        Not HDF5, truncated or corrupt, no retrieval group, a required dataset missing or
        unreadable, or a shape that is neither EASE-Grid 2.0 M36 nor M09.
    """
    path = Path(path)
    try:
        root = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise malformed(
            path, f"cannot be opened as HDF5 (not HDF5, truncated or corrupt): {exc}"
        ) from exc
    with root:
        layout = _layout(root, path)
        grid = _grid_of(layout, path)
        band = None if rows is None else _band(rows, grid, path)
        passes = {
            name: _read_pass(group, suffix, extras, path, band)
            for name, (group, suffix) in layout.items()
        }
        day = _day(root, path)
    first_row = 0 if band is None else int(band.start)
    return SmapGranule(grid=grid, day=day, passes=passes, path=path, first_row=first_row)


def _layout(root: h5py.File, path: Path) -> dict[str, tuple[h5py.Group, str]]:
    """Pass name → (retrieval group, dataset name suffix) of either layout."""
    if EARLY_GROUP in root:
        return {"AM": (root[EARLY_GROUP], "")}
    layout = {p: (root[g], "_pm" if p == "PM" else "") for p, g in GROUPS.items() if g in root}
    if not layout:
        raise malformed(
            path,
            f"no retrieval group ({EARLY_GROUP} or {' / '.join(GROUPS.values())}); "
            f"root holds {sorted(root)}",
        )
    return layout


def _grid_of(layout: Mapping[str, tuple[h5py.Group, str]], path: Path) -> EaseGrid:
    """The EASE grid of the passes, from the shape of their ``soil_moisture`` datasets."""
    shapes = []
    for group, suffix in layout.values():
        dataset = group.get("soil_moisture" + suffix)
        if not isinstance(dataset, h5py.Dataset):
            raise malformed(path, f"group {group.name} has no dataset soil_moisture{suffix}")
        shapes.append(tuple(dataset.shape))
    grid = _GRIDS.get(shapes[0])
    if grid is None or any(shape != shapes[0] for shape in shapes):
        raise malformed(
            path,
            f"unexpected grid: arrays of shape {shapes} "
            f"are neither EASE-Grid 2.0 M36 {M36.shape} nor M09 {M09.shape}",
        )
    return grid


def _band(rows: slice, grid: EaseGrid, path: Path) -> slice:
    """``rows`` as an explicit ``start:stop`` slice inside the grid."""
    start, stop, step = rows.indices(grid.nrows)
    if step != 1 or stop <= start:
        raise ValueError(f"rows must be a non-empty slice with step 1, got {rows} for {path}")
    return slice(start, stop)


@serialized
def check_hdf5(path: str | os.PathLike[str]) -> None:
    """Integrity check of a downloaded L3 granule: open it and read every dataset smda uses.

    A truncated file fails at open (HDF5 checks the end-of-file address); a damaged chunk fails
    when its dataset is decompressed. Returns None when the granule is readable.

    Raises
    ------
    MalformedFile
        As :func:`read_spl3smp`.
    """
    read_spl3smp(path)
