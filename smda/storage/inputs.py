"""Staged inputs as the science core wants them: series, the inputs of a day, their versions.

An adapter over :class:`smda.storage.store.Store`: it reads the per-day files that ingest staged
(``staged/<region>/<source>/<YYYY>/<source>_<YYYYMMDD>.nc``) and the static fields
(``staged/<region>/static/era5_static.nc``) into xarray objects on the store's grid, and the
ledger's records into provenance. A day counts as *staged* when its file exists and the
ledger records it (:meth:`Store.staged_days`).

- :func:`load_static` — static fields (lat, lon) with ``land``;
- :func:`load_series` — one variable of one source over a period (time, lat, lon), NaN on days
  not staged (label products, SMAP);
- :func:`load_era5` — every ERA5 daily aggregate over a period (all days required);
- :func:`day_inputs` — the :class:`smda.science.cycle.DayInputs` of a day: ERA5 of D, MSWEP over the
  ``history_days`` ending at D, static, SMAP of D (None when not staged);
- :func:`missing_inputs` / :func:`missing_days` — what is required but not staged;
- :func:`input_versions` — deterministic provenance of a day's inputs (state-chain records).

Missing required inputs raise :class:`~smda.errors.MissingInputs`, whose message lists the
missing days per source and the ``smda fetch`` commands that stage them.

Reading: netCDF-C/HDF5 are not thread-safe, so each file is read under
:data:`smda.storage.iolock.HDF5_IO`, with netCDF4 directly (about 3× faster per small file than
opening it through xarray; many days are read one file at a time).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.errors import MalformedFile, MissingInputs
from smda.science.cycle import DayInputs
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store, sha256_file

__all__ = [
    "REQUIRED_DAILY",
    "STATIC",
    "MissingInputs",
    "check_inputs",
    "day_inputs",
    "input_versions",
    "load_era5",
    "load_series",
    "load_static",
    "missing_days",
    "missing_inputs",
    "missing_message",
    "static_version",
]

LOG = logging.getLogger(__name__)

STATIC = "era5_static"
"""Name of the staged static fields (ERA5 invariants and the land mask)."""
REQUIRED_DAILY = ("era5", "mswep")
"""Sources a day cannot run without (ERA5 of D, MSWEP over the history window)."""
F32 = npt.NDArray[np.float32]
_MAX_RANGES = 3  # gaps listed per source in a message


# -- what is staged -----------------------------------------------------------------------------
def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _is_staged(store: Store, source: str, day: date) -> bool:
    return store.ledger(source).get(day) is not None and store.staged_path(source, day).exists()


def missing_days(store: Store, source: str, days: Iterable[date]) -> list[date]:
    """The days of ``days`` for which ``source`` is not staged, in order."""
    return sorted(d for d in days if not _is_staged(store, source, d))


def missing_inputs(store: Store, day: date, history_days: int) -> list[tuple[str, date]]:
    """Required inputs of ``day`` that are not staged: ERA5 of D and MSWEP of
    D − history_days + 1 … D, as ``(source, day)`` pairs (the static fields are checked by
    :func:`load_static`)."""
    window = _days(day - timedelta(days=history_days - 1), day)
    return [("era5", d) for d in missing_days(store, "era5", [day])] + [
        ("mswep", d) for d in missing_days(store, "mswep", window)
    ]


def _ranges(days: Sequence[date]) -> list[tuple[date, date]]:
    """Runs of consecutive days."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _region_option(store: Store) -> str:
    if store.grid.is_global:
        return ""
    b = store.grid.bounds
    return f" --region={b.west:g},{b.south:g},{b.east:g},{b.north:g}"


