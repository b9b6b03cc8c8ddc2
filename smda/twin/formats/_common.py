"""Helpers shared by the format writers: atomic targets and fixed-length HDF5 strings."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

__all__ = ["as_utc", "atomic_target", "put_fixed_string_attr"]

_FILE_MODE = 0o644


@contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically.

    The temporary file exists (empty) when the body starts, so writers open it in a
    truncating mode. On any exception it is removed and ``path`` is left untouched.
    The parent directory is created if needed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(_FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
