"""ISMN in-situ soil moisture: an ISMN download (folder or zip) → daily surface series per sensor.

Parsing uses the ``ismn`` package's file handler (:class:`ismn.filehandlers.DataFile`), which
recognises the two current ISMN formats from the file content — "header+values" (one header
line, then ``date time value ismn_flag [provider_flag]``) and "CEOP-separate" (15 fields per
line) — and reads them with pandas (CR, CRLF or LF line endings; records without the provider
flag; sensor names with blanks in the 2025 header; STRUCTURE.md §2).

Why not ``ISMN_Interface``: it was tried on every real sample. On first use it collects metadata
for the whole archive and caches it as ``python_metadata/<name>.csv`` beside the data (or in
``meta_path``) keyed by the archive *name* only (a new download with the same name reuses stale
metadata); it prints to stdout and draws progress bars on stderr (repurpose's tqdm, not
switchable); it needs the ``<Network>/<Station>/`` folder layout (the ``format_*`` samples,
``<Network>/<file>``, fail with a TypeError); and it skips unreadable files after logging them,
so a malformed file would vanish silently. ``DataFile`` reads the same formats with the same
code, one file at a time, raising on a bad file, without cache writes. Files in a zip are
extracted one at a time into a temporary directory under ``workdir`` and removed at once.

Old CEOP format: ISMN's pre-2011 "CEOP" files hold soil temperature and soil moisture of every
depth in one file (``d t d t CSE Net Station lat lon elev - depth Ts flag SM flag``); the
``ismn`` package no longer reads them (it raises on them), so a small parser here does: one
sensor per depth, sensor name ``""`` (the format has none), station and network from the lines.

Selection and aggregation:

- variable ``soil_moisture`` only; depth ``0 ≤ depth_from`` and ``depth_to ≤ max_depth +
  depth_tolerance``. The tolerance (1 mm) keeps SCAN's 2-inch sensors, whose depth is 0.05 m in
  older files' headers but **0.0508 m** in 2025 headers and in file names (the CEOP-separate
  reader takes the file name's). Cosmic-ray (COSMOS) probes measure 0–0.17/0.21 m and are
  excluded at the default ``max_depth=0.05``; pass ``max_depth=0.25`` to include them.
- records whose ISMN quality flag is in ``good_flags`` (exact match of the whole flag string;
  default ``("G",)``) and whose value is finite. ``None`` keeps every record. Older archives
  (the 2007–2013 samples) never say ``G``: records that are not flagged C/D are ``U``
  (unchecked), so with ``good_flags=("G",)`` their sensors come back with **empty** series —
  pass ``("G", "U")`` to accept unchecked data. The provider flag (``M``, ``V``, ``0``, …) is
  ignored.
- daily means over UTC days (ISMN timestamps are UTC), kept where at least ``min_count``
  records were averaged.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from ismn.base import IsmnRoot
from ismn.filehandlers import DataFile

from smda.ingest.readers import malformed

__all__ = ["IsmnStation", "read_ismn"]

LOG = logging.getLogger(__name__)

_VARIABLE = "soil_moisture"
_CEOP_FIELDS = 16
# "<CSE>_<Net>_<Station>_<var>_<from>_<to>_…": files of other variables (ts, p, ta, …) are skipped
_NAMED_VARIABLE = re.compile(r"_([A-Za-z]+)_-?\d+\.\d{6}_-?\d+\.\d{6}_")
_MISSING = -999.0


@dataclass(frozen=True, eq=False)
class IsmnStation:
    """One surface soil-moisture sensor of an ISMN station, with its daily series.

    Attributes
    ----------
    network, station:
        Names as ISMN's folders and file names spell them (the header may differ, e.g.
        ``SilverSword`` vs ``Silver_Sword``).
    lat, lon, elevation:
        Degrees north, degrees east, metres above sea level.
    depth_from, depth_to:
        Sensor depth range (m below the surface).
    sensor:
        Instrument name from the file name (``""`` for the old CEOP format).
    file:
        The data file, relative to the download (``Network/Station/….stm``).
    hourly:
        The kept records: soil moisture (m3 m-3, float64) indexed by UTC time (naive
        DatetimeIndex), flags filtered by ``good_flags``.
    soil_moisture:
        Daily means (m3 m-3) indexed by UTC day (midnight), days with ≥ ``min_count`` records.
    n_values:
        Records averaged into each daily mean (same index as ``soil_moisture``).
    """

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    sensor: str
    file: str
    hourly: pd.Series
    soil_moisture: pd.Series
    n_values: pd.Series


@dataclass(frozen=True)
class _Selection:
    max_depth: float
    depth_tolerance: float
    good_flags: frozenset[str] | None
    min_count: int

    def depth_ok(self, depth_from: float, depth_to: float) -> bool:
        tol = self.depth_tolerance
        return depth_from >= -tol and depth_to <= self.max_depth + tol


def _files(source: Path, root: IsmnRoot) -> list[str]:
    """The ``.stm`` files of the download, minus those whose name says another variable."""
    if root.zip is not None:
        names = [n for n in root.zip.namelist() if n.lower().endswith(".stm")]
    else:
        names = [
            p.relative_to(source).as_posix()
            for p in source.rglob("*")
            if p.suffix.lower() == ".stm"
        ]
    keep = []
    for name in names:
        match = _NAMED_VARIABLE.search(PurePosixPath(name).name)
        if match is None or match.group(1) == "sm":
            keep.append(name)
    return sorted(keep)


def _station(meta: dict[str, Any], frame: pd.DataFrame, file: str, sel: _Selection) -> IsmnStation:
    """Filter flags and aggregate ``frame`` (value column ``soil_moisture``, flag column)."""
    values = pd.to_numeric(frame[_VARIABLE], errors="coerce")
    keep = values.notna() & (values > _MISSING)
    if sel.good_flags is not None:
        flags = frame[_VARIABLE + "_flag"].astype("string").str.strip()
        keep &= flags.isin(sel.good_flags).fillna(False).astype(bool)
    hourly = values[keep].astype(np.float64).sort_index()
    hourly.index = pd.DatetimeIndex(hourly.index, name="time").as_unit("ns")
    hourly.name = _VARIABLE
    days = hourly.resample("1D")
    mean, count = days.mean(), days.count()
    enough = count >= sel.min_count
    daily = mean[enough].rename(_VARIABLE)
    daily.index.name = "day"
    return IsmnStation(
        **meta,
        file=file,
        hourly=hourly,
        soil_moisture=daily,
        n_values=count[enough].astype(np.int64).rename("n_values"),
    )


def _read_text(source: Path, root: IsmnRoot, file: str) -> str:
    raw: bytes = root.zip.read(file) if root.zip is not None else (source / file).read_bytes()
    return raw.decode("latin-1")


def _ceop_lines(text: str) -> list[list[str]] | None:
    """The lines of an old CEOP all-variables file, or None if ``text`` is not one."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or any(len(f) != _CEOP_FIELDS or f[10] != "-" for f in lines):
        return None
    return lines


