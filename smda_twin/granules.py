"""The Earthdata replica's granule catalogue and files: which granules exist, and their bytes.

:func:`published` lists the granules of a collection within a day range, :func:`granule_at`
finds the granule behind a data-host URL path, and :class:`GranuleFiles` writes each granule
from the synthetic world in its producer's format on first use (once, atomically, thread-safe)
and caches it on disk, with what CMR says of it (size, time, SHA-256: :meth:`GranuleFiles.info`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from smda_twin.cmr import CRID, DAY, Collection, Granule
from smda_twin.formats import gldas as gldas_format
from smda_twin.formats import smap as smap_format
from smda_twin.scenario import pinned, variant
from smda_twin.smap import SmapDay

__all__ = ["EarthdataWorld", "FileInfo", "GranuleFiles", "granule_at", "published"]

LOG = logging.getLogger(__name__)


class EarthdataWorld(Protocol):
    """What the replica needs from the synthetic world (:class:`smda_twin.world.World`).

    ``smap_l3(day)`` (EASE-Grid 2.0 M36) is optional: without it there is no ``SPL3SMP``.
    """

    def smap_l3e(self, day: date) -> SmapDay: ...

    def gldas_3h(self, time: datetime) -> npt.NDArray[np.float32]: ...


def published(
    collection: Collection, first: date, last: date, *, first_day: date, newest: date
) -> Iterator[Granule]:
    """Granules of ``collection`` whose day is within ``first``…``last``.

    Days before ``first_day`` (the oldest with data) or after ``newest`` (the newest the clock
    has published) are left out; granules come in time order.
    """
    day = max(first, first_day)
    last = min(last, newest)
    while day <= last:
        for start in collection.starts(day):
            yield Granule(collection, start)
        day += DAY


def granule_at(collections: Mapping[str, Collection], path: str) -> Granule | None:
    """The granule whose data-host URL path is ``path`` (None if there is none)."""
    for c in collections.values():
        m = re.fullmatch(c.path_regex, path)
        if m is None:
            continue
        fields = m.groupdict()
        try:
            if fields.get("j"):
                day = date(int(fields["y"]), 1, 1) + timedelta(days=int(fields["j"]) - 1)
            else:
                day = date(int(fields["y"]), int(fields["m"]), int(fields["d"]))
        except (ValueError, OverflowError):
            return None
        candidates = (Granule(c, start) for start in c.starts(day))
        return next((g for g in candidates if g.path == path), None)
    return None


@dataclass(frozen=True)
class FileInfo:
    """What CMR reports of a granule file: size (bytes), mtime (s since 1970), SHA-256 (hex)."""

    size: int
    mtime: float
    sha256: str


class GranuleFiles:
    """Granule files generated from ``world`` and cached under ``workdir``.

    Files are reusable across runs of the same world only: the cache directory is named by a
    hash of the world's ``spec``. A granule of a day a drift scenario changes is kept apart,
    under the scenario's variant (:func:`smda_twin.scenario.variant`), and generated from the
    scenario pinned when its path was chosen: a scenario change never serves a stale file.
    """

    def __init__(self, world: EarthdataWorld, workdir: Path) -> None:
        self.world = world
        spec = repr(getattr(world, "spec", type(world).__name__)).encode()
        self.directory = workdir / "granules" / hashlib.sha256(spec).hexdigest()[:12]
        self._lock = threading.Lock()
        self._granule_locks: dict[str, threading.Lock] = {}
        self._info: dict[Path, tuple[tuple[int, int], FileInfo]] = {}

    def path(self, granule: Granule) -> Path:
        """The granule's file, generated from the world on first use (atomic, once)."""
        world = pinned(self.world)
        tag = variant(world, granule.collection.clock_product, granule.start.date())
        path = self.directory / granule.collection.short_name / tag / granule.name
        if path.exists():
            return path
        with self._lock:
            lock = self._granule_locks.setdefault(str(path), threading.Lock())
        with lock:
            if not path.exists():
                t0 = time.perf_counter()
                _write_granule(world, granule, path)  # the writers are atomic
                LOG.debug("generated %s in %.2f s", path.name, time.perf_counter() - t0)
        return path

    def info(self, granule: Granule) -> FileInfo:
        """Size, modification time and SHA-256 of the granule's file (hashed once per file
        version: a file replaced on disk is hashed again)."""
        path = self.path(granule)
        stat = path.stat()
        version = (stat.st_size, stat.st_mtime_ns)
        cached = self._info.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        info = FileInfo(stat.st_size, stat.st_mtime, digest.hexdigest())
        self._info[path] = (version, info)
        return info


def _write_granule(world: EarthdataWorld, granule: Granule, path: Path) -> None:
    """Write ``granule`` from the world in its producer's format."""
    short, start = granule.collection.short_name, granule.start
    if short == "SPL3SMP_E":
        obs = world.smap_l3e(start.date())
        smap_format.write_spl3smp_e(path, day=obs.day, am=obs.am, pm=obs.pm, crid=CRID)
    elif short == "SPL3SMP":
        obs = getattr(world, "smap_l3")(start.date())  # noqa: B009 - optional in the protocol
        smap_format.write_spl3smp(path, day=obs.day, am=obs.am, pm=obs.pm, crid=CRID)
    else:
        sm = world.gldas_3h(start)  # SoilMoi0_10cm_inst, kg m-2, (600, 1440), -9999 fill
        gldas_format.write_gldas_noah025_3h(path, time=start, fields={"SoilMoi0_10cm_inst": sm})
