"""ERA5 and ERA5-Land files from the Climate Data Store, normalised to one layout.

Every CDS answer smda meets is read into the same Dataset:

- **new CDS netCDF** (2024+, written by cfgrib; STRUCTURE.md §3.1): dims ``valid_time`` (int64
  seconds since 1970), ``latitude`` (decreasing), ``longitude``; scalar coordinate ``number``;
  ``expver(valid_time)`` strings (``"0001"`` final ERA5, ``"0005"`` ERA5T); float32 data with
  NaN fill;
- **the new CDS ZIP** returned when instantaneous and accumulated variables are requested
  together, even with ``download_format: unarchived`` (members
  ``data_stream-oper_stepType-instant.nc``, ``…-accum.nc``, …): every ``.nc`` member is read and
  the variables merged; the members must share their grid and valid times;
- **old CDS netCDF-3** (2018, ``grib_to_netcdf``; STRUCTURE.md §3.2): dim ``time`` (int32 hours
  since 1900), longitude 0…355, data **int16 packed** with ``scale_factor``/``add_offset``, no
  ``expver``. Packing noise makes bounded quantities slightly negative (swvl1 down to −0.0033 over
  the sea), so packed variables with physical bounds (:data:`PACKED_BOUNDS`) are clipped to them;
- the old CDS's ``expver`` *dimension* (ERA5 and ERA5T mixed in one request, each NaN where the
  other holds data) is collapsed: each valid time takes the first expver slice that holds data.

ERA5-Land (0.1°) files have the same layout and are read the same way. GRIB is not read.

Output
------
``xr.Dataset`` with dims ``(time, latitude, longitude)``, in memory (no open file):

- ``time``: datetime64[ns], the UTC valid time (for accumulations, the end of the period);
- ``latitude``: float64 degrees_north, **decreasing** (flipped if the file stores it increasing);
- ``longitude``: float64 degrees_east wrapped into [−180, 180) **in the file's order** — a
  request over the antimeridian (e.g. 170…190) stays contiguous: 170 … 179.75, −180 … −170;
- ``expver(time)``: str, ``"0001"``/``"0005"`` as the CDS labels them, ``""`` where unknown
  (old files); merged ZIP members that disagree report ``"0005"`` (provisional wins);
- data variables: float32, ERA5 short names (t2m, d2m, tp, ssrd, u10, v10, sp, swvl1, lsm, z,
  slt, cvh, cvl, tvh, tvl, …) in the file's units, NaN where missing, with their attributes;
- ``attrs["source_layout"]``: ``"cds-netcdf"``, ``"cds-zip"`` or ``"cds-netcdf3-packed"``;
  ``attrs["source_path"]``: the file read (for messages about its content).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.ingest.readers import NETCDF_ERRORS, malformed, netcdf_kind, open_netcdf
from smda.ingest.readers.chunks import Decoding, decode, decode_workers, read_raw
from smda.storage.iolock import HDF5_IO

__all__ = ["PACKED_BOUNDS", "open_era5"]

PACKED_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "swvl1": (0.0, None),
    "swvl2": (0.0, None),
    "swvl3": (0.0, None),
    "swvl4": (0.0, None),
    "tp": (0.0, None),
    "ssrd": (0.0, None),
    "lsm": (0.0, 1.0),
    "cvh": (0.0, 1.0),
    "cvl": (0.0, 1.0),
}
"""Physical bounds applied to **packed** (integer-stored) variables after unpacking."""

_TIME_NAMES = ("valid_time", "time")
_ZIP_MAGIC = b"PK\x03\x04"
_PROVISIONAL = "0005"


@dataclass
class _Part:
    """One netCDF file (or ZIP member) in normalised form."""

    time: npt.NDArray[np.datetime64]
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    expver: npt.NDArray[np.str_]
    packed: bool
    variables: dict[str, xr.Variable] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, tuple[Decoding, bool, dict[str, Any]]] = field(default_factory=dict)
    """Variables still decoding on the pool: (decoding, flip latitude, attributes)."""


def _expver_code(value: object) -> str:
    """``"0001"`` from 1, b"0001", "1" or "0001"; ``""`` from empty/None/NaN."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    return text.zfill(4) if text.isdigit() else text