def missing_message(store: Store, missing: Sequence[tuple[str, date | None]], what: str) -> str:
    """A message listing ``missing`` per source and the commands that stage them."""
    by_source: dict[str, list[date]] = {}
    static = False
    for source, day in missing:
        if day is None:
            static = True
        else:
            by_source.setdefault(source, []).append(day)
    parts, commands = [], []
    region = _region_option(store)
    for source, days in by_source.items():
        runs = _ranges(days)
        shown = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs[:_MAX_RANGES])
        more = f" and {len(runs) - _MAX_RANGES} more gaps" if len(runs) > _MAX_RANGES else ""
        parts.append(f"{source} {shown}{more} ({len(days)} day{'s' * (len(days) != 1)})")
        commands.append(f"`smda fetch {source} --start {min(days)} --end {max(days)}{region}`")
    if static:
        parts.append(f"the static fields ({store.static_path(STATIC)})")
        commands.append("`smda fetch era5 …` for the region (it stages the ERA5 invariants once)")
    return (
        f"{what}: not staged in {store.root} (region {store.region}): {'; '.join(parts)}. "
        f"Stage them with {' and '.join(commands)}"
    )


def _raise_missing(store: Store, missing: Sequence[tuple[str, date | None]], what: str) -> None:
    if missing:
        raise MissingInputs(missing_message(store, missing, what), list(missing))


def check_inputs(store: Store, days: Sequence[date], history_days: int) -> None:
    """Check that the inputs of ``days`` are staged and intact, before anything is changed
    (a forced re-run must not withdraw days it cannot redo).

    Raises
    ------
    MissingInputs
        An input is not staged (the message gives the fetch commands).
    smda.storage.integrity.CorruptFile
        A staged input does not match its ledger record.
    """
    missing: list[tuple[str, date | None]] = list(
        dict.fromkeys(m for d in days for m in missing_inputs(store, d, history_days))
    )
    _raise_missing(store, missing, "the forced re-run")
    sources = {("era5", d) for d in days} | {("smap", d) for d in days}
    sources |= {("mswep", d - timedelta(days=i)) for d in days for i in range(history_days)}
    for source, day in sorted(sources):
        if source != "smap" or store.ledger(source).get(day) is not None:
            store.verified_path(source, day)


# -- reading ------------------------------------------------------------------------------------
def _decode(var: Any, rows: slice | None = None) -> F32:
    """A netCDF variable (or its band of ``rows``) as float32 with xarray's CF decoding
    (fill → NaN, scale, offset)."""
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[...] if rows is None else var[rows])
    values = raw.astype(np.float32)
    fill = getattr(var, "_FillValue", None)
    if fill is not None and not np.isnan(fill):
        values[raw == fill] = np.nan
    scale, offset = getattr(var, "scale_factor", None), getattr(var, "add_offset", None)
    if scale is not None:
        values *= np.float32(scale)
    if offset is not None:
        values += np.float32(offset)
    return values


def _read(
    path: Path, variables: Sequence[str] | None, shape: tuple[int, int], rows: slice | None = None
) -> tuple[dict[str, F32], dict[str, dict[str, Any]]]:
    """The (lat, lon) variables of a staged file (all when ``variables`` is None), or their
    band of ``rows``, and their attributes, checked against the grid's shape."""
    with HDF5_IO, netCDF4.Dataset(path) as nc:
        names = [v for v in nc.variables if nc[v].dimensions == ("lat", "lon")]
        wanted = names if variables is None else list(variables)
        absent = [v for v in wanted if v not in names]
        if absent:
            raise MalformedFile(
                f"staged file {path} has no (lat, lon) variable(s) {absent} (it has {names}); "
                "re-stage it (move it away and run `smda fetch` again)"
            )
        for name in wanted:
            if nc[name].shape != shape:
                raise MalformedFile(
                    f"staged {name} in {path} has shape {nc[name].shape}, but the region's grid "
                    f"is {shape}: the file belongs to another grid; re-stage it"
                )
        out = {v: _decode(nc[v], rows) for v in wanted}
        attrs = {
            v: {k: nc[v].getncattr(k) for k in nc[v].ncattrs() if k != "_FillValue"} for v in wanted
        }
    return out, attrs


