"""Where smda keeps what it fetched and staged: a raw cache, staged days, and ledgers.

Layout under the data directory (``SMDA_DATA_DIR``)::

    raw/<source>/...                                 provider files as downloaded (cache)
    staged/<region>/<source>/<YYYY>/<source>_<YYYYMMDD>.nc   one small file per day on the grid
    staged/<region>/static/<name>.nc                  static fields (ERA5 invariants, land mask)
    ledger/<region>/<source>.json                     what was staged from which files

``<region>`` is ``global`` or a key made from the grid window, so staging different regions
never mixes. The ledger records, per staged day, the source files (name, size, SHA-256, version:
ETag/Last-Modified, ERA5 ``expver``…), the request, whether the data are provisional, and the
history of replacements (an MSWEP NRT revision, ERA5T replaced by final ERA5). Every file —
cache entry, staged day, ledger — is written atomically.

A ledger is saved after every change, one record per line, each line encoded once; inside
:meth:`Ledger.batch` (an ingest run) it is saved at most every :data:`SAVE_INTERVAL` seconds and
at the end, so that staging a long range does not rewrite the whole ledger for every day (a
record lost to a crash only makes the next run stage that day again).
"""

from __future__ import annotations

import hashlib
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
from smda.storage.iolock import HDF5_IO

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


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def region_key(grid: Grid) -> str:
    """Folder name of a grid window: ``global`` or ``r<res>_<row0>_<col0>_<nrows>x<ncols>``."""
    if grid.is_global:
        return "global"
    return f"r{grid.res:g}_{grid.row0}_{grid.col0}_{grid.nrows}x{grid.ncols}"


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
        """Set entries (a ``None`` value removes its key)."""
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
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                self._days = {k: DayRecord(**v) for k, v in raw["days"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise MalformedFile(
                    f"ledger {path} is unreadable ({exc}); move it away and re-run: the staged files "
                    "are re-validated and re-fetched as needed"
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

    def _changed(self, day: str) -> None:
        """``day``'s record changed (the lock is held): save now, or soon inside a batch."""
        self._lines.pop(day, None)
        self._dirty = True
        if self._batches and time.monotonic() - self._saved_at < SAVE_INTERVAL:
            return
        self._save()

    def _save(self) -> None:
        lines = []
        for day in sorted(self._days):
            line = self._lines.get(day)
            if line is None:
                line = self._lines[day] = json.dumps(asdict(self._days[day]))
            lines.append(f"  {json.dumps(day)}: {line}")
        text = '{"days": {\n' + ",\n".join(lines) + "\n}}\n"
        atomic_write_bytes(self.path, text.encode())
        self._dirty = False
        self._saved_at = time.monotonic()


class Store:
    """The data directory: raw cache, staged days and ledgers for one grid window."""

    def __init__(self, root: Path, grid: Grid) -> None:
        self.root = Path(root)
        self.grid = grid
        self.region = region_key(grid)
        self._ledgers: dict[str, Ledger] = {}
        self._lock = threading.Lock()

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

    def ledger(self, source: str) -> Ledger:
        with self._lock:
            if source not in self._ledgers:
                self._ledgers[source] = Ledger(
                    self.root / "ledger" / self.region / f"{source}.json"
                )
            return self._ledgers[source]

    def staged_days(self, source: str) -> list[date]:
        """Days whose staged file exists and is recorded in the ledger."""
        ledger = self.ledger(source)
        return [d for d in ledger.days() if self.staged_path(source, d).exists()]

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
        record = DayRecord(
            day=day.isoformat(),
            staged=str(target.relative_to(self.root)),
            sha256=sha256_file(target),
            files=file_dicts,
            provisional=provisional,
            staged_at=datetime.now(UTC).isoformat(timespec="seconds"),
            request=request or {},
            checked_on=checked_on.isoformat() if checked_on else "",
        )
        self.ledger(source).put(record)
        return record

    def open_staged(self, source: str, day: date) -> xr.Dataset:
        path = self.staged_path(source, day)
        if not path.exists():
            raise FileNotFoundError(
                f"{source} is not staged for {day} (no {path}); run `smda fetch {source}`"
            )
        with HDF5_IO, xr.open_dataset(path) as ds:
            return ds.load()

    def iter_records(self, source: str) -> Iterator[tuple[date, DayRecord]]:
        ledger = self.ledger(source)
        for day in ledger.days():
            record = ledger.get(day)
            if record is not None:
                yield day, record
