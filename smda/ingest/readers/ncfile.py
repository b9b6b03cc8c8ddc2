"""Direct access to the variables of a netCDF file: dims, attributes and raw values, nothing else.

:func:`~smda.ingest.readers.open_netcdf` decodes a whole file with xarray: every variable's attributes
and dimensions are parsed, indexes built and CF conventions applied. A reader that needs one
variable of a granule pays for all of them (for a GLDAS granule that is ~80 ms, against ~13 ms
to decompress the one field it reads). :class:`NcFile` opens the file and reads only what is
asked for:

- netCDF-4 (HDF5) files are read with h5py: a variable is an HDF5 dataset, its dimension names
  come from the netCDF-4 dimension scales (``DIMENSION_LIST``), a hyperslab read decompresses
  only the chunks it touches;
- netCDF-3 and CDF-5 files fall back to :func:`~smda.ingest.readers.open_netcdf` with CF decoding
  switched off, so the same raw values and attributes come back.

Values are returned **as stored** (packed, fill not masked); :func:`decode_values` applies
``_FillValue``/``missing_value`` (→ NaN) and ``scale_factor``/``add_offset``, and
:func:`decode_cf_time` turns ``<unit> since <date>`` numbers into ``datetime64[ns]``.

:meth:`NcFile.read_stored` goes one step further for a variable stored as a single chunk with
only the shuffle and deflate filters (a GLDAS or MSWEP field): it returns the chunk's bytes as
stored (:class:`StoredChunk`), and :func:`unpack` undoes the filters later — zlib, then the byte
shuffle, exactly as HDF5 would — outside the HDF5 lock (:mod:`smda.storage.iolock`) and without the GIL,
so that decompressing one file does not stall every other HDF5 user of the process.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.ingest.readers import NETCDF_ERRORS, malformed, netcdf_kind, open_netcdf

__all__ = [
    "CF_DECODING",
    "DailyField",
    "NcFile",
    "StoredChunk",
    "decode_cf_time",
    "decode_values",
    "open_ncfile",
    "read_daily_field",
    "unpack",
]

# attributes netCDF-C keeps for itself in HDF5 files
_INTERNAL_ATTRS = frozenset(
    {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates"}
)
_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable"
_TIME_UNITS = {
    "days": "D",
    "day": "D",
    "hours": "h",
    "hour": "h",
    "minutes": "min",
    "minute": "min",
    "seconds": "s",
    "second": "s",
    "milliseconds": "ms",
    "microseconds": "us",
}
_STANDARD_CALENDARS = frozenset({"", "standard", "gregorian", "proleptic_gregorian"})
CF_DECODING = ("_FillValue", "missing_value", "scale_factor", "add_offset")
"""The attributes :func:`decode_values` uses."""


_UNPACKABLE = {h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE}


@dataclass(frozen=True, eq=False)
class StoredChunk:
    """A variable's only chunk as stored in the file: ``data`` after the ``shuffle`` and
    ``deflate`` filters, for values of ``dtype`` and ``shape`` (:func:`unpack` restores them)."""

    label: str
    name: str
    data: bytes
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    shuffle: bool
    deflate: bool


def unpack(stored: StoredChunk | npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The values of what :meth:`NcFile.read_stored` returned (a new, writable array).

    Raises
    ------
    MalformedFile
        The chunk does not inflate, or not to the variable's size (a corrupt file).
    """
    if not isinstance(stored, StoredChunk):
        return stored
    try:
        raw = zlib.decompress(stored.data) if stored.deflate else stored.data
    except zlib.error as exc:
        raise malformed(stored.label, f"{stored.name} cannot be read (corrupt?): {exc}") from exc
    itemsize = stored.dtype.itemsize
    if len(raw) != math.prod(stored.shape) * itemsize:
        raise malformed(
            stored.label, f"{stored.name}: chunk holds {len(raw)} bytes, not {stored.shape}"
        )
    planes: npt.NDArray[np.uint8] = np.frombuffer(raw, dtype=np.uint8)
    if stored.shuffle and itemsize > 1:  # byte k of every value, then byte k + 1, ...
        planes = planes.reshape(itemsize, -1)
        interleaved = np.empty((planes.shape[1], itemsize), dtype=np.uint8)
        for k in range(itemsize):  # one plane at a time: 3× faster than a transposed copy
            interleaved[:, k] = planes[k]
        return interleaved.view(stored.dtype).reshape(stored.shape)
    return planes.view(stored.dtype).reshape(stored.shape).copy()


