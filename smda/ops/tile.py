"""One tile of a tiled backfill (:mod:`smda.ops.tiles`) advancing through a block of days, on a
Dask worker: the tile's rows of the staged inputs are stepped with the cycle of every cell
(:func:`smda.science.cycle.step`), and the block's fields are written to one tile file, atomically
(``.npz``: the fields (day, lat, lon), the per-feature sums of the drift and the fields' attrs).
A file already there, stepped from the same state with the same provenance, is reused as it is.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.geo.grid import Grid
from smda.science.bundle import ModelBundle, Predict
from smda.science.cycle import DayInputs, step
from smda.science.drift import column_sums
from smda.storage.inputs import day_inputs
from smda.storage.objects import Files
from smda.storage.registry import ModelRegistry
from smda.storage.store import Store

__all__ = ["FIELDS", "TileJob", "TileOutcome", "advance_tile", "digest", "load_tile"]

LOG = logging.getLogger(__name__)

FIELDS = ("forecast", "analysis", "innovations", "flags", "obs_count", "gain")
"""The fields of a :class:`~smda.science.cycle.CycleResult` a tile file holds, (day, lat, lon)."""


@dataclass(frozen=True)
class TileJob:
    """What a worker needs to advance any tile (pickled to the workers)."""

    store_root: str
    grid: Grid
    models: str
    version: str
    gain: float | None
    work: str
    """The URL of this run's tile folder."""


@dataclass(frozen=True)
class TileOutcome:
    """One tile's block: its file, and whether it was computed now or found done."""

    tile: int
    block: int
    path: str
    computed: bool
    seconds: float


def digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
    return sha.hexdigest()


def _tile_name(block: tuple[date, ...], tile: int) -> str:
    return f"{block[0]:%Y%m%d}_{len(block)}d_t{tile:05d}.npz"


@functools.lru_cache(maxsize=4)
def _model(models: str, version: str) -> tuple[ModelBundle, Predict]:
    """The bundle and its predictor, loaded once per worker process."""
    registry = ModelRegistry(Path(models))
    bundle = registry.load(version)
    return bundle, registry.predictor(bundle)


def _recording(predict: Predict, sums: list[tuple[Any, Any]]) -> Predict:
    """``predict`` that also records the per-feature sums of the rows it is given (drift)."""

    def wrapped(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        sums.append(column_sums(values))
        if len(values) == 0:  # a tile without land
            return np.empty(0, np.float32)
        return predict(values)

    return wrapped


def advance_tile(
    job: TileJob,
    tile: int,
    rows: tuple[int, int],
    block: tuple[date, ...],
    key: str,
    start: npt.NDArray[np.float32] | TileOutcome,
    block_index: int = 0,
) -> TileOutcome:
    """Step tile ``tile`` (grid rows ``rows``) through the days of ``block`` from ``start`` (its
    state of the day before, or the previous block's outcome) and write its file atomically;
    a file already there from the same starting state and provenance is reused as it is."""
    t0 = time.perf_counter()
    files = Files.at(job.work)
    path = files.root / _tile_name(block, tile)
    state = (
        load_tile(files, Path(start.path))["analysis"][-1]
        if isinstance(start, TileOutcome)
        else start
    )
    state_key = digest(np.ascontiguousarray(state, np.float32).tobytes(), key)
    old = files.read_bytes(path)
    if old is not None and str(_npz(old)["key"]) == state_key:
        LOG.info("tile %d of %s…%s: already done", tile, block[0], block[-1])
        return TileOutcome(tile, block_index, str(path), False, time.perf_counter() - t0)
    bundle, predict = _model(job.models, job.version)
    store = Store(Path(job.store_root), job.grid)
    grid = job.grid
    sl = slice(*rows)
    prev = xr.DataArray(state, dims=("lat", "lon"), coords={"lat": grid.lats[sl], "lon": grid.lons})
    out: dict[str, list[Any]] = {name: [] for name in (*FIELDS, "sums", "counts", "attrs")}
    for day in block:
        inputs = day_inputs(store, day, bundle.spec.history_days)
        tile_inputs = _subset(inputs, sl)
        sums: list[tuple[Any, Any]] = []
        result = step(prev, tile_inputs, bundle, gain=job.gain, predict=_recording(predict, sums))
        for name in FIELDS:
            out[name].append(np.asarray(getattr(result, name).values))
        out["sums"].append(sums[0][0])
        out["counts"].append(sums[0][1])
        out["attrs"].append({name: getattr(result, name).attrs for name in FIELDS})
        prev = result.analysis
    arrays = {name: np.stack(out[name]) for name in (*FIELDS, "sums", "counts")}
    buf = io.BytesIO()
    payload: dict[str, Any] = {
        "key": np.array(state_key),
        "attrs": np.array(json.dumps(out["attrs"])),
        **arrays,
    }
    np.savez(buf, **payload)
    files.write_bytes(path, buf.getvalue())
    seconds = time.perf_counter() - t0
    LOG.info("tile %d of %s…%s: computed in %.1f s", tile, block[0], block[-1], seconds)
    return TileOutcome(tile, block_index, str(path), True, seconds)


def _subset(inputs: DayInputs, sl: slice) -> DayInputs:
    """The inputs of a day on the rows ``sl`` (every field per cell)."""

    def cut(obj: Any) -> Any:
        return None if obj is None else obj.isel(lat=sl)

    return replace(
        inputs,
        era5=cut(inputs.era5),
        precip=cut(inputs.precip),
        static=cut(inputs.static),
        smap=cut(inputs.smap),
    )


def _npz(data: bytes) -> Any:
    return np.load(io.BytesIO(data), allow_pickle=False)


def load_tile(files: Files, path: Path) -> dict[str, Any]:
    data = files.read_bytes(path)
    if data is None:
        raise FileNotFoundError(f"tile file {files.location(path)} is missing")
    with _npz(data) as npz:
        return {k: npz[k] for k in npz.files}
