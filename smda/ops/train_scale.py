"""Training that scales out: a Dask cluster builds the features, a row budget bounds them.

:func:`smda.ops.train.train_from_store` takes this path when it is given :class:`ScaleOptions`
(``smda train --dask-scheduler ADDRESS``, ``SMDA_DASK_SCHEDULER``, or ``--row-budget``):

0. **Labels in bands**: the TC label merge runs one Dask task per band of grid rows holding
   about ``tile_cells`` land cells (:mod:`smda.ops.train_bands`); the bands' labels and SMAP
   go to files of the store's work folder, the client gets per-pixel summaries (the flag, the
   TC statistics, which cells are labelled).
1. **Cells to train on**: the labelled land cells, thinned to the row budget by the seeded
   cell hash of :func:`smda.science.sampling.sample_cells` (whole cells, every day of each: the
   free-running CV, DAgger, the gain need each cell's series). No budget, or rows within it:
   every cell, the same matrix as the in-memory path. The client reads the kept cells' label
   and SMAP series from the band files (one task per band).
2. **Features on the cluster**: the target days are cut into blocks of ``chunk_days``; each
   block is one Dask task (:func:`smda.ops.train_data.matrix_block`) that gets the kept cells'
   labels of its days, reads its ERA5 and MSWEP from the store and returns only the kept
   cells' rows. The client holds the kept rows and never the full region's matrix. Workers
   must see the store's path (one machine, or a shared file system).
3. **Model**: cross-validation, DAgger and the final booster on the kept rows
   (:func:`smda.science.model.train_with_folds`, unchanged).
4. **CDF tables over every cell**: one task per band of the label merge reads its band's
   labels and SMAP from the band's file, builds its features block by block (reading its band
   of ERA5 and MSWEP), runs the final model free and fits the band's tables; the tables are
   joined (by global cell id). So every cell of the region gets its SMAP CDF table, sampled or
   not. The gain is estimated on the kept cells (held-out cycles of the CV models, σ_o² from
   the per-pixel TC statistics); a cell outside them takes the field's default.

The client's memory is then the kept rows, the per-pixel summaries (a few values per grid
cell, no time axis) and the static fields, whatever the region's size.

Without an address a :class:`distributed.LocalCluster` is started: one single-threaded worker
process per core, the machine's memory split between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.errors import ConfigError
from smda.geo.grid import Grid
from smda.ops.train_bands import Labels, kept_series
from smda.ops.train_data import (
    block_args,
    join_blocks,
    matrix_block,
    smap_rows,
)
from smda.science.bundle import ModelBundle
from smda.science.features import FeatureMatrix, FeatureSpec, global_cell_ids
from smda.science.model import rollout
from smda.science.nudging import CdfTables, fit_cdf
from smda.science.sampling import cell_fraction, sample_cells
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store

__all__ = [
    "ScaleOptions",
    "cdf_tables_tiled",
    "join_tables",
    "row_bands",
    "sampled_cells",
    "scaled_matrix",
]

LOG = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ScaleOptions:
    """How the scaled-out training runs (module docstring).

    Attributes
    ----------
    scheduler:
        Address of a running Dask scheduler; None starts a LocalCluster sized to the machine.
    row_budget:
        Most teacher-forced rows (cells × days) to train on; None: every labelled cell.
    seed:
        Seed of the cell sampling (same seed and budget → same cells).
    chunk_days:
        Days per feature-building task.
    tile_cells:
        Land cells per band of whole grid rows: one label-merge task and one CDF-table task
        each.
    work_dir:
        Where the bands' merged labels are written (:mod:`smda.ops.train_bands`); None: the
        store's ``work/<region>/train-labels``. Workers must see it.
    """

    scheduler: str | None = None
    row_budget: int | None = None
    seed: int = 0
    chunk_days: int = 7
    tile_cells: int = 20_000
    work_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.chunk_days < 1 or self.tile_cells < 1:
            raise ConfigError("chunk_days and tile_cells must be ≥ 1")
        if self.row_budget is not None and self.row_budget < 1:
            raise ConfigError(f"the row budget must be ≥ 1 row, got {self.row_budget}")


def _block(
    root: Path,
    grid: Grid,
    spec: FeatureSpec,
    state: F32,
    target: F32,
    days: pd.DatetimeIndex,
    static: xr.Dataset,
    keep: Mask,
) -> tuple[FeatureMatrix, F32]:
    """:func:`matrix_block` on a worker (a store holds locks: it travels as its root and
    grid), from the kept cells' labels (days, kept cells): NaN on the other cells, whose
    features are dropped."""
    land = np.asarray(static["land"].values, dtype=bool)
    flat = np.flatnonzero(land.ravel())[keep]
    coords = {"time": days, "lat": static["lat"].values, "lon": static["lon"].values}

    def on_grid(values: F32) -> xr.DataArray:
        cube = np.full((len(days), land.size), np.nan, dtype=np.float32)
        cube[:, flat] = values
        return xr.DataArray(cube.reshape(len(days), *land.shape), coords, ("time", "lat", "lon"))

    return matrix_block(Store(root, grid), spec, on_grid(state), on_grid(target), static, keep)


def sampled_cells(
    static: xr.Dataset, keep: Mask, n_days: int, options: ScaleOptions
) -> tuple[Mask, float]:
    """The labelled land cells ``keep`` thinned to the row budget, and the fraction kept."""
    land = np.asarray(static["land"].values, dtype=bool)
    lat2, lon2 = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    ids = global_cell_ids(lat2[land], lon2[land])
    fraction = cell_fraction(int(keep.sum()), n_days, options.row_budget)
    if fraction >= 1.0:
        return keep, 1.0
    chosen = keep & sample_cells(ids, fraction, options.seed)
    if chosen.sum() < 2:  # too few for a CV; the smallest hashes of the labelled cells
        order = np.argsort(np.where(keep, np.arange(keep.size), keep.size))[:2]
        chosen = np.zeros_like(keep)
        chosen[order] = True
    return chosen, fraction


def scaled_matrix(
    client: Any,
    store: Store,
    spec: FeatureSpec,
    labels: Labels,
    static: xr.Dataset,
    days: pd.DatetimeIndex,
    options: ScaleOptions,
) -> tuple[FeatureMatrix, F32, F32, dict[str, Any]]:
    """The training matrix of the sampled cells, built block by block on the cluster from
    their label series (:func:`smda.ops.train_bands.kept_series`); also their staged SMAP of
    the target days (days, cells) and a description of the sampling."""
    labelled = labels.labelled
    chosen, fraction = sampled_cells(static, labelled, len(days), options)
    land = np.asarray(static["land"].values, dtype=bool)
    series, smap = kept_series(client, labels, land, chosen, days)  # series from day 0 − 1
    static_f = client.scatter(static, broadcast=True)
    futures = []
    for i in range(0, len(days), options.chunk_days):
        block = days[i : i + options.chunk_days]
        state, target = series[i : i + len(block)], series[i + 1 : i + 1 + len(block)]
        futures.append(
            client.submit(
                _block,
                store.root,
                store.grid,
                spec,
                state,
                target,
                block,
                static_f,
                chosen,
                pure=False,
            )
        )
    fm, y = join_blocks(client.gather(futures))
    sampling = {
        "scheme": "whole cells by seeded SplitMix64 hash of the global cell id",
        "seed": options.seed,
        "row_budget": options.row_budget,
        "fraction": round(fraction, 6),
        "cells": int(chosen.sum()),
        "labelled_cells": int(labelled.sum()),
        "rows": int(y.size),
    }
    LOG.info("train: %d of %d labelled cells (%d rows)", chosen.sum(), labelled.sum(), y.size)
    return fm, y, smap, sampling


def _band_tables(
    root: Path,
    grid: Grid,
    spec: FeatureSpec,
    bundle: ModelBundle,
    path: Path,
    days: pd.DatetimeIndex,
    chunk_days: int,
    static: xr.Dataset,
    keep: Mask,
    rows: slice,
    min_samples: int,
) -> CdfTables:
    """CDF tables of one band of rows: its labels and SMAP read from the band's file
    (:func:`smda.ops.train_bands.merge_band`), the model run free block by block (each block
    of features built, run from the last state of the block before, and dropped), so the
    task holds one block of features and the band's free run, not the band's year of
    features."""
    store = Store(root, grid)
    with HDF5_IO, xr.open_dataset(path, engine="netcdf4") as ds:
        label, smap = ds["label"].load(), ds["smap"].sel(time=days).load()
    free, obs, state = [], [], None
    for s, t in block_args(label, days, chunk_days):
        fm, _ = matrix_block(store, spec, s, t, static, keep, rows=rows)
        free.append(rollout(bundle.predict, fm, init=state))
        obs.append(smap_rows(fm, smap))
        state = free[-1][-1]
    return fit_cdf(np.concatenate(free), np.concatenate(obs), fm.cell_ids, min_samples=min_samples)


def join_tables(parts: list[CdfTables]) -> CdfTables:
    """Tables of disjoint tiles as one (sorted by cell id)."""
    ids = np.concatenate([p.cell_ids for p in parts])
    order = np.argsort(ids, kind="stable")
    return CdfTables(
        ids[order],
        parts[0].probs,
        np.concatenate([p.obs for p in parts])[order],
        np.concatenate([p.model for p in parts])[order],
        np.concatenate([p.n for p in parts])[order],
    )


def row_bands(land: Mask, labelled: Mask, tile_cells: int) -> list[slice]:
    """Bands of whole grid rows holding about ``tile_cells`` labelled land cells each."""
    per_row = np.zeros(land.shape[0], dtype=np.int64)
    np.add.at(per_row, np.flatnonzero(land.ravel())[labelled] // land.shape[1], 1)
    bands, start, count = [], 0, 0
    for r, n in enumerate(per_row):
        count += int(n)
        if count >= tile_cells:
            bands.append(slice(start, r + 1))
            start, count = r + 1, 0
    if count:
        bands.append(slice(start, land.shape[0]))
    return bands


def cdf_tables_tiled(
    client: Any,
    store: Store,
    spec: FeatureSpec,
    bundle: ModelBundle,
    labels: Labels,
    static: xr.Dataset,
    days: pd.DatetimeIndex,
    options: ScaleOptions,
    min_samples: int,
) -> CdfTables:
    """SMAP CDF tables of every labelled cell: one Dask task per band of the label merge
    (:func:`row_bands`), which reads its band's labels and SMAP from the band's file and gets
    only its band of the static fields (and reads its band of ERA5 and MSWEP)."""
    model = client.scatter(bundle, broadcast=True)
    futures = [
        client.submit(
            _band_tables,
            store.root,
            store.grid,
            spec,
            model,
            band.path,
            days,
            options.chunk_days,
            static.isel(lat=band.rows),
            band.labelled,
            band.rows,
            min_samples,
            pure=False,
        )
        for band in labels.bands
        if band.labelled.any()
    ]
    return join_tables(client.gather(futures))
