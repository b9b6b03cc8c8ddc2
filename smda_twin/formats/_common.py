"""Helpers shared by the format writers: atomic targets and fixed-length HDF5 strings."""

from __future__ import annotations

import os
import zlib
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from smda.storage.atomic import atomic_path

__all__ = ["as_utc", "atomic_target", "put_fixed_string_attr", "shuffled_deflate"]

_FILE_MODE = 0o644


def atomic_target(path: str | os.PathLike[str]) -> AbstractContextManager[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically
    (:func:`smda.storage.atomic.atomic_path`, world-readable like the providers' files)."""
    return atomic_path(Path(path), mode=_FILE_MODE)


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` as a naive UTC datetime (naive input is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def put_fixed_string_attr(obj: h5py.Group | h5py.Dataset, name: str, value: str) -> None:
    """Write ``value`` as a scalar fixed-length, NUL-terminated ASCII attribute.

    This is how the SMAP science data system (and netCDF-C) store text attributes; h5py's
    default for ``np.bytes_`` is NUL-padded, which readers treat the same but is not the
    producer's layout.
    """
    raw = value.encode("ascii")
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(max(len(raw), 1))
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    if name in obj.attrs:
        del obj.attrs[name]
    aid = h5py.h5a.create(obj.id, name.encode("ascii"), tid, space)
    aid.write(np.array(raw, dtype=f"S{max(len(raw), 1)}"), mtype=tid)


def shuffled_deflate(values: npt.NDArray[np.generic], level: int) -> bytes:
    """``values`` (one whole chunk, C order) as HDF5's shuffle then deflate filters store them.

    The byte planes (byte 0 of every value, then byte 1, …) deflated at zlib ``level``: the
    same stream the filters would write. Computed without the HDF5 library (and without the
    GIL), so a writer can compress outside the HDF5 lock and store the result with
    ``write_direct_chunk``.
    """
    flat = np.ascontiguousarray(values).reshape(-1)
    planes = np.ascontiguousarray(flat.view(np.uint8).reshape(-1, flat.dtype.itemsize).T)
    return zlib.compress(planes, level)