def _read_ceop(lines: list[list[str]], file: str, label: str, sel: _Selection) -> list[IsmnStation]:
    """Soil moisture of each selected depth of an old CEOP file (module docstring)."""
    try:
        table = pd.DataFrame(
            {
                "time": pd.to_datetime([f"{f[0]} {f[1]}" for f in lines], format="%Y/%m/%d %H:%M"),
                "depth": [float(f[11]) for f in lines],
                _VARIABLE: [float(f[14]) for f in lines],
                _VARIABLE + "_flag": [f[15] for f in lines],
            }
        ).set_index("time")
        first = lines[0]
        lat, lon, elevation = float(first[7]), float(first[8]), float(first[9])
    except ValueError as exc:
        raise malformed(label, f"old CEOP format with an unreadable field: {exc}") from exc
    out = []
    for depth, frame in table.groupby("depth", sort=True):
        if not sel.depth_ok(float(depth), float(depth)):
            continue
        meta = {
            "network": first[5],
            "station": first[6],
            "lat": lat,
            "lon": lon,
            "elevation": elevation,
            "depth_from": float(depth),
            "depth_to": float(depth),
            "sensor": "",
        }
        out.append(_station(meta, frame, file, sel))
    return out


def _read_file(
    source: Path, root: IsmnRoot, file: str, temp: Path, sel: _Selection
) -> list[IsmnStation]:
    label = f"{source}!{file}" if root.zip is not None else os.fspath(source / file)
    subpath = PurePosixPath(file) if root.zip is not None else Path(file)
    # The ismn package raises whatever the bad content provokes (IndexError, ValueError,
    # OSError, ...); every such error becomes a MalformedFile naming the file.
    try:
        handler = DataFile(root, subpath, temp_root=temp)
    except Exception as exc:
        lines = _ceop_lines(_read_text(source, root, file))
        if lines is None:
            raise malformed(
                label,
                "not an ISMN data file in a known format (header+values, CEOP-separate or old "
                f"CEOP): {type(exc).__name__}: {exc}",
            ) from exc
        return _read_ceop(lines, file, label, sel)
    meta = handler.metadata
    depth = meta["instrument"].depth
    if meta["variable"].val != _VARIABLE or not sel.depth_ok(depth.start, depth.end):
        return []
    try:
        with warnings.catch_warnings():
            # ismn 1.5 calls set_index(inplace=True), deprecated in pandas 3.1: not ours to fix
            warnings.filterwarnings("ignore", message="The inplace keyword", module="ismn")
            frame = handler.read_data()
    except Exception as exc:  # as above: pandas/ismn errors on a damaged body
        raise malformed(label, f"ISMN {handler.file_type} data cannot be parsed: {exc}") from exc
    if _VARIABLE not in frame.columns or _VARIABLE + "_flag" not in frame.columns:
        raise malformed(label, f"no {_VARIABLE} columns after parsing (got {list(frame.columns)})")
    station = {
        "network": str(meta["network"].val),
        "station": str(meta["station"].val),
        "lat": float(meta["latitude"].val),
        "lon": float(meta["longitude"].val),
        "elevation": float(meta["elevation"].val),
        "depth_from": float(depth.start),
        "depth_to": float(depth.end),
        "sensor": str(meta["instrument"].val),
    }
    return [_station(station, frame, file, sel)]