def _time_name(raw: xr.Dataset, label: str) -> str:
    for name in _TIME_NAMES:
        if name in raw.dims:
            return name
    raise malformed(
        label, f"no time dimension (expected one of {list(_TIME_NAMES)}, found {list(raw.dims)})"
    )


def _expver_per_time(
    raw: xr.Dataset, time: str, data: dict[str, xr.DataArray]
) -> tuple[npt.NDArray[np.str_], dict[str, xr.DataArray]]:
    """expver(time) codes; collapse an ``expver`` dimension (old CDS ERA5/ERA5T mixes)."""
    n = raw.sizes[time]
    if "expver" in raw.dims:
        codes = [_expver_code(v) for v in np.atleast_1d(raw["expver"].values)]
        chosen = np.full(n, "", dtype="<U4")
        merged: dict[str, xr.DataArray] = {}
        for name, var in data.items():
            out = var.isel(expver=0)
            for k in range(1, len(codes)):
                out = out.where(out.notnull(), var.isel(expver=k))
            merged[name] = out
        first = next(iter(data.values()))
        other_dims = [d for d in first.dims if d not in (time, "expver")]
        has_data = first.notnull().any(other_dims).transpose(time, "expver").values
        for k in range(len(codes) - 1, -1, -1):
            chosen[has_data[:, k]] = codes[k]
        return chosen, merged
    if "expver" in raw.variables and raw["expver"].dims == (time,):
        values = [_expver_code(v) for v in raw["expver"].values]
        return np.asarray(values, dtype="<U4"), data
    return np.full(n, "", dtype="<U4"), data