def _text(value: Any) -> Any:
    """Attribute value with bytes decoded and 1-element arrays unwrapped (like xarray)."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace").rstrip("\x00")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O") and value.size == 1:
            return _text(value.reshape(-1)[0])
        if value.size == 1:
            return value.reshape(-1)[0]
    return value


class NcFile:
    """An open netCDF file (use :func:`open_ncfile`): variables by name, read on demand.

    Parameters
    ----------
    label:
        How to name the file in error messages.
    h5:
        The h5py file of a netCDF-4 file, or None.
    ds:
        The raw (CF decoding off) xarray dataset of a netCDF-3/CDF-5 file, or None.
    """

    def __init__(self, label: str, *, h5: h5py.File | None = None, ds: xr.Dataset | None = None):
        self.label = label
        self._h5 = h5
        self._ds = ds

    def variables(self) -> list[str]:
        """Names of the variables (dimensions without a variable are left out)."""
        if self._h5 is not None:
            return [
                name
                for name, obj in self._h5.items()
                if isinstance(obj, h5py.Dataset)
                and not str(_text(obj.attrs.get("NAME", ""))).startswith(_NOT_A_VARIABLE)
            ]
        assert self._ds is not None
        return [str(name) for name in self._ds.variables]

    def __contains__(self, name: str) -> bool:
        if self._h5 is None:
            assert self._ds is not None
            return name in self._ds.variables
        obj = self._h5.get(name)
        return isinstance(obj, h5py.Dataset) and not str(
            _text(obj.attrs.get("NAME", ""))
        ).startswith(_NOT_A_VARIABLE)

    def _dataset(self, name: str) -> h5py.Dataset:
        assert self._h5 is not None
        obj = self._h5.get(name)
        if not isinstance(obj, h5py.Dataset):
            raise malformed(self.label, f"no variable {name}")
        return obj

    def dims(self, name: str) -> tuple[str, ...]:
        """Dimension names of variable ``name``, in storage order."""
        if self._h5 is None:
            assert self._ds is not None
            return tuple(str(d) for d in self._ds[name].dims)
        dataset = self._dataset(name)
        names = []
        for i, dim in enumerate(dataset.dims):
            if len(dim):
                names.append(dim[0].name.rsplit("/", 1)[-1])
            elif dataset.attrs.get("CLASS") == b"DIMENSION_SCALE":
                names.append(name)  # a coordinate variable is its own dimension
            else:
                names.append(dim.label or f"phony_dim_{i}")
        return tuple(names)

    def shape(self, name: str) -> tuple[int, ...]:
        if self._h5 is None:
            assert self._ds is not None
            return tuple(int(n) for n in self._ds[name].shape)
        return tuple(int(n) for n in self._dataset(name).shape)

    def attrs(self, name: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """The variable's attributes (text decoded, 1-element arrays unwrapped).

        ``keys``: read only these (those present); all of them by default.
        """
        if self._h5 is None:
            assert self._ds is not None
            found = self._ds[name].attrs
        else:
            found = self._dataset(name).attrs
        if keys is None:
            return {str(k): _text(v) for k, v in found.items() if k not in _INTERNAL_ATTRS}
        return {k: _text(found[k]) for k in keys if k in found}

    def read_stored(self, name: str) -> StoredChunk | npt.NDArray[Any]:
        """All of ``name`` for :func:`unpack`: its chunk as stored when the variable is one
        chunk with shuffle/deflate filters only (module docstring), else its values."""
        if self._h5 is None:
            return self.read(name)
        dataset = self._dataset(name)
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        if (
            dataset.chunks != dataset.shape
            or dataset.dtype.kind not in "iuf"
            or not set(filters) <= _UNPACKABLE
            or (filters[:1] == [h5py.h5z.FILTER_DEFLATE] and len(filters) == 2)  # not shuffle first
        ):
            return self.read(name)
        if dataset.id.get_num_chunks() == 0:  # never written: reading it directly is undefined
            return self.read(name)
        try:
            mask, data = dataset.id.read_direct_chunk((0,) * dataset.ndim)
        except (OSError, RuntimeError, ValueError, KeyError):  # e.g. never written: fill
            return self.read(name)
        if mask:  # a filter was skipped for this chunk
            return self.read(name)
        shuffle, deflate = h5py.h5z.FILTER_SHUFFLE in filters, h5py.h5z.FILTER_DEFLATE in filters
        return StoredChunk(
            self.label, name, bytes(data), dataset.dtype, dataset.shape, shuffle, deflate
        )

    def read(self, name: str, index: Any = ()) -> npt.NDArray[Any]:
        """Raw values of ``name`` (``index``: a numpy-style selection, e.g. a row slice).

        Raises
        ------
        MalformedFile
            The values cannot be read (a truncated or corrupt chunk).
        """
        try:
            if self._h5 is not None:
                return np.asarray(self._dataset(name)[index])
            assert self._ds is not None
            return np.asarray(self._ds[name].values[index])
        except NETCDF_ERRORS as exc:
            raise malformed(
                self.label, f"{name} cannot be read (truncated or corrupt?): {exc}"
            ) from exc


@contextmanager
def open_ncfile(path: str | os.PathLike[str], *, name: str | None = None) -> Iterator[NcFile]:
    """Open a netCDF file for direct variable access (module docstring); closed on exit.

    Raises
    ------
    MalformedFile
        Not netCDF, or truncated/corrupt so that it cannot be opened.
    """
    path = Path(path)
    label = name or os.fspath(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(2056)
    except OSError as exc:
        raise malformed(label, f"cannot be read ({exc})") from exc
    kind = netcdf_kind(head)
    if kind != "hdf5":
        with open_netcdf(path, name=label, raw=True) as ds:
            yield NcFile(label, ds=ds)
        return
    try:
        h5 = h5py.File(path, "r")
    except NETCDF_ERRORS as exc:
        raise malformed(
            label, f"cannot be opened as hdf5 netCDF (truncated or corrupt?): {exc}"
        ) from exc
    with h5:
        yield NcFile(label, h5=h5)


def decode_values(
    raw: npt.NDArray[Any],
    attrs: Mapping[str, Any],
    dtype: type[np.floating[Any]] = np.float32,
    *,
    copy: bool = True,
) -> npt.NDArray[Any]:
    """CF-decode raw values: fill → NaN, then ``scale_factor``/``add_offset``.

    ``_FillValue`` and ``missing_value`` (scalars or lists) mark missing values; NaN fill
    values are already NaN. The result has ``dtype`` (float32 by default); it is a new array
    unless ``copy`` is False and ``raw`` already has ``dtype`` (then ``raw`` is decoded in place:
    pass arrays you own, such as those :meth:`NcFile.read` returns).
    """
    out = raw.astype(dtype, copy=copy)
    fills = {
        v.item()
        for key in ("_FillValue", "missing_value")
        for v in np.atleast_1d(np.asarray(attrs.get(key, []), dtype=raw.dtype))
    }
    masks = [
        raw == fill for fill in fills if not (isinstance(fill, float) and math.isnan(fill))
    ]  # computed before ``out`` (possibly ``raw`` itself) is changed; NaN fill: already NaN
    for mask in masks:
        out[mask] = np.nan
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset")
    if scale is not None and float(scale) != 1.0:
        out *= dtype(scale)
    if offset is not None and float(offset) != 0.0:
        out += dtype(offset)
    return out


def decode_cf_time(
    values: npt.ArrayLike, units: str, label: str, calendar: str = "standard"
) -> npt.NDArray[np.datetime64]:
    """``<unit> since <reference>`` numbers → ``datetime64[ns]`` (UTC; standard calendars).

    Surrounding blanks in ``units`` are ignored (GLDAS writes ``' minutes since …'``).

    Raises
    ------
    MalformedFile
        Units that are not ``<unit> since <date>``, an unreadable reference date, or a
        calendar other than standard/gregorian/proleptic_gregorian.
    """
    step, sep, origin = str(units).strip().partition(" since ")
    scale = _TIME_UNITS.get(step.strip().lower())
    if not sep or scale is None:
        raise malformed(label, f"time units {units!r} are not '<unit> since <date>'")
    if str(calendar).strip().lower() not in _STANDARD_CALENDARS:
        raise malformed(label, f"time calendar {calendar!r} is not a standard calendar")
    try:
        reference = pd.Timestamp(origin.strip())
    except ValueError as exc:
        raise malformed(label, f"time units {units!r} have an unreadable reference date") from exc
    if reference.tzinfo is not None:
        reference = reference.tz_convert("UTC").tz_localize(None)
    numbers = np.asarray(values, dtype=np.float64)
    moments = reference + pd.to_timedelta(numbers.ravel(), unit=scale)
    return np.asarray(moments.values, dtype="datetime64[ns]").reshape(numbers.shape)


@dataclass(frozen=True, eq=False)
class DailyField:
    """One daily 2-D field of a file (MSWEP, GLDAS), still as stored: decode it with
    :meth:`values` (outside the HDF5 lock)."""

    stored: StoredChunk | npt.NDArray[Any]
    lat_dim: str
    lon_dim: str
    kept: list[str]
    """The field's latitude and longitude dims, in storage order."""
    sizes: dict[str, int]
    attrs: dict[str, Any]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]

    def values(self) -> npt.NDArray[np.float32]:
        """The field as (lat, lon) float32 in the file's units, CF-decoded (fill → NaN)."""
        raw = unpack(self.stored).reshape([self.sizes[d] for d in self.kept])
        if self.kept[0] != self.lat_dim:
            raw = raw.T
        return decode_values(raw, self.attrs, copy=False)


