"""The state chain: the analysis of every day of one region, versioned, under an fsspec URL.

The analysis of day D is the state from which D+1 is forecast. Each day is one netCDF4 file
and a JSON sidecar::

    <url>/YYYY/state_YYYYMMDD.nc     analysis, forecast, innovations, uncertainty (float32,
                                     m3 m-3, NaN over sea), flags (uint8), obs_count (uint16),
                                     (time, lat, lon) with one CF ``time`` (days since
                                     1970-01-01), deflate-compressed; the provenance as the
                                     global attribute ``smda_provenance`` (JSON)
    <url>/YYYY/state_YYYYMMDD.json   the commit marker: provenance, SHA-256 and size of the .nc

The ``time`` axis makes the files of a period one cube in one line:
``xr.open_mfdataset("<data_dir>/state/<region>/*/state_*.nc")``; :meth:`StateChain.read` returns
one day's fields as (lat, lon).

``<url>`` is any fsspec URL (a local path by default, e.g. ``<data_dir>/state/<region_key>``;
``memory://``, ``s3://``...). Provenance is the caller's dict (model version, input versions
such as ERA5 vs ERA5T, provisional/final, code version); it must be JSON-serialisable (dates
are written as ISO strings).

Writes are atomic and committed by the sidecar: the netCDF is written to a temporary sibling
and renamed (locally) or uploaded to a temporary key and moved (other filesystems), and only
then is the sidecar written, the same way. A day "exists" only when its sidecar does, so a
crash at any point leaves either the previous state of the day or none, never a partial one.
Rewriting a day first removes its sidecar. The same result and provenance always give
byte-identical files (netCDF-C writes no timestamps; nothing random goes into a file).

One writer per chain: readers may run concurrently with a writer. The writer lock of the region's
chain (:mod:`smda.storage.locks`) is taken by the operations that write it
(:func:`smda.ops.days.run_day`, :func:`smda.ops.days.backfill_days`).

Each day's provenance names the state it was stepped from (``state_before``: the SHA-256 of the
D−1 file, or None for a cold start), so the chain is a hash chain: a day stepped from another
version of its D−1 (two writers, a repair that changed bytes) no longer matches, is recomputed
by the next backfill, and ``smda verify`` reports it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import xarray as xr
from fsspec.implementations.local import LocalFileSystem

from smda.errors import MalformedFile, SmdaError
from smda.science.flags import FLAGS
from smda.storage.atomic import atomic_path, atomic_write_bytes
from smda.storage.integrity import sha256_of
from smda.storage.iolock import HDF5_IO
from smda.storage.objects import put_atomically

if TYPE_CHECKING:  # the chain stores results; it does not need the model to do so
    from smda.science.cycle import CycleResult

__all__ = [
    "EPOCH",
    "STATE_VARIABLES",
    "TIME_ATTRS",
    "StateChain",
    "StateMissing",
    "canonical_provenance",
]

log = logging.getLogger(__name__)

STATE_VARIABLES = ("analysis", "forecast", "innovations", "uncertainty", "flags", "obs_count")
"""Variables of a state file, all (lat, lon)."""
SIDECAR_FORMAT = 1
"""Version of the sidecar layout."""
_SIDECAR = re.compile(r"state_(\d{8})\.json$")
_FLOAT = {"zlib": True, "complevel": 1, "shuffle": True, "_FillValue": np.float32(np.nan)}
_INT = {"zlib": True, "complevel": 1, "shuffle": True, "_FillValue": None}
_ATTRS: dict[str, dict[str, Any]] = {
    "analysis": {"units": "m3 m-3", "long_name": "surface soil moisture analysis SM_a (0-5 cm)"},
    "forecast": {"units": "m3 m-3", "long_name": "surface soil moisture forecast SM_f (0-5 cm)"},
    "innovations": {"units": "m3 m-3", "long_name": "innovations SMAP* - SM_f where assimilated"},
    "uncertainty": {"units": "m3 m-3", "long_name": "error standard deviation of the analysis"},
    "flags": {
        "long_name": "cycle bit flags",
        "flag_masks": np.array([f.mask for f in FLAGS], dtype=np.uint8),
        "flag_meanings": " ".join(f.name for f in FLAGS),
    },
    "obs_count": {"units": "1", "long_name": "number of SMAP retrievals in the daily mean"},
}
_DTYPES = {"flags": np.uint8, "obs_count": np.uint16}
EPOCH = date(1970, 1, 1)
"""Origin of the ``time`` coordinate (days since, CF)."""
TIME_ATTRS = {
    "units": "days since 1970-01-01",
    "calendar": "standard",
    "standard_name": "time",
    "long_name": "day of the analysis (00:00 UTC)",
    "axis": "T",
}
"""CF attributes of the ``time`` coordinate (state files and exported cubes)."""


class StateMissing(SmdaError, FileNotFoundError):
    """The chain has no state for the requested day: backfill the chain up to that day."""


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"provenance value {value!r} ({type(value).__name__}) is not JSON-serialisable")


def canonical_provenance(provenance: Mapping[str, Any]) -> str:
    """Provenance as canonical JSON (sorted keys, no whitespace): equal dicts, equal bytes.

    Raises
    ------
    TypeError
        If a value is not JSON-serialisable (dates and paths become strings).
    """
    return json.dumps(
        dict(provenance), sort_keys=True, separators=(",", ":"), default=_json_default
    )


def _dataset(result: CycleResult, uncertainty: xr.DataArray, provenance: str) -> xr.Dataset:
    """The state file's content; every field must be on the analysis grid."""
    like = result.analysis.transpose("lat", "lon")
    fields = {
        "analysis": result.analysis,
        "forecast": result.forecast,
        "innovations": result.innovations,
        "uncertainty": uncertainty,
        "flags": result.flags,
        "obs_count": result.obs_count,
    }
    data_vars = {}
    for name, given in fields.items():
        field = given.transpose("lat", "lon")
        if field.shape != like.shape or not (
            np.array_equal(field["lat"].values, like["lat"].values)
            and np.array_equal(field["lon"].values, like["lon"].values)
        ):
            raise ValueError(f"{name} of {result.day} is not on the analysis grid {like.shape}")
        values = np.asarray(field.values).astype(_DTYPES.get(name, np.float32))
        data_vars[name] = (("time", "lat", "lon"), values[np.newaxis], _ATTRS[name])
    coords = {
        "time": ("time", np.array([(result.day - EPOCH).days], dtype=np.int32), TIME_ATTRS),
        "lat": ("lat", like["lat"].values, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", like["lon"].values, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    attrs = {
        "Conventions": "CF-1.8",
        "title": "smda soil moisture state (analysis of the day)",
        "smda_day": result.day.isoformat(),
        "smda_forecast_only": int(result.forecast_only),
        "smda_provenance": provenance,
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    enc = {str(name): dict(_INT if name in _DTYPES else _FLOAT) for name in ds.data_vars}
    enc.update({name: {"_FillValue": None} for name in ("time", "lat", "lon")})
    return enc


class StateChain:
    """The analysis chain of one region under an fsspec URL (see the module docstring).

    Parameters
    ----------
    url:
        Folder of the chain: a local path or any fsspec URL (``memory://chain``, ``s3://...``).
    """

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        fs, root = fsspec.core.url_to_fs(self.url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = str(root).rstrip("/")
        self._local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"StateChain({self.url!r})"

    @property
    def is_local(self) -> bool:
        """Whether the chain is a local folder (:attr:`root`)."""
        return self._local

    # -- layout ---------------------------------------------------------------------------------
    def _key(self, day: date, suffix: str) -> str:
        return f"{self.root}/{day:%Y}/state_{day:%Y%m%d}.{suffix}"

    def location(self, day: date) -> str:
        """Where the state file of ``day`` is (a local path, or a URL with its protocol)."""
        key = self._key(day, "nc")
        return key if self._local else str(self.fs.unstrip_protocol(key))

    # -- writing --------------------------------------------------------------------------------
    def write(
        self,
        result: CycleResult,
        *,
        uncertainty: xr.DataArray,
        provenance: Mapping[str, Any],
    ) -> str:
        """Persist the analysis of ``result.day`` with its provenance; return its location.

        Parameters
        ----------
        result:
            The day's cycle result (lat, lon fields on one grid).
        uncertainty:
            Error SD of the analysis (m3 m-3), (lat, lon) on the same grid
            (:func:`smda.science.uncertainty.analysis_uncertainty`).
        provenance:
            JSON-serialisable description of what made the day (model version, input versions,
            provisional/final, code version).

        Raises
        ------
        ValueError
            If a field is not on the analysis grid.
        TypeError
            If the provenance is not JSON-serialisable.
        """
        day = result.day
        text = canonical_provenance(provenance)
        ds = _dataset(result, uncertainty, text)
        self._remove(self._key(day, "json"))  # the day stops existing until committed again
        with (
            tempfile.TemporaryDirectory(prefix="smda-state-") as tmpdir,
            self._staging(self._key(day, "nc"), Path(tmpdir)) as tmp,
        ):
            with HDF5_IO:
                ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(ds))
            sha, size = sha256_of(tmp)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "day": day.isoformat(),
            "file": f"state_{day:%Y%m%d}.nc",
            "sha256": sha,
            "size": size,
            "provenance": json.loads(text),
        }
        self._put_bytes(self._key(day, "json"), json.dumps(sidecar, indent=1, sort_keys=True))
        log.info("state of %s written to %s", day, self.location(day))
        return self.location(day)

    @contextlib.contextmanager
    def _staging(self, key: str, tmpdir: Path) -> Iterator[Path]:
        """Yield a local path to write; on success it becomes ``key`` atomically."""
        if self._local:
            with atomic_path(key) as tmp:
                yield tmp
            return
        local = tmpdir / Path(key).name
        yield local
        self._publish_key(key, lambda part: self.fs.put_file(str(local), part))

    def _put_bytes(self, key: str, text: str) -> None:
        data = text.encode()
        if self._local:
            atomic_write_bytes(key, data)
        else:
            self._publish_key(key, lambda part: self.fs.pipe_file(part, data))

    def _publish_key(self, key: str, upload: Callable[[str], object]) -> None:
        """Upload to a temporary sibling key, then move it onto ``key``."""
        put_atomically(self.fs, key, upload)

    def _remove(self, key: str) -> None:
        if self._local:
            Path(key).unlink(missing_ok=True)
        elif self.fs.exists(key):
            self.fs.rm(key)

    def invalidate_after(self, day: date) -> list[date]:
        """Remove every day after ``day`` (latest first, each sidecar before its file).

        Re-running a day makes the later states stale: they were forecast from the old one.
        Removing from the latest backwards keeps the chain contiguous if interrupted.

        Returns
        -------
        The removed days, ascending.
        """
        removed = [d for d in self.days() if d > day]
        for d in reversed(removed):
            self._remove(self._key(d, "json"))
            self._remove(self._key(d, "nc"))
        if removed:
            log.info("state chain %s: invalidated %d days after %s", self.url, len(removed), day)
        return removed

    # -- reading --------------------------------------------------------------------------------
    def has(self, day: date) -> bool:
        """True when the state of ``day`` is committed (its sidecar exists)."""
        return bool(self.fs.exists(self._key(day, "json")))

    def days(self) -> list[date]:
        """The committed days, ascending."""
        found = []
        for key in self.fs.glob(f"{self.root}/*/state_*.json"):
            match = _SIDECAR.search(str(key))
            if match:
                found.append(datetime.strptime(match.group(1), "%Y%m%d").date())
        return sorted(found)

    def last(self) -> date | None:
        """The latest committed day, or None for an empty chain."""
        days = self.days()
        return days[-1] if days else None

    def _sidecar(self, day: date) -> dict[str, Any]:
        key = self._key(day, "json")
        try:
            raw = self.fs.cat_file(key)
        except FileNotFoundError:
            raise StateMissing(
                f"no state for {day} in the chain {self.url} (no {key}); the last day is "
                f"{self.last() or 'none'}: backfill the chain up to {day}"
            ) from None
        try:
            sidecar = json.loads(raw)
            if not isinstance(sidecar, dict) or not {"sha256", "provenance"} <= sidecar.keys():
                raise ValueError("missing sha256/provenance")
        except ValueError as exc:
            raise MalformedFile(
                f"state sidecar {key} of {day} is unreadable ({exc}): re-run the day {day}"
            ) from exc
        return sidecar

    def digest(self, day: date) -> str:
        """SHA-256 of the state file of ``day`` as its sidecar records it: what the next day's
        provenance names as the state it was stepped from (``state_before``).

        Raises
        ------
        StateMissing
            If the day is not in the chain.
        MalformedFile
            If the sidecar is unreadable.
        """
        return str(self._sidecar(day)["sha256"])

    def problem(self, day: date) -> str | None:
        """What is wrong with the committed state of ``day`` (None when its sidecar parses and
        its file matches the recorded size and SHA-256 and reads as a state)."""
        try:
            self.read(day)
        except StateMissing:
            return "not in the chain"
        except MalformedFile as exc:
            return str(exc)
        return None

    def provenance(self, day: date) -> dict[str, Any]:
        """The provenance the state of ``day`` was written with.

        Raises
        ------
        StateMissing
            If the day is not in the chain.
        """
        provenance: dict[str, Any] = self._sidecar(day)["provenance"]
        return provenance

    def same_provenance(self, day: date, provenance: Mapping[str, Any]) -> bool:
        """True when ``day`` exists and was written with this provenance (JSON-equal)."""
        if not self.has(day):
            return False
        return bool(self.provenance(day) == json.loads(canonical_provenance(provenance)))

    def read(self, day: date) -> xr.Dataset:
        """The state file of ``day``, loaded in memory (see :data:`STATE_VARIABLES`).

        Raises
        ------
        StateMissing
            If the day is not in the chain.
        MalformedFile
            If the file is missing, truncated, corrupt or lacks a variable.
        """
        sidecar = self._sidecar(day)
        key = self._key(day, "nc")
        with tempfile.TemporaryDirectory(prefix="smda-state-") as tmpdir:
            local = Path(key) if self._local else Path(tmpdir) / Path(key).name
            try:
                if not self._local:
                    self.fs.get_file(key, str(local))
                sha, _ = sha256_of(local)
            except FileNotFoundError as exc:
                raise self._corrupt(day, key, "the file is missing") from exc
            if sha != sidecar["sha256"]:
                raise self._corrupt(day, key, "its SHA-256 differs from the sidecar's")
            ds = self._open(day, key, local)
        missing = [v for v in STATE_VARIABLES if v not in ds.data_vars]
        if missing:
            raise self._corrupt(day, key, f"it lacks {missing}")
        if "time" in ds.dims:  # one day: its fields as (lat, lon)
            ds = ds.isel(time=0, drop=True)
        return ds

    def _open(self, day: date, key: str, local: Path) -> xr.Dataset:
        try:
            with HDF5_IO, xr.open_dataset(local, engine="netcdf4") as ds:
                return ds.load()
        except (OSError, ValueError, KeyError) as exc:
            raise self._corrupt(day, key, f"netCDF4 cannot read it: {exc}") from exc

    @staticmethod
    def _corrupt(day: date, key: str, why: str) -> MalformedFile:
        return MalformedFile(f"state file {key} of {day} is corrupt ({why}): re-run the day {day}")

    def state(self, day: date) -> xr.DataArray:
        """The analysis of ``day`` (m3 m-3, (lat, lon)): the state to forecast ``day + 1`` from."""
        return self.read(day)["analysis"]
