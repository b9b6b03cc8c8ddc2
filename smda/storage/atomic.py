"""Atomic writes: a reader sees the old file or the new one, never half of one.

Write to a temporary sibling (same directory, so the final rename is atomic on POSIX), flush
and fsync, then ``os.replace`` onto the target. On any error the temporary file is removed
and the previous target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_create_bytes", "atomic_path", "atomic_write_bytes"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the process's umask, restored at once
DEFAULT_MODE = 0o666 & ~_UMASK
"""Mode of written files: what ``open()`` would give (``mkstemp``'s 0600 would hide published
products from a web server running as another user)."""


@contextlib.contextmanager
def atomic_path(target: Path | str, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``.

    The caller writes the temporary path with any library (netCDF4, h5py, rasterio...). The
    file gets ``mode`` (default :data:`DEFAULT_MODE`, as the umask allows).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, DEFAULT_MODE if mode is None else mode)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(target: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target, mode=mode) as tmp:
        tmp.write_bytes(data)


def atomic_create_bytes(target: Path | str, data: bytes, *, mode: int | None = None) -> bool:
    """Create ``target`` with ``data`` atomically unless it exists (write once).

    The data go to a temporary sibling (flushed and fsynced), which is then hard-linked onto
    ``target``: the link fails when ``target`` exists, so of two processes creating the same
    file one wins and the other leaves it untouched, and a reader never sees half of it.

    Returns
    -------
    True when this call created the file, False when it existed.
    """
    target = Path(target)
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, DEFAULT_MODE if mode is None else mode)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
