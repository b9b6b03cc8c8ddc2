"""Locks between processes: one writer per region, and safe read-modify-write of shared files.

Two kinds, both advisory ``flock(2)`` locks on small files of the data directory. The kernel
releases them when their process dies — a SIGKILL, an out-of-memory kill — so there is never a
stale lock to clean up by hand.

:class:`WriterLock`
    The *writer* of a part of a region's data: its store (staged days and ledgers,
    ``locks/<region>/store.lock``) or its chain (state chain and published products,
    ``locks/<region>/chain.lock``). Held for a whole fetch or backfill. Re-entrant within a
    process (its threads work for the same run); a second process waits up to a timeout, then
    gets :class:`RegionBusy`, whose message names the holder (pid, host, command, since: written
    into the lock file by the holder) and whose exit code is :data:`EXIT_BUSY`.
:func:`locked_file`
    A short exclusive lock around one read-modify-write of a shared JSON file (a ledger, the
    CDS job map, the STAC collection), taken on the file's folder and held for milliseconds;
    threads of one process are ordered by a thread lock first. The raw cache is shared by every region, so its
    bookkeeping needs this even under the writer locks.

What holds where: both kinds work for processes on one machine (and on a POSIX file system
that implements ``flock`` across clients, which NFS does not reliably). On object storage
(``SMDA_STATE_URL``/``SMDA_PRODUCTS_URL`` = ``s3://…``) the locks still guard the run's local
data directory, but two machines writing one prefix are not detected: one writer per prefix is
the operator's job (the Prefect deployments' concurrency limit of one run per region does it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smda.errors import SmdaError

__all__ = ["EXIT_BUSY", "Holder", "RegionBusy", "WriterLock", "locked_file"]

LOG = logging.getLogger(__name__)

EXIT_BUSY = 73
"""Exit code of a run that gave up waiting for another writer of its region (``sysexits.h``'s
``EX_CANTCREAT``: it could not write). Distinct from 75 (waiting for a provider) and 1."""
POLL = 0.2
"""Seconds between two attempts to take a busy lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a writer lock (as its holder wrote it into the lock file)."""

    pid: int
    host: str
    command: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since} ({self.command})"

    @classmethod
    def me(cls, command: str | None = None) -> Holder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=(command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))[:300],
            since=datetime.now(UTC).isoformat(timespec="seconds"),
        )


class RegionBusy(SmdaError):
    """Another process is writing this part of the region; the message names it.

    Attributes
    ----------
    holder:
        The other writer, or None when it could not be read.
    exit_code:
        :data:`EXIT_BUSY`.
    """

    exit_code = EXIT_BUSY

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in the lock file ``path`` (None when free or unreadable)."""
    try:
        data = json.loads(path.read_text() or "null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


@dataclass
class _Held:
    fd: int
    count: int
    holder: Holder


_HELD: dict[str, _Held] = {}
_GATES: dict[str, threading.RLock] = {}
_GATES_LOCK = threading.Lock()


def _gate(key: str) -> threading.RLock:
    """The thread lock of one lock file (created on first use)."""
    with _GATES_LOCK:
        return _GATES.setdefault(key, threading.RLock())


class WriterLock:
    """The writer lock of one part of one region (module docstring).

    Parameters
    ----------
    path:
        The lock file (created when needed).
    what:
        What it guards, for messages (``"the store of r0.25_…"``).
    timeout:
        Seconds to wait for another writer before :class:`RegionBusy` (0: do not wait).
    """

    def __init__(self, path: Path | str, what: str, *, timeout: float) -> None:
        self.path = Path(path)
        self.what = what
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"WriterLock({str(self.path)!r})"

    def held(self) -> bool:
        """Whether this process holds the lock."""
        with _gate(str(self.path)):
            return str(self.path) in _HELD

    def holder(self) -> Holder | None:
        """Who holds the lock now (None when nobody does)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return read_holder(self.path)
                raise
            return None
        finally:
            os.close(fd)  # closing releases a shared lock taken just to look

    @contextlib.contextmanager
    def __call__(self, command: str | None = None) -> Iterator[Holder]:
        """Hold the lock for the block (re-entrant within the process).

        Raises
        ------
        RegionBusy
            If another process still holds it after ``timeout`` seconds.
        """
        key = str(self.path)
        with _gate(key):  # threads of this process share the lock: one of them takes it
            held = _HELD.get(key)
            if held is None:
                held = _HELD[key] = self._acquire(Holder.me(command))
            else:
                held.count += 1
        try:
            yield held.holder
        finally:
            with _gate(key):
                held.count -= 1
                if held.count == 0:
                    del _HELD[key]
                    os.ftruncate(held.fd, 0)
                    os.close(held.fd)  # releases the flock

    def _acquire(self, me: Holder) -> _Held:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            other = read_holder(self.path)
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RegionBusy(self._busy_message(other), other)
            if not told:
                LOG.info(
                    "waiting up to %.0f s for the other writer of %s: %s",
                    self.timeout,
                    self.what,
                    other.describe() if other else "unknown holder",
                )
                told = True
            time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
        return _Held(fd, 1, me)

    def _busy_message(self, other: Holder | None) -> str:
        who = other.describe() if other else "another process (holder unknown)"
        return (
            f"{self.what} is being written by {who}; waited {self.timeout:.0f} s. One writer per "
            "region: let that run finish (or stop it) and run again — the days it did are kept "
            f"and skipped (lock file {self.path}; raise SMDA_LOCK_TIMEOUT to wait longer)"
        )


_DIR_DEPTH: dict[str, int] = {}


@contextlib.contextmanager
def locked_file(path: Path | str) -> Iterator[None]:
    """Hold an exclusive lock for one read-modify-write of ``path`` (module docstring).

    The lock is taken on ``path``'s folder (``flock`` works on a directory; no lock file is
    left beside the data): files of one folder share it, held for milliseconds. Re-entrant
    within a thread.
    """
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    with _gate(f"dir:{key}"):  # one thread of this process at a time, then other processes
        depth = _DIR_DEPTH.get(key, 0)
        if depth:
            _DIR_DEPTH[key] = depth + 1
            try:
                yield
            finally:
                _DIR_DEPTH[key] = depth
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _DIR_DEPTH[key] = 1
            yield
        finally:
            _DIR_DEPTH.pop(key, None)
            os.close(fd)


def holders(locks_dir: Path) -> dict[str, Any]:
    """The held writer locks under ``locks_dir`` (``<region>/<part>`` → holder), for status."""
    out: dict[str, Any] = {}
    for path in sorted(Path(locks_dir).glob("*/*.lock")):
        holder = WriterLock(path, path.stem, timeout=0).holder()
        if holder is not None:
            out[f"{path.parent.name}/{path.stem}"] = holder
    return out