class _FieldCache:
    """Recently read staged fields, keyed by the file's path and identity (mtime, size,
    inode: a re-staged day is written to a new file and renamed, so it misses the cache).

    Consecutive days share all but one day of their MSWEP window: with the cache a backfill
    (or a cold start's spin-up) reads each MSWEP file once instead of ``history_days`` times.
    The cached arrays are read-only; :func:`_stack` copies them into its cubes.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], tuple[dict[str, F32], dict[str, Any]]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._lock = threading.Lock()

    def read(
        self, path: Path, variables: Sequence[str], shape: tuple[int, int]
    ) -> tuple[dict[str, F32], dict[str, dict[str, Any]]]:
        st = path.stat()
        key = (str(path), tuple(variables), st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        fields, attrs = _read(path, variables, shape)
        for values in fields.values():
            values.flags.writeable = False
        size = sum(v.nbytes for v in fields.values())
        with self._lock:
            if key not in self._items and size <= self.max_bytes:
                self._items[key] = (fields, attrs)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (old, _) = self._items.popitem(last=False)
                    self._bytes -= sum(v.nbytes for v in old.values())
        return fields, attrs


FIELD_CACHE = _FieldCache(max_bytes=192 * 2**20)
"""Staged MSWEP days in memory: a 30-day window of the global 0.25° grid is 124 MB."""


def _stack(
    store: Store,
    source: str,
    days: Sequence[date],
    variables: Sequence[str] | None,
    *,
    cache: _FieldCache | None = None,
    rows: slice | None = None,
) -> tuple[dict[str, F32], dict[str, dict[str, Any]]]:
    """(n_days, lat, lon) arrays of the staged ``days`` (NaN for days not staged), the
    files read through ``cache`` when given (``variables`` must then be named); with ``rows``
    only that band of grid rows is read (through the cache: one day of the whole grid at a
    time, the band kept)."""
    shape = store.grid.shape
    band = rows or slice(0, shape[0])
    out_shape = (len(range(shape[0])[band]), shape[1])
    cubes: dict[str, F32] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for i, day in enumerate(days):
        if not _is_staged(store, source, day):
            continue
        path = store.verified_path(source, day)  # CorruptFile says how it is re-staged
        if cache is not None and variables is not None:
            fields, found = cache.read(path, variables, shape)
            fields = {name: values[band] for name, values in fields.items()}
        else:
            fields, found = _read(path, variables, shape, rows)
        for name, values in fields.items():
            if name not in cubes:
                cubes[name] = np.full((len(days), *out_shape), np.nan, dtype=np.float32)
                attrs[name] = found[name]
            cubes[name][i] = values
    for name in variables or ():
        cubes.setdefault(name, np.full((len(days), *out_shape), np.nan, dtype=np.float32))
        attrs.setdefault(name, {})
    return cubes, attrs


def _coords(store: Store, days: Sequence[date] | None = None) -> dict[str, Any]:
    coords: dict[str, Any] = {"lat": store.grid.lats, "lon": store.grid.lons}
    if days is not None:
        coords = {"time": pd.DatetimeIndex(days, name="time"), **coords}
    return coords


def load_static(store: Store) -> xr.Dataset:
    """The staged static fields (lat, lon): ``orography`` (m), ``lsm``, ``slt``, ``cvh``,
    ``cvl``, ``tvh``, ``tvl`` and ``land`` (bool), loaded into memory.

    Raises
    ------
    MissingInputs
        If the static fields are not staged for the store's region.
    """
    path = store.static_path(STATIC)
    if not path.exists():
        _raise_missing(store, [(STATIC, None)], "static fields")
    with HDF5_IO, xr.open_dataset(path) as ds:
        static = ds.load()
    if "land" not in static or static["land"].shape != store.grid.shape:
        raise MalformedFile(
            f"static file {path} has no land mask on the region's grid {store.grid.shape}; "
            "move it away and stage it again"
        )
    return static.assign(land=static["land"].astype(bool))


def load_series(
    store: Store,
    source: str,
    variable: str,
    start: date,
    end: date,
    *,
    cache: _FieldCache | None = None,
    rows: slice | None = None,
) -> xr.DataArray:
    """One staged variable over ``start … end``: float32 (time, lat, lon), NaN on days not
    staged (e.g. ``load_series(store, "smap", "soil_moisture", …)`` in m3 m-3); the days are
    read through ``cache`` when given (:data:`FIELD_CACHE`); ``rows``: only that band of the
    grid's rows (the memory of the band, not of the grid).

    Raises
    ------
    MalformedFile
        If a staged file lacks ``variable`` or is on another grid.
    """
    days = _days(start, end)
    cubes, attrs = _stack(store, source, days, [variable], cache=cache, rows=rows)
    coords = _coords(store, days)
    if rows is not None:
        coords["lat"] = coords["lat"][rows]
    return xr.DataArray(
        cubes[variable],
        dims=("time", "lat", "lon"),
        coords=coords,
        name=variable,
        attrs={**attrs[variable], "source": source},
    )


def load_era5(store: Store, start: date, end: date, *, rows: slice | None = None) -> xr.Dataset:
    """Every staged ERA5 daily aggregate over ``start … end``: float32 (time, lat, lon)
    (``t2m_mean`` … ``tp_sum``, units as staged); ``rows``: only that band of the grid's rows.

    Raises
    ------
    MissingInputs
        If any day is not staged.
    """
    days = _days(start, end)
    _raise_missing(store, [("era5", d) for d in missing_days(store, "era5", days)], "ERA5")
    cubes, attrs = _stack(store, "era5", days, None, rows=rows)
    dims, coords = ("time", "lat", "lon"), _coords(store, days)
    if rows is not None:
        coords["lat"] = coords["lat"][rows]
    return xr.Dataset(
        {name: (dims, values, attrs[name]) for name, values in cubes.items()}, coords=coords
    )


def day_inputs(store: Store, day: date, history_days: int) -> DayInputs:
    """The staged inputs of ``day`` for :func:`smda.science.cycle.step`.

    Parameters
    ----------
    history_days:
        Days of MSWEP ending at ``day`` the model needs (``FeatureSpec.history_days``).

    Returns
    -------
    :class:`~smda.science.cycle.DayInputs`: ERA5 of D (lat, lon), MSWEP ``precipitation``
    (time, lat, lon) mm day-1 of D − history_days + 1 … D, static, and SMAP of D
    (``soil_moisture`` m3 m-3, ``count``) or None when SMAP is not staged for D.

    Raises
    ------
    MissingInputs
        If ERA5 of D, a day of the MSWEP window or the static fields are not staged.
    """
    missing: list[tuple[str, date | None]] = list(missing_inputs(store, day, history_days))
    if not store.static_path(STATIC).exists():
        missing.append((STATIC, None))
    _raise_missing(store, missing, f"inputs of {day}")
    shape = store.grid.shape
    era5, era5_attrs = _read(store.verified_path("era5", day), None, shape)
    first = day - timedelta(days=history_days - 1)
    return DayInputs(
        day=day,
        era5=xr.Dataset(
            {k: (("lat", "lon"), v, era5_attrs[k]) for k, v in era5.items()},
            coords=_coords(store),
        ),
        precip=load_series(store, "mswep", "precipitation", first, day, cache=FIELD_CACHE),
        static=load_static(store),
        smap=_smap_of(store, day),
    )


def _smap_of(store: Store, day: date) -> xr.Dataset | None:
    """Staged SMAP of ``day`` (``soil_moisture`` m3 m-3, ``count`` uint16), or None."""
    if not _is_staged(store, "smap", day):
        return None
    path = store.verified_path("smap", day)
    fields, attrs = _read(path, None, store.grid.shape)
    if "soil_moisture" not in fields:
        raise MalformedFile(f"staged SMAP {path} has no soil_moisture; re-stage it")
    sm = fields["soil_moisture"]
    count = fields.get("count", np.isfinite(sm).astype(np.float32))
    dims = ("lat", "lon")
    return xr.Dataset(
        {
            "soil_moisture": (dims, sm, attrs["soil_moisture"]),
            "count": (dims, np.nan_to_num(count, nan=0.0).astype(np.uint16), {"units": "1"}),
        },
        coords=_coords(store),
    )


# -- provenance ---------------------------------------------------------------------------------
def _content_id(files: Sequence[Mapping[str, Any]]) -> str | None:
    """SHA-256 over the raw files' identities (name, data digest as in
    :attr:`smda.storage.store.RawFile.identity`, version): the same data fetched from another URL or
    mirror gives the same id, which the staged file's own hash (it records the URL) would not."""
    if not files:
        return None
    ids = sorted(
        f"{f.get('name', '')} {f.get('part_sha256') or f.get('sha256', '')} {f.get('version', '')}"
        for f in files
    )
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _record(store: Store, source: str, day: date) -> dict[str, Any] | None:
    """The deterministic part of a day's ledger record (None when not staged)."""
    record = store.ledger(source).get(day)
    if record is None or not store.staged_path(source, day).exists():
        return None
    return {
        "day": day.isoformat(),
        "sha256": _content_id(record.files) or record.sha256,
        "provisional": bool(record.provisional),
        "files": sorted({str(f.get("name", "")) for f in record.files}),
        "versions": sorted({str(f.get("version", "")) for f in record.files} - {""}),
    }


