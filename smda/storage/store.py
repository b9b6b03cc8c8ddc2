"""Where smda keeps what it fetched and staged: a raw cache, staged days, and ledgers.

Layout under the data directory (``SMDA_DATA_DIR``)::

    raw/<source>/...                                 provider files as downloaded (cache)
    staged/<region>/<source>/<YYYY>/<source>_<YYYYMMDD>.nc   one small file per day on the grid
    staged/<region>/static/<name>.nc                  static fields (ERA5 invariants, land mask)
    ledger/<region>/<source>.json                     what was staged from which files

``<region>`` is ``global`` or a key made from the grid window, so staging different regions
never mixes; ``staged/<region>/region.json`` says which window (:mod:`smda.storage.regions`). The ledger records, per staged day, the source files (name, size, SHA-256, version:
ETag/Last-Modified, ERA5 ``expver``…), the request, whether the data are provisional, and the
history of replacements (an MSWEP NRT revision, ERA5T replaced by final ERA5). Every file —
cache entry, staged day, ledger — is written atomically.

A ledger is saved after every change, one record per line, each line encoded once; inside
:meth:`Ledger.batch` (an ingest run) it is saved at most every :data:`SAVE_INTERVAL` seconds and
at the end, so that staging a long range does not rewrite the whole ledger for every day (a
record lost to a crash only makes the next run stage that day again).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from smda.errors import MalformedFile
from smda.geo.grid import Grid
from smda.storage.atomic import atomic_path, atomic_write_bytes
from smda.storage.integrity import CorruptFile, file_digest, sha256_of
from smda.storage.iolock import HDF5_IO
from smda.storage.locks import Holder, WriterLock, locked_file
from smda.storage.orphans import sweep_orphans
from smda.storage.regions import ensure_region_file, region_key

__all__ = [
    "SAVE_INTERVAL",
    "DayRecord",
    "JsonMap",
    "Ledger",
    "RawFile",
    "Store",
    "region_key",
    "sha256_file",
]

SAVE_INTERVAL = 5.0
"""Seconds between two saves of a ledger inside :meth:`Ledger.batch`."""
RAW_ORPHAN_AGE = 6 * 3600.0
"""Age (s) after which a temporary file in the raw cache is an orphan (another region's fetch
may be writing a younger one)."""


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file."""
    return sha256_of(path)[0]


@dataclass(frozen=True)
class JsonMap:
    """A small ``str → str`` map kept in one JSON file (bookkeeping beside the raw cache).

    A missing or unreadable file reads as empty; every update rewrites the file atomically.
    """

    path: Path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def update(self, items: Mapping[str, str | None]) -> None:
        """Set entries (a ``None`` value removes its key), under the file's lock: concurrent
        updates by other processes are kept."""
        with locked_file(self.path):
            data = self.load()
            for key, value in items.items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


@dataclass(frozen=True)
class RawFile:
    """A provider file in the raw cache, with what identifies its version."""

    path: Path
    name: str
    size: int
    sha256: str
    version: str = ""
    url: str = ""
    provisional: bool = False
    #: for a file holding several days: the day this entry stands for and a digest of its data
    part: str = ""
    part_sha256: str = ""

    @property
    def identity(self) -> tuple[str, str]:
        """What must be equal for two fetches of one day to be the same data."""
        return (self.name, self.part_sha256 or self.sha256)

    def to_dict(self, root: Path) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = (
            str(self.path.relative_to(root)) if self.path.is_relative_to(root) else str(self.path)
        )
        return data


@dataclass
class DayRecord:
    """What the ledger knows about one staged day of one source."""

    day: str
    staged: str
    sha256: str
    files: list[dict[str, Any]]
    provisional: bool
    staged_at: str
    request: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: the provider-world date on which this day was last fetched or checked upstream
    checked_on: str = ""
    #: size in bytes of the staged file (0 in records written before sizes were kept)
    size: int = 0

    @property
    def versions(self) -> dict[str, str]:
        return {f["name"]: f.get("version", "") for f in self.files}