def _axis(raw: xr.Dataset, name: str, label: str) -> npt.NDArray[np.float64]:
    if name not in raw.variables:
        raise malformed(
            label, f"no {name} coordinate (variables: {sorted(map(str, raw.variables))})"
        )
    values = np.asarray(raw[name].values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise malformed(label, f"{name} must be a non-empty 1-D finite coordinate")
    return values


def _normalise(raw: xr.Dataset, label: str, decoding: dict[str, Decoding]) -> _Part:
    """Read one CDS netCDF file into normalised, in-memory form (module docstring); the
    variables in ``decoding`` are left pending (:func:`_finish`)."""
    time = _time_name(raw, label)
    lat = _axis(raw, "latitude", label)
    lon = _axis(raw, "longitude", label)
    data = {
        str(name): var
        for name, var in raw.data_vars.items()
        if {time, "latitude", "longitude"} <= set(map(str, var.dims))
    }
    if not data:
        raise malformed(
            label,
            f"no data variable with dims ({time}, latitude, longitude); "
            f"found {sorted(map(str, raw.data_vars))}",
        )
    expver, data = _expver_per_time(raw, time, data)
    times = raw[time].values
    if not np.issubdtype(times.dtype, np.datetime64):
        units = raw[time].attrs.get("units", raw[time].encoding.get("units"))
        raise malformed(label, f"{time} could not be decoded as dates (units {units!r})")
    if lat.size > 1 and not (np.all(np.diff(lat) < 0) or np.all(np.diff(lat) > 0)):
        raise malformed(label, "latitude is not strictly monotonic")
    flip = lat.size > 1 and bool(lat[1] > lat[0])
    wrapped = (lon + 180.0) % 360.0 - 180.0
    if np.unique(wrapped).size != wrapped.size:
        raise malformed(label, "longitude holds the same meridian twice (e.g. 0 and 360)")
    part = _Part(
        time=times.astype("datetime64[ns]"),
        latitude=lat[::-1] if flip else lat,
        longitude=wrapped,
        expver=expver,
        packed=False,
        attrs=dict(raw.attrs),
    )
    for name, found in data.items():
        extra = [d for d in found.dims if d not in (time, "latitude", "longitude")]
        if any(found.sizes[d] != 1 for d in extra):
            raise malformed(label, f"{name} has extra dimensions {dict(found.sizes)}")
        var = found.isel({d: 0 for d in extra}).transpose(time, "latitude", "longitude")
        attrs = {k: v for k, v in var.attrs.items() if k != "coordinates"}
        if name in decoding:
            part.variables[name] = var.variable  # a placeholder keeping the file's order
            part.pending[name] = (decoding[name], flip, attrs)
            continue
        encoding = raw[name].encoding  # the file's: collapsing expver drops it from ``var``
        stored = np.dtype(encoding.get("dtype", raw[name].dtype))
        packed = stored.kind in "iu" or "scale_factor" in encoding
        try:
            values = np.asarray(var.values)
        except NETCDF_ERRORS as exc:
            raise malformed(label, f"{name} cannot be read (truncated or corrupt?): {exc}") from exc
        if flip:
            values = values[:, ::-1, :]
        if packed:
            part.packed = True
            if name in PACKED_BOUNDS:
                values = np.clip(values, *PACKED_BOUNDS[name])
        part.variables[name] = xr.Variable(
            ("time", "latitude", "longitude"),
            np.ascontiguousarray(values, dtype=np.float32),
            attrs,
        )
    return part


def _plain(raw: xr.Dataset, name: str, time: str) -> bool:
    """Whether ``name`` is stored as decoded values need it: float, (time, latitude, longitude),
    no packing and no fill other than NaN — so its stored chunks are its values."""
    var = raw[name]
    enc = var.encoding
    fill = enc.get("_FillValue")
    return (
        var.dims == (time, "latitude", "longitude")
        and np.dtype(enc.get("dtype", var.dtype)).kind == "f"
        and not {"scale_factor", "add_offset", "missing_value"} & set(enc)
        and (fill is None or bool(np.isnan(fill)))
    )


def _start_decoding(
    source: Path | bytes, raw: xr.Dataset, label: str, pool: Executor
) -> dict[str, Decoding]:
    """Read the stored chunks of the plain gridded variables of a netCDF-4 file and start
    decoding them on ``pool`` (the caller holds ``HDF5_IO``); the rest is left to xarray."""
    if isinstance(source, bytes):
        head = source[:2056]
    else:
        with source.open("rb") as fh:
            head = fh.read(2056)
    time = next((t for t in _TIME_NAMES if t in raw.dims), None)
    if netcdf_kind(head) != "hdf5" or time is None:
        return {}
    names = [str(n) for n in raw.data_vars if _plain(raw, str(n), time)]
    out: dict[str, Decoding] = {}
    try:
        with h5py.File(io.BytesIO(source) if isinstance(source, bytes) else source, "r") as h5:
            for name in names:
                node = h5.get(name)
                if isinstance(node, h5py.Dataset) and node.shape == raw[name].shape:
                    chunks = read_raw(node, source if isinstance(source, bytes) else None)
                    if chunks is not None:
                        out[name] = decode(chunks, pool)
    except (OSError, KeyError, ValueError) as exc:
        raise malformed(label, f"cannot be read (truncated or corrupt?): {exc}") from exc
    return out


def _finish(part: _Part, label: str) -> _Part:
    """Wait for the pending variables (no lock held) and put them in place."""
    for name, (decoding, flip, attrs) in part.pending.items():
        try:
            values = decoding.result()
        except (zlib.error, ValueError) as exc:
            raise malformed(label, f"{name} cannot be read (truncated or corrupt?): {exc}") from exc
        if flip:
            values = values[:, ::-1, :]
        part.variables[name] = xr.Variable(
            ("time", "latitude", "longitude"),
            np.ascontiguousarray(values, dtype=np.float32),
            attrs,
        )
    part.pending.clear()
    return part


def _read_netcdf(source: Path | bytes, label: str, pool: Executor) -> _Part:
    """One netCDF file read: metadata and stored chunks under ``HDF5_IO``; the chunks' decoding
    left running on ``pool`` (:func:`_finish` waits for it)."""
    with HDF5_IO, open_netcdf(source, name=label) as raw:
        return _normalise(raw, label, _start_decoding(source, raw, label, pool))


def _read_zip(path: Path, pool: Executor) -> list[_Part]:
    label = os.fspath(path)
    parts = []
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith(".nc")]
            if not members:
                raise malformed(label, f"ZIP holds no .nc member ({archive.namelist()})")
            for member in members:  # one member's bytes in memory at a time
                content = archive.read(member)
                parts.append(_read_netcdf(content, f"{label}!{member}", pool))
                del content
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise malformed(label, f"truncated or corrupt ZIP archive: {exc}") from exc
    return [_finish(part, label) for part in parts]


