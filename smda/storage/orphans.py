"""Temporary files left by interrupted runs: found and removed.

Every write goes through a temporary sibling that is renamed onto its target
(:mod:`smda.storage.atomic`: ``.<name>.<random>.part``; a model bundle is assembled in a
``.<version>.<random>`` folder, a compiled predictor in a ``tmp…`` folder). A process killed in
the middle (SIGKILL, out of memory, a lost node) leaves them behind. They are never read, but
they fill the disk and one of them may sit in the published products folder.

:func:`sweep_orphans` removes those older than this process (:data:`STARTED`): the caller holds
the writer lock of the folders it sweeps (:mod:`smda.storage.locks`), so no other process is
writing them, and this process's own temporary files are younger. Folders shared between
regions (the raw cache) are swept with an age limit instead (``older_than``).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from smda.storage.integrity import note_repair

__all__ = ["STARTED", "find_orphans", "sweep_orphans"]

LOG = logging.getLogger(__name__)

STARTED = time.time()
"""When this process started using smda's storage (seconds since the epoch)."""
_PART = re.compile(r"^\..+\.part$")
_BUNDLE_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}$")


def _candidates(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for path in root.rglob(".*"):
        part = path.is_file() and _PART.match(path.name)
        bundle = path.is_dir() and _BUNDLE_TMP.match(path.name)
        if part or bundle:
            yield path
    for path in root.rglob("compiled/tmp*"):
        if path.is_dir():
            yield path


def find_orphans(roots: Iterable[Path], *, older_than: float | None = None) -> list[Path]:
    """Temporary files and folders under ``roots`` last modified before ``older_than``
    (seconds since the epoch; default :data:`STARTED`)."""
    limit = STARTED if older_than is None else older_than
    found = []
    for root in roots:
        for path in _candidates(Path(root)):
            try:
                if path.stat().st_mtime < limit:
                    found.append(path)
            except FileNotFoundError:  # removed meanwhile
                continue
    return sorted(set(found))


def sweep_orphans(roots: Iterable[Path], *, older_than: float | None = None) -> list[Path]:
    """Remove :func:`find_orphans`, each logged and counted as a repair; return them."""
    removed = []
    for path in find_orphans(roots, older_than=older_than):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        note_repair("orphan", f"removed {path}, left by an interrupted run")
        removed.append(path)
    if removed:
        LOG.info("removed %d temporary file(s) left by interrupted runs", len(removed))
    return removed