def static_version(store: Store) -> dict[str, Any] | None:
    """``{file, sha256}`` of the raw invariants the static fields were made from (the
    staged file's own SHA-256 when it does not record them), or None when not staged."""
    path = store.static_path(STATIC)
    if not path.exists():
        return None
    with HDF5_IO, netCDF4.Dataset(path) as nc:
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    source_sha = attrs.get("smda_source_sha256")
    return {
        "file": str(attrs.get("smda_source_file", path.name)),
        "sha256": str(source_sha) if source_sha else sha256_file(path),
    }


def input_versions(store: Store, day: date, history_days: int) -> dict[str, Any]:
    """Provenance of the inputs of ``day`` from the ledger (deterministic: no timestamps).

    Returns
    -------
    JSON-compatible ``{"era5": {day, sha256, provisional, files, versions (expver=…)},
    "mswep": {first, last, days, sha256 (digest of the window's staged files),
    provisional_days, files}, "smap": {…} or None, "static": {file, sha256} or None}``;
    a required day that is not staged appears with ``"sha256": None``. Two calls give equal
    dicts exactly when the same staged files are in place (a re-staged ERA5T → ERA5 day or an
    MSWEP revision changes it).
    """
    window = _days(day - timedelta(days=history_days - 1), day)
    records = [_record(store, "mswep", d) for d in window]
    digest = hashlib.sha256()
    for d, rec in zip(window, records, strict=True):
        digest.update(f"{d} {rec['sha256'] if rec else '-'}\n".encode())
    mswep = {
        "first": window[0].isoformat(),
        "last": window[-1].isoformat(),
        "days": sum(rec is not None for rec in records),
        "sha256": digest.hexdigest(),
        "provisional_days": [r["day"] for r in records if r is not None and r["provisional"]],
        "files": sorted({name for r in records if r is not None for name in r["files"]}),
    }
    era5 = _record(store, "era5", day) or {"day": day.isoformat(), "sha256": None}
    return {
        "era5": era5,
        "mswep": mswep,
        "smap": _record(store, "smap", day),
        "static": static_version(store),
    }