def _merge(parts: list[_Part], label: str) -> _Part:
    """Variables of every ZIP member on the first member's coordinates."""
    first = parts[0]
    merged = _Part(first.time, first.latitude, first.longitude, first.expver.copy(), first.packed)
    merged.attrs = dict(first.attrs)
    for part in parts:
        for axis in ("time", "latitude", "longitude"):
            mine, theirs = getattr(first, axis), getattr(part, axis)
            if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
                raise malformed(
                    label, f"ZIP members do not share {axis} ({mine.size} vs {theirs.size} values)"
                )
        clash = set(merged.variables) & set(part.variables)
        if clash:
            raise malformed(label, f"ZIP members both hold {sorted(clash)}")
        merged.variables.update(part.variables)
        differ = (merged.expver != part.expver) & (part.expver != "")
        take = differ & ((merged.expver == "") | (part.expver == _PROVISIONAL))
        merged.expver[take] = part.expver[take]
    return merged


def open_era5(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read a CDS ERA5 or ERA5-Land file (netCDF, netCDF-3 packed, or the instant/accum ZIP).

    Parameters
    ----------
    path:
        The file as the CDS delivered it (the ZIP is recognised by content, not by name).

    Returns
    -------
    xr.Dataset
        Dims ``(time, latitude, longitude)``, loaded in memory: float32 variables with ERA5
        short names; ``time`` datetime64[ns] UTC; ``latitude`` decreasing; ``longitude`` wrapped
        to [−180, 180) in the file's order; coordinate ``expver(time)`` (str, ``""`` unknown).
        See the module docstring for every rule.

    Raises
    ------
    MalformedFile
        Not netCDF/ZIP, truncated or corrupt, no time/latitude/longitude, no gridded variable,
        undecodable times, a non-monotonic latitude, duplicate meridians, or ZIP members on
        different grids or times.
    """
    path = Path(path)
    label = os.fspath(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise malformed(label, f"cannot be read ({exc})") from exc
    with ThreadPoolExecutor(decode_workers(), thread_name_prefix="era5-decode") as pool:
        if head == _ZIP_MAGIC:
            part = _merge(_read_zip(path, pool), label)
            layout = "cds-zip"
        else:
            part = _finish(_read_netcdf(path, label, pool), label)
            layout = "cds-netcdf3-packed" if part.packed else "cds-netcdf"
    ds = xr.Dataset(
        dict(part.variables),
        coords={
            "time": ("time", part.time),
            "latitude": ("latitude", part.latitude, {"units": "degrees_north"}),
            "longitude": ("longitude", part.longitude, {"units": "degrees_east"}),
            "expver": ("time", part.expver),
        },
        attrs={**part.attrs, "source_layout": layout, "source_path": label},
    )
    return ds
