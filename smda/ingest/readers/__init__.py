"""Readers: parse provider files into normalised numpy/xarray objects, with clear errors.

One module per provider format; each reads both the real producer files
(``../shared/data/real``, STRUCTURE.md) and the offline twin's files (``smda_twin.formats``):

- :mod:`smda.ingest.readers.era5` — :func:`~smda.ingest.readers.era5.open_era5`: every CDS answer for ERA5 and
  ERA5-Land (new-CDS netCDF, the instant/accum ZIP, the old packed-int16 netCDF3) as one
  ``(time, latitude, longitude)`` float32 Dataset.
- :mod:`smda.ingest.readers.smap` — :func:`~smda.ingest.readers.smap.read_spl3smp`: SPL3SMP / SPL3SMP_E
  granules (early single-group and current AM/PM layouts) as numpy arrays on EASE-Grid 2.0;
  :func:`~smda.ingest.readers.smap.check_hdf5` for download integrity.
- :mod:`smda.ingest.readers.gldas` — :func:`~smda.ingest.readers.gldas.open_gldas`: GLDAS Noah 0–10 cm soil
  moisture in m3 m-3.
- :mod:`smda.ingest.readers.mswep` — :func:`~smda.ingest.readers.mswep.open_mswep`: MSWEP daily precipitation on
  the 0.1° global grid, orientation checked and normalised.
- :mod:`smda.ingest.readers.ismn` — :func:`~smda.ingest.readers.ismn.read_ismn`: ISMN station downloads (folder
  or zip, every ISMN file format) as daily surface soil-moisture series.
- :mod:`smda.ingest.readers.ncfile` — :func:`~smda.ingest.readers.ncfile.open_ncfile`: direct access to the
  variables of a netCDF file (dims, attributes, raw values, a lone chunk as stored) for readers
  that need one variable of a granule, not all of it decoded.

Readers are pure parsing: no network and no writes (the ISMN reader extracts zip members into a
directory the caller names). Every structural problem — not HDF5/netCDF, truncated, missing group
or variable, unexpected grid — raises :class:`smda.errors.MalformedFile` with a message that names
the file and what is wrong. Submodules are imported explicitly (``from smda.ingest.readers.era5 import
open_era5``); this package module only holds the helpers they share.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import xarray as xr

from smda.errors import MalformedFile

__all__ = ["NETCDF_ERRORS", "malformed", "netcdf_kind", "open_netcdf"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NETCDF3_MAGICS = (b"CDF\x01", b"CDF\x02")
_CDF5_MAGIC = b"CDF\x05"
_HDF5_USERBLOCK_OFFSETS = (0, 512, 1024, 2048)

NETCDF_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
)
"""What netCDF4/h5netcdf/h5py/scipy raise for corrupt or truncated files."""


def malformed(source: str | os.PathLike[str], problem: str) -> MalformedFile:
    """A :class:`MalformedFile` whose message names ``source`` and the ``problem``."""
    return MalformedFile(f"{os.fspath(source)}: {problem}")


def netcdf_kind(head: bytes) -> str | None:
    """``"hdf5"`` (netCDF-4), ``"netcdf3"``, ``"cdf5"`` or ``None`` from a file's first 2056 bytes."""
    if head.startswith(_NETCDF3_MAGICS):
        return "netcdf3"
    if head.startswith(_CDF5_MAGIC):
        return "cdf5"
    for offset in _HDF5_USERBLOCK_OFFSETS:
        if head[offset : offset + len(_HDF5_MAGIC)] == _HDF5_MAGIC:
            return "hdf5"
    return None


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(2056)
    except OSError as exc:
        raise malformed(path, f"cannot be read ({exc})") from exc


@contextmanager
def open_netcdf(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    decode_times: bool = True,
    raw: bool = False,
) -> Iterator[xr.Dataset]:
    """Open a netCDF-3 or netCDF-4 file (a path, or the bytes of a ZIP member) with xarray.

    The format is sniffed from the magic bytes: netCDF-4/HDF5 is read with h5netcdf (HDF5 checks
    the end-of-file address, so a truncated file fails to open), classic netCDF-3 with scipy
    reading eagerly (netCDF-C would return fill values for a truncated file's missing bytes),
    CDF-5 with netCDF4. The dataset is closed on exit; load what you need inside the ``with``
    block.

    Parameters
    ----------
    source:
        Path to the file, or its content.
    name:
        How to name the file in error messages (default: the path).
    decode_times:
        Passed to :func:`xarray.open_dataset`.
    raw:
        No CF decoding at all (``decode_cf=False``): values as stored, fill not masked.

    Raises
    ------
    MalformedFile
        The file is not netCDF, or it is truncated or corrupt so that it cannot be opened.
    """
    if isinstance(source, bytes):
        label = name or "<bytes>"
        kind = netcdf_kind(source[:2056])
        handle: IO[bytes] | Path = io.BytesIO(source)
    else:
        path = Path(source)
        label = name or os.fspath(path)
        kind = netcdf_kind(_head(path))
        handle = path
    if kind is None:
        raise malformed(label, "not a netCDF file (neither HDF5 nor netCDF-3 magic bytes)")
    options: dict[str, object] = {"engine": "h5netcdf"}
    if kind == "netcdf3":
        # scipy reads netCDF-3 eagerly (mmap=False), so a truncated file fails here; netCDF-C
        # would silently return fill values for the missing bytes.
        options = (
            {"engine": "scipy", "mmap": False} if isinstance(handle, Path) else {"engine": "scipy"}
        )
    elif kind == "cdf5":
        options = {"engine": "netcdf4"}
    try:
        decoding = {"decode_cf": False} if raw else {"decode_times": decode_times}
        ds = xr.open_dataset(handle, **decoding, **options)  # type: ignore[arg-type]
    except NETCDF_ERRORS as exc:
        raise malformed(
            label, f"cannot be opened as {kind} netCDF (truncated or corrupt?): {exc}"
        ) from exc
    try:
        yield ds
    finally:
        ds.close()
