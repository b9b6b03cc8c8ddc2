"""``smda export``: a period of the state chain as one chunked, CF-compliant cube.

The cube has dimensions (time, lat, lon) and the variables a user of the product reads —
``analysis`` and ``uncertainty`` (m3 m-3, float32, NaN over sea), ``flags`` (uint8 bit field,
CF ``flag_masks``/``flag_meanings``) and ``obs_count`` (uint16) — plus ``provenance`` (time), each
day's provenance as JSON without secrets (:func:`smda.storage.provenance.public_provenance`). Days
missing from the chain are missing from the time axis (the global attribute ``smda_gaps``
lists them).

Formats: netCDF-4 (one file, deflate, chunks of up to 32 days × 256 × 256 cells) or Zarr (a
folder, the same chunks). Each state file is checked against its sidecar before it is read
(:meth:`smda.storage.chain.StateChain.read`). Days are streamed through dask one chunk of time at
a time, so a year of the globe does not have to fit in memory. The output is written atomically:
a temporary sibling, renamed onto ``out`` when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import delayed

from smda import __version__
from smda.errors import SmdaError
from smda.ops.runtime import Runtime
from smda.storage.atomic import atomic_path
from smda.storage.chain import EPOCH, TIME_ATTRS, canonical_provenance
from smda.storage.iolock import HDF5_IO
from smda.storage.provenance import public_provenance

__all__ = ["EXPORTED", "ExportResult", "Format", "export_cube"]

EXPORTED = ("analysis", "uncertainty", "flags", "obs_count")
"""Variables of the exported cube (besides ``provenance``)."""
Format = Literal["netcdf", "zarr"]
CHUNK_DAYS = 32
CHUNK_CELLS = 256


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_cube` wrote."""

    path: Path
    days: list[date]
    gaps: list[date]


def _day_array(rt: Runtime, day: date, name: str, shape: tuple[int, int], dtype: Any) -> Any:
    def load() -> np.ndarray[Any, Any]:
        return np.asarray(rt.chain.read(day)[name].values, dtype=dtype)[np.newaxis]

    return da.from_delayed(delayed(load)(), shape=(1, *shape), dtype=dtype)  # type: ignore[no-untyped-call]


def _cube(rt: Runtime, days: list[date]) -> xr.Dataset:
    first = rt.chain.read(days[0])  # checked; gives the grid, dtypes and attributes
    shape = (first.sizes["lat"], first.sizes["lon"])
    variables: dict[str, tuple[tuple[str, ...], Any, dict[str, Any]]] = {}
    for name in EXPORTED:
        dtype = first[name].dtype
        stack = da.concatenate(  # type: ignore[no-untyped-call]
            [_day_array(rt, d, name, shape, dtype) for d in days]
        )
        variables[name] = (("time", "lat", "lon"), stack, dict(first[name].attrs))
    provenance = [canonical_provenance(public_provenance(rt.chain.provenance(d))) for d in days]
    variables["provenance"] = (
        ("time",),
        np.array(provenance, dtype=str),
        {"long_name": "what made the day's analysis (JSON: model, inputs, code version)"},
    )
    time = np.array([(d - EPOCH).days for d in days], dtype=np.int32)
    return xr.Dataset(
        variables,
        coords={
            "time": ("time", time, dict(TIME_ATTRS)),
            "lat": ("lat", first["lat"].values, dict(first["lat"].attrs)),
            "lon": ("lon", first["lon"].values, dict(first["lon"].attrs)),
        },
    )


def _chunks(cube: xr.Dataset) -> tuple[int, int, int]:
    """Chunks of the output: up to :data:`CHUNK_DAYS` days × :data:`CHUNK_CELLS` ² cells."""
    return (
        min(CHUNK_DAYS, cube.sizes["time"]),
        min(CHUNK_CELLS, cube.sizes["lat"]),
        min(CHUNK_CELLS, cube.sizes["lon"]),
    )


def _encoding(cube: xr.Dataset, fmt: Format) -> dict[str, dict[str, Any]]:
    chunks = _chunks(cube)
    enc: dict[str, dict[str, Any]] = {}
    for name in EXPORTED:
        fill = np.float32(np.nan) if cube[name].dtype == np.float32 else None
        if fmt == "netcdf":
            enc[name] = {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": chunks}
        else:
            enc[name] = {"chunks": chunks}
        enc[name]["_FillValue"] = fill
    enc["time"] = {"_FillValue": None, "dtype": "int32"}
    if fmt == "netcdf":
        enc["lat"] = enc["lon"] = {"_FillValue": None}
    return enc


def export_cube(
    rt: Runtime, start: date, end: date, out: Path | str, *, fmt: Format = "netcdf"
) -> ExportResult:
    """Write the chain's days within ``start`` … ``end`` as one cube at ``out`` (module docstring).

    Raises
    ------
    SmdaError
        If the chain has no day in the period.
    smda.errors.MalformedFile
        If a state file is corrupt (``smda verify --repair`` recomputes it).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    chain_days = rt.chain.days()
    days = [d for d in chain_days if start <= d <= end]
    if not days:
        held = f"{chain_days[0]} … {chain_days[-1]}" if chain_days else "no day"
        raise SmdaError(
            f"the state chain of region {rt.region} has no day in {start} … {end} (it holds "
            f"{held}): backfill the period first (`smda backfill --start {start} --end {end}`)"
        )
    have = set(days)
    gaps = [d for d in _span(days[0], days[-1]) if d not in have]
    cube = _cube(rt, days)
    cube.attrs = {
        "Conventions": "CF-1.8",
        "title": "smda daily surface soil moisture (0-5 cm) analysis",
        "institution": "smda",
        "source": f"smda {__version__} (ML-DA: LightGBM forecast nudged toward SMAP L3)",
        "history": f"smda export {days[0]} … {days[-1]} of region {rt.region}",
        "smda_region": rt.region,
        "smda_gaps": ",".join(d.isoformat() for d in gaps),
    }
    cube = cube.chunk(dict(zip(("time", "lat", "lon"), _chunks(cube), strict=True)))
    target = Path(out)
    with dask.config.set(scheduler="synchronous"), HDF5_IO:  # netCDF-C is not thread-safe
        if fmt == "netcdf":
            with atomic_path(target) as tmp:
                cube.to_netcdf(
                    tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(cube, fmt)
                )
        else:
            _write_zarr(cube, target)
    return ExportResult(target, days, gaps)


def _write_zarr(cube: xr.Dataset, target: Path) -> None:
    """A Zarr store written beside ``target`` and renamed onto it (a previous one replaced)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        cube.to_zarr(  # Zarr v2 with consolidated metadata: what most readers open
            tmp, mode="w", encoding=_encoding(cube, "zarr"), consolidated=True, zarr_format=2
        )
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def describe(result: ExportResult) -> str:
    """One line on what was exported."""
    gaps = f", {len(result.gaps)} day(s) missing from the chain" if result.gaps else ""
    return f"{len(result.days)} day(s) {result.days[0]} … {result.days[-1]}{gaps} → {result.path}"