class Ledger:
    """Per-source JSON record of staged days (thread-safe; saved atomically, see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._days: dict[str, DayRecord] = {}
        self._lines: dict[str, str] = {}  # day → its record as saved (encoded once)
        self._batches = 0
        self._dirty = False
        self._saved_at = 0.0
        self._mine: set[str] = set()  # days changed here since the last save
        self._days = self._read()

    def _read(self) -> dict[str, DayRecord]:
        """The records on disk (empty when there is no ledger yet)."""
        try:
            raw = json.loads(self.path.read_text())
            return {k: DayRecord(**v) for k, v in raw["days"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedFile(
                f"ledger {self.path} is unreadable ({exc}); run `smda verify --repair` (it "
                "rebuilds the ledger from the staged files' provenance) or move it away and re-run"
            ) from exc

    def get(self, day: date) -> DayRecord | None:
        with self._lock:
            return self._days.get(day.isoformat())

    def touch(self, day: date, checked_on: date) -> None:
        """Record that ``day`` was checked upstream on ``checked_on`` and found unchanged."""
        with self._lock:
            record = self._days.get(day.isoformat())
            if record is None or record.checked_on == checked_on.isoformat():
                return
            record.checked_on = checked_on.isoformat()
            self._changed(record.day)

    def mark_final(self, day: date, checked_on: date) -> None:
        """The provider confirmed ``day`` is final and unchanged: clear its provisional flag."""
        with self._lock:
            record = self._days.get(day.isoformat())
            if record is None or not record.provisional:
                return
            record.provisional = False
            record.checked_on = checked_on.isoformat()
            record.history = [*record.history, {"finalised_on": checked_on.isoformat()}]
            self._changed(record.day)

    def days(self) -> list[date]:
        with self._lock:
            return sorted(date.fromisoformat(d) for d in self._days)

    def put(self, record: DayRecord) -> None:
        with self._lock:
            old = self._days.get(record.day)
            if old is not None and old.sha256 != record.sha256:
                record.history = [
                    *old.history,
                    {
                        "replaced_at": record.staged_at,
                        "previous_sha256": old.sha256,
                        "previous_files": old.files,
                        "previous_provisional": old.provisional,
                    },
                ]
            elif old is not None:
                record.history = old.history
            self._days[record.day] = record
            self._changed(record.day)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Inside the block, save at most every :data:`SAVE_INTERVAL` s; save at its end."""
        with self._lock:
            self._batches += 1
        try:
            yield
        finally:
            with self._lock:
                self._batches -= 1
                if self._dirty and not self._batches:
                    self._save()

    def refresh(self) -> bool:
        """Take the records other processes saved since this ledger was read (days changed here
        and not saved yet are kept); True when something changed."""
        with self._lock:
            before = dict(self._days)
            self._merge(self._read())
            return self._days != before

    def drop(self, day: date) -> None:
        """Forget ``day`` (its staged file was found corrupt and removed)."""
        with self._lock:
            if self._days.pop(day.isoformat(), None) is not None:
                self._changed(day.isoformat())

    def _changed(self, day: str) -> None:
        """``day``'s record changed (the lock is held): save now, or soon inside a batch."""
        self._lines.pop(day, None)
        self._mine.add(day)
        self._dirty = True
        if self._batches and time.monotonic() - self._saved_at < SAVE_INTERVAL:
            return
        self._save()

    def _save(self) -> None:
        """Merge this process's changes into the ledger on disk and write it, under the file's
        lock: another process's records (a concurrent fetch of other days) are kept."""
        with locked_file(self.path):
            self._merge(self._read())
            self._write()

    def _merge(self, disk: dict[str, DayRecord]) -> None:
        """Take the records of days not changed here from ``disk`` (the lock is held)."""
        for day in disk.keys() | self._days.keys():
            if day in self._mine:
                continue
            theirs = disk.get(day)
            if theirs is None:
                self._days.pop(day, None)
            elif self._days.get(day) != theirs:
                self._days[day] = theirs
            else:
                continue
            self._lines.pop(day, None)
        self._mine = {d for d in self._mine if d in self._days}

    def _write(self) -> None:
        lines = []
        for day in sorted(self._days):
            line = self._lines.get(day)
            if line is None:
                line = self._lines[day] = json.dumps(asdict(self._days[day]))
            lines.append(f"  {json.dumps(day)}: {line}")
        text = '{"days": {\n' + ",\n".join(lines) + "\n}}\n"
        atomic_write_bytes(self.path, text.encode())
        self._dirty = False
        self._mine.clear()
        self._saved_at = time.monotonic()