def _named(dims: tuple[str, ...], names: tuple[str, ...], variable: str, label: str) -> str:
    for name in names:
        if name in dims:
            return name
    raise malformed(label, f"{variable} has no {names[0]} dimension (dims {dims})")


def read_daily_field(
    nc: NcFile,
    variable: str,
    *,
    lat_names: tuple[str, ...] = ("lat",),
    lon_names: tuple[str, ...] = ("lon",),
    label: str,
) -> DailyField:
    """Read one daily field ``variable`` (size-1 leading dims, then its latitude and longitude
    dims — the first of ``lat_names``/``lon_names`` it has — in either order) and its
    coordinates from an open file.

    Raises
    ------
    MalformedFile
        The variable is missing, or it is not a single daily (lat, lon) field.
    """
    if variable not in nc:
        raise malformed(label, f"no variable {variable} (variables: {sorted(nc.variables())})")
    dims = nc.dims(variable)
    lat_dim = _named(dims, lat_names, variable, label)
    lon_dim = _named(dims, lon_names, variable, label)
    sizes = dict(zip(dims, nc.shape(variable), strict=True))
    if any(sizes[d] != 1 for d in dims if d not in (lat_dim, lon_dim)):
        raise malformed(label, f"{variable} must be one daily field, got sizes {sizes}")
    return DailyField(
        stored=nc.read_stored(variable),
        lat_dim=lat_dim,
        lon_dim=lon_dim,
        kept=[d for d in dims if d in (lat_dim, lon_dim)],
        sizes=sizes,
        attrs=nc.attrs(variable, (*CF_DECODING, "units")),
        lat=np.asarray(nc.read(lat_dim), dtype=np.float64) if lat_dim in nc else np.empty(0),
        lon=np.asarray(nc.read(lon_dim), dtype=np.float64) if lon_dim in nc else np.empty(0),
    )