def read_ismn(
    source: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str],
    max_depth: float = 0.05,
    good_flags: Collection[str] | None = ("G",),
    min_count: int = 12,
    depth_tolerance: float = 0.001,
) -> list[IsmnStation]:
    """Read the surface soil-moisture sensors of an ISMN download as daily series.

    Parameters
    ----------
    source:
        The download root: a folder holding ``<Network>/[<Station>/]*.stm``, or the zip ISMN
        delivers. The network name is the first folder (the ``ismn`` package's convention), so
        pass the root, not a folder above it. Every ISMN format is read (module docstring);
        ``Metadata.xml``, ``*.csv`` and text files are ignored.
    workdir:
        A directory the caller owns (created if missing): files of a zip are extracted one at a
        time into a temporary subdirectory that is removed after reading. Nothing else is
        written. Files named for another variable (``_ts_``, ``_p_``, …) are not opened.
    max_depth:
        Deepest ``depth_to`` (m) of a sensor to read; 0.05 = surface sensors only.
    good_flags:
        ISMN quality flags to keep (``"G"`` good; ``"U"`` unchecked in old archives; ``"D01"``…
        dubious; ``"C01"``… out of range); ``None`` keeps every record.
    min_count:
        Fewest kept records a UTC day needs for its mean (ISMN data are hourly: 12 = half a day).
    depth_tolerance:
        Slack (m) on both depth limits (SCAN's 0.0508 m sensors count as 0.05 m).

    Returns
    -------
    list[IsmnStation]
        One entry per selected sensor, sorted by network, station, depth and sensor — also for
        sensors without kept records (empty series).

    Raises
    ------
    MalformedFile
        ``source`` is neither a folder nor a zip archive, holds no ``.stm`` file, or one of its
        data files is in no known ISMN format or cannot be parsed.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be ≥ 1, got {min_count}")
    path = Path(source)
    if not (path.is_dir() or (path.is_file() and zipfile.is_zipfile(path))):
        raise malformed(path, "not an ISMN download: neither a folder nor a (complete) zip archive")
    sel = _Selection(
        max_depth=max_depth,
        depth_tolerance=depth_tolerance,
        good_flags=None if good_flags is None else frozenset(good_flags),
        min_count=min_count,
    )
    temp = Path(workdir)
    temp.mkdir(parents=True, exist_ok=True)
    try:
        root = IsmnRoot(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise malformed(path, f"cannot be opened as an ISMN download: {exc}") from exc
    try:
        files = _files(path, root)
        if not files:
            raise malformed(path, "no ISMN data files (*.stm) in this download")
        stations = [s for file in files for s in _read_file(path, root, file, temp, sel)]
    except zipfile.BadZipFile as exc:
        raise malformed(path, f"corrupt zip archive: {exc}") from exc
    finally:
        root.close()
    empty = sum(s.hourly.empty for s in stations)
    if empty:
        LOG.info(
            "%s: %d of %d sensors have no records with flags %s",
            path,
            empty,
            len(stations),
            sorted(sel.good_flags) if sel.good_flags is not None else "any",
        )
    return sorted(
        stations, key=lambda s: (s.network, s.station, s.depth_from, s.depth_to, s.sensor)
    )