class Store:
    """The data directory: raw cache, staged days and ledgers for one grid window."""

    def __init__(self, root: Path, grid: Grid, *, lock_timeout: float = 0.0) -> None:
        self.root = Path(root)
        self.grid = grid
        self.region = region_key(grid)
        self.lock_timeout = lock_timeout
        self._ledgers: dict[str, Ledger] = {}
        self._lock = threading.Lock()

    @property
    def locks_dir(self) -> Path:
        """Where the region's writer locks are (:mod:`smda.storage.locks`)."""
        return self.root / "locks" / self.region

    @contextmanager
    def writer(self, *, sweep: bool = True) -> Iterator[Holder]:
        """Hold the writer lock of this store (staged days and ledgers of the region) for the
        block, waiting up to ``lock_timeout`` s for another process; the first hold in this
        process removes temporary files left by interrupted runs (:mod:`smda.storage.orphans`;
        the raw cache, shared with other regions, those older than :data:`RAW_ORPHAN_AGE`).

        Raises
        ------
        RegionBusy
            If another process still writes the store after ``lock_timeout`` seconds.
        """
        lock = WriterLock(
            self.locks_dir / "store.lock",
            f"the store of region {self.region}",
            timeout=self.lock_timeout,
        )
        first = sweep and not lock.held()
        with lock() as holder:
            if first:
                sweep_orphans(self.private_dirs)
                sweep_orphans([self.raw_root], older_than=time.time() - RAW_ORPHAN_AGE)
            ensure_region_file(self.root / "staged" / self.region, self.grid)
            yield holder

    @property
    def private_dirs(self) -> list[Path]:
        """The folders only this region's store writer writes (staged days, ledgers)."""
        return [self.root / "staged" / self.region, self.ledger_dir]

    @property
    def raw_root(self) -> Path:
        """The raw cache, shared by every region."""
        return self.root / "raw"

    def raw_dir(self, source: str) -> Path:
        path = self.root / "raw" / source
        path.mkdir(parents=True, exist_ok=True)
        return path

    def staged_path(self, source: str, day: date) -> Path:
        return (
            self.root / "staged" / self.region / source / f"{day:%Y}" / f"{source}_{day:%Y%m%d}.nc"
        )

    def static_path(self, name: str) -> Path:
        return self.root / "staged" / self.region / "static" / f"{name}.nc"

    @property
    def ledger_dir(self) -> Path:
        """Where the region's ledgers are."""
        return self.root / "ledger" / self.region

    def reopen_ledger(self, source: str) -> Ledger:
        """The ledger of ``source`` read again from disk (after it was moved away or rebuilt)."""
        with self._lock:
            self._ledgers.pop(source, None)
        return self.ledger(source)

    def rebuild_ledger(self, source: str) -> Ledger:
        """Move an unreadable ledger aside (``<name>.corrupt-<time>``) and rebuild it from the
        provenance each staged file carries (``smda_provenance``); unreadable staged files are
        removed (the next fetch stages them again)."""
        path = self.ledger_dir / f"{source}.json"
        if path.exists():
            path.rename(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
        ledger = self.reopen_ledger(source)
        for nc in sorted((self.root / "staged" / self.region / source).glob("*/*.nc")):
            try:
                with HDF5_IO, xr.open_dataset(nc) as ds:
                    prov = json.loads(ds.attrs["smda_provenance"])
            except (OSError, ValueError, KeyError):
                nc.unlink()
                continue
            sha, size = sha256_of(nc)
            mtime = datetime.fromtimestamp(nc.stat().st_mtime, UTC)
            ledger.put(
                DayRecord(
                    day=prov["day"],
                    staged=str(nc.relative_to(self.root)),
                    sha256=sha,
                    files=prov.get("files", []),
                    provisional=bool(prov.get("provisional", False)),
                    staged_at=mtime.isoformat(timespec="seconds"),
                    request=prov.get("request", {}),
                    size=size,
                )
            )
        return ledger

    def ledger(self, source: str) -> Ledger:
        with self._lock:
            if source not in self._ledgers:
                self._ledgers[source] = Ledger(self.ledger_dir / f"{source}.json")
            return self._ledgers[source]

    def staged_days(self, source: str) -> list[date]:
        """Days whose staged file exists and is recorded in the ledger."""
        ledger = self.ledger(source)
        return [d for d in ledger.days() if self.staged_path(source, d).exists()]

    def problem(self, source: str, day: date) -> str | None:
        """What is wrong with the staged file of ``day`` against its ledger record (None when
        it is intact; "not staged" when there is no record or no file). A mismatch is checked
        again against the ledger on disk: another process (or store) may have re-staged it."""
        found = self._problem(source, day)
        if found is not None and self.ledger(source).refresh():
            found = self._problem(source, day)
        return found

    def _problem(self, source: str, day: date) -> str | None:
        record = self.ledger(source).get(day)
        if record is None:
            return "not staged"
        found = file_digest(self.root / record.staged)
        if found is None:
            return "not staged"
        sha, size = found
        if record.size and size != record.size:
            return f"its size is {size} bytes, the ledger recorded {record.size}"
        if sha != record.sha256:
            return "its SHA-256 differs from the ledger's"
        return None

    def intact(self, source: str, day: date) -> bool:
        """Whether ``day`` of ``source`` is staged and matches its ledger record."""
        return self.problem(source, day) is None

    def verified_path(self, source: str, day: date) -> Path:
        """The staged file of ``day``, checked against its ledger record.

        Raises
        ------
        CorruptFile
            If it is staged but does not match the record (truncated, changed).
        FileNotFoundError
            If it is not staged.
        """
        path = self.staged_path(source, day)
        problem = self.problem(source, day)
        if problem == "not staged":
            raise FileNotFoundError(
                f"{source} is not staged for {day} (no {path}); run `smda fetch {source}`"
            )
        if problem is not None:
            raise CorruptFile(
                f"staged {source} of {day} ({path}) is corrupt: {problem}. The next `smda run`, "
                f"`smda fetch {source}` or `smda verify --repair` re-stages it",
                path,
            )
        return path

    def discard(self, source: str, day: date) -> None:
        """Remove a corrupt staged day (file and record): the next fetch stages it again."""
        self.ledger(source).drop(day)
        self.staged_path(source, day).unlink(missing_ok=True)

    def write_staged(
        self,
        source: str,
        day: date,
        data: xr.Dataset,
        files: list[RawFile],
        *,
        request: dict[str, Any] | None = None,
        checked_on: date | None = None,
    ) -> DayRecord:
        """Write one staged day atomically with its provenance, and record it in the ledger."""
        provisional = any(f.provisional for f in files)
        file_dicts = [f.to_dict(self.root) for f in files]
        provenance = {
            "source": source,
            "day": day.isoformat(),
            "files": file_dicts,
            "provisional": provisional,
            "request": request or {},
        }
        data = data.assign_attrs(
            smda_source=source,
            smda_day=day.isoformat(),
            smda_provisional=int(provisional),
            smda_provenance=json.dumps(provenance, sort_keys=True),
        )
        target = self.staged_path(source, day)
        encoding = {name: {"zlib": True, "complevel": 1} for name in data.data_vars}
        # the lock is released before atomic_path syncs and moves the file
        with atomic_path(target) as tmp, HDF5_IO:
            data.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        sha, size = sha256_of(target)
        record = DayRecord(
            day=day.isoformat(),
            staged=str(target.relative_to(self.root)),
            sha256=sha,
            size=size,
            files=file_dicts,
            provisional=provisional,
            staged_at=datetime.now(UTC).isoformat(timespec="seconds"),
            request=request or {},
            checked_on=checked_on.isoformat() if checked_on else "",
        )
        self.ledger(source).put(record)
        return record

    def open_staged(self, source: str, day: date) -> xr.Dataset:
        """The staged day, checked against its ledger record (:meth:`verified_path`)."""
        path = self.verified_path(source, day)
        with HDF5_IO, xr.open_dataset(path) as ds:
            return ds.load()

    def iter_records(self, source: str) -> Iterator[tuple[date, DayRecord]]:
        ledger = self.ledger(source)
        for day in ledger.days():
            record = ledger.get(day)
            if record is not None:
                yield day, record
