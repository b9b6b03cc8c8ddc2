"""Verified reads: digests of files checked against what was recorded when they were written.

Every file smda reads back was recorded when it was written — a staged day in its ledger record
(size and SHA-256), a state day in its sidecar, a compiled predictor in its registry record, a
COG in its STAC item (``file:size``, ``file:checksum``). :func:`file_digest` hashes a file once per
version of it in a process (a file re-written by an atomic rename is a new inode, a truncated
one has another size): a backfill reading each staged MSWEP day thirty times hashes it once.

What was found corrupt and repaired is logged and counted (:func:`note_repair`,
:func:`repairs`), and the counts go into the run's metrics (``smda_repairs``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from pathlib import Path

from smda.errors import MalformedFile

__all__ = [
    "REPAIR_KINDS",
    "CorruptFile",
    "file_digest",
    "multihash",
    "note_repair",
    "repairs",
    "sha256_of",
]

LOG = logging.getLogger(__name__)

REPAIR_KINDS = ("staged", "raw", "ledger", "state", "published", "compiled", "model", "orphan")
"""What :func:`note_repair` counts (``smda verify`` names its findings so too)."""
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_LOCK = threading.Lock()
_REPAIRS: Counter[str] = Counter()
_MAX_MEMO = 100_000


class CorruptFile(MalformedFile):
    """A file does not match what was recorded when it was written (truncated, changed).

    Attributes
    ----------
    path:
        The file.
    """

    def __init__(self, message: str, path: Path | str) -> None:
        super().__init__(message)
        self.path = str(path)


def sha256_of(path: Path | str, chunk: int = 1 << 20) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def file_digest(path: Path | str) -> tuple[str, int] | None:
    """SHA-256 and size of ``path``, memoised per version of the file (module docstring);
    None when the file does not exist."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    with _LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known, st.st_size
    sha, size = sha256_of(path)
    with _LOCK:
        if len(_DIGESTS) >= _MAX_MEMO:
            _DIGESTS.clear()
        _DIGESTS[key] = sha
    return sha, size


def multihash(sha256_hex: str) -> str:
    """A SHA-256 as the STAC file extension's ``file:checksum`` (multihash: 0x12, 32 bytes)."""
    return f"1220{sha256_hex}"


def note_repair(kind: str, message: str) -> None:
    """Log a repair (a warning: something was corrupt) and count it under ``kind``."""
    with _LOCK:
        _REPAIRS[kind] += 1
    LOG.warning("repair (%s): %s", kind, message)


def repairs() -> dict[str, int]:
    """Repairs done by this process so far, by kind: every one of :data:`REPAIR_KINDS` (0 when
    none), and any other kind counted."""
    with _LOCK:
        return {**dict.fromkeys(REPAIR_KINDS, 0), **_REPAIRS}
