"""TC-merged labels in bands of grid rows, on a Dask cluster: what the scaled training
(:mod:`smda.ops.train_scale`) holds instead of the region's label cube.

Triple collocation is per pixel: every statistic of :func:`smda.science.labels.merge_labels`
(TC, the extended collocation with the instrument, the mean–std matching, the weights and the
fallback) is a reduction along time of one pixel's series, and the instrument (the antecedent
precipitation index of MSWEP) is a recursion along time of one pixel. So the merge of a band
of rows is the band of the whole grid's merge, value for value (tested).

Each band is one Dask task (:func:`merge_band`): it reads its band of the three label products,
SMAP and MSWEP from the store (one day of the grid at a time), merges them and writes the
band's labels and SMAP atomically to a netCDF file under the store's work folder
``work/<region>/train-labels/<key>/`` — ``key`` a hash of the input hashes and the merge
settings, so a re-run with the same inputs reuses the files and a changed input makes new ones.
The task returns only the band's per-pixel summaries: the label flag, the TC statistics
the bundle and the gain use, and which land cells have a label on a target day.

The client then holds per-pixel summaries (no time axis) and, through :func:`kept_series`, the
label and SMAP series of the sampled cells only; the CDF-table tasks read their band's file.

A global year's band files take ~3 GB per period and input version, so the folders do not pile
up: each merge marks its folder as used, and once it has finished it removes the region's other
key folders that no training used for :data:`STALE_AFTER` (:func:`prune_label_folders`; a
training running beside it uses a younger one). A re-run of an older period merges again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.geo.grid import Grid
from smda.ops.train_data import MERGE_DEFAULTS, label_instrument, merge, require_labels
from smda.science.features import FeatureSpec
from smda.storage.atomic import atomic_path
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store

__all__ = [
    "STALE_AFTER",
    "TC_FIELDS",
    "BandLabels",
    "Labels",
    "kept_series",
    "merge_band",
    "merge_bands",
    "prune_label_folders",
]

LOG = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]
F32 = npt.NDArray[np.float32]

TC_FIELDS = ("n", "valid", "error_correlation", "rho2", "err_std_scaled", "err_var")
"""The per-pixel TC statistics the client keeps (the bundle's summary and the gain's σ_o²)."""


@dataclass(frozen=True)
class BandLabels:
    """What a band's task returns: its file, its per-pixel summaries, its labelled cells."""

    rows: slice
    path: Path
    flag: npt.NDArray[np.uint8]
    tc: xr.Dataset
    labelled: Mask


@dataclass(frozen=True)
class Labels:
    """The region's merged labels as bands (:func:`merge_bands`).

    Attributes
    ----------
    bands:
        Each band's file and summaries, in row order.
    flag, tc:
        The whole grid's label flag (lat, lon) and :data:`TC_FIELDS` (per pixel), with the
        merge settings in ``tc.attrs``.
    labelled:
        Land cells (in :func:`smda.science.features.build_features`' order) with a label on
        some target day.
    """

    bands: list[BandLabels]
    flag: xr.DataArray
    tc: xr.Dataset
    labelled: Mask


STALE_AFTER = 7 * 86_400.0
"""Seconds after its last use at which another training's label folder is removed: a week, so
that a training running beside (whose CDF tables read its band files long after its merge) is
never robbed of them."""


def prune_label_folders(
    work: Path, keep: Path, *, stale_after: float = STALE_AFTER, now: float | None = None
) -> list[Path]:
    """Remove the key folders under ``work`` other than ``keep`` whose last use (their mtime:
    a merge marks its folder, and every band file written into it renews it) is more than
    ``stale_after`` seconds before ``now``; the folders removed. A folder half removed by an
    interruption holds whole band files only (each was written atomically): a later merge of
    its key recomputes the missing bands."""
    now = time.time() if now is None else now
    removed = []
    for folder in sorted(work.iterdir()) if work.is_dir() else []:
        if folder == keep or not folder.is_dir():
            continue
        try:
            idle = now - folder.stat().st_mtime
        except FileNotFoundError:  # removed by another training meanwhile
            continue
        if idle > stale_after:
            size = sum(f.stat().st_size for f in folder.glob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            LOG.info(
                "removed the label bands %s (%.0f MB), unused for %.0f h",
                folder, size / 2**20, idle / 3600,
            )  # fmt: skip
            removed.append(folder)
    return removed


def _key(hashes: dict[str, str], settings: dict[str, Any]) -> str:
    text = json.dumps({"inputs": hashes, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def merge_band(
    root: Path,
    grid: Grid,
    spec: FeatureSpec,
    settings: dict[str, Any],
    rows: slice,
    land: Mask,
    days: pd.DatetimeIndex,
    folder: Path,
) -> BandLabels:
    """Merge one band of rows (or reuse its file) and summarise it (module docstring);
    ``land`` is the band's land mask (rows, lon), ``days`` the target days."""
    path = folder / f"rows-{rows.start:05d}-{rows.stop:05d}.nc"
    if not path.exists():
        store = Store(root, grid)
        start, end = date.fromisoformat(settings["start"]), date.fromisoformat(settings["end"])
        instrument = label_instrument(store, spec, start, end, rows=rows)
        merged, smap = merge(
            store, settings["products"], settings["reference"], (start, end),
            settings["min_n"], instrument, rows=rows,
        )  # fmt: skip
        fields = {name: merged.tc[name] for name in TC_FIELDS}
        data = xr.Dataset({"label": merged.label, "smap": smap, "flag": merged.flag, **fields})
        data.attrs = {"key": folder.name}
        with HDF5_IO, atomic_path(path) as tmp:  # netCDF-C is not thread-safe
            data.to_netcdf(tmp, engine="netcdf4")
    with HDF5_IO, xr.open_dataset(path, engine="netcdf4") as ds:
        label = ds["label"].sel(time=days).values
        flag = np.asarray(ds["flag"].values, dtype=np.uint8)
        tc = ds[list(TC_FIELDS)].load()
    labelled = np.isfinite(label.reshape(len(days), -1)[:, land.ravel()]).any(axis=0)
    tc["valid"] = tc["valid"].astype(bool)
    return BandLabels(rows, path, flag, tc, labelled)


def merge_bands(
    client: Any,
    store: Store,
    spec: FeatureSpec,
    products: list[str],
    reference: str,
    period: tuple[date, date],
    min_n: int,
    static: xr.Dataset,
    days: pd.DatetimeIndex,
    hashes: dict[str, str],
    bands: list[slice],
    work_dir: Path | None = None,
) -> Labels:
    """Merge the labels of ``period`` band by band on the cluster (module docstring), the
    files under ``work_dir`` (default: the store's ``work/<region>/train-labels``).

    Raises
    ------
    ConfigError
        If no land cell has a label on the target days.
    """
    settings = {
        "products": list(products), "reference": reference, "min_n": min_n,
        "start": period[0].isoformat(), "end": period[1].isoformat(),
        "api_decay": spec.api_decay, "history_days": spec.history_days, **MERGE_DEFAULTS,
    }  # fmt: skip
    work = work_dir or store.root / "work" / store.region / "train-labels"
    folder = work / _key(hashes, settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # in use: another training's pruning leaves it alone
    land = np.asarray(static["land"].values, dtype=bool)
    futures = [
        client.submit(
            merge_band,
            store.root,
            store.grid,
            spec,
            settings,
            rows,
            land[rows],
            days,
            folder,
            pure=False,
        )
        for rows in bands
    ]
    parts: list[BandLabels] = client.gather(futures)
    prune_label_folders(work, folder)
    labelled = require_labels(np.concatenate([p.labelled for p in parts]), days)
    coords = {"lat": static["lat"].values, "lon": static["lon"].values}
    tc = xr.concat([p.tc for p in parts], dim="lat").assign_coords(coords)
    tc.attrs = {"reference": reference, "min_n": min_n, **MERGE_DEFAULTS}
    flag = xr.DataArray(np.concatenate([p.flag for p in parts]), dims=("lat", "lon"),
                        coords=coords, name="flag")  # fmt: skip
    return Labels(parts, flag, tc, labelled)


def _band_series(path: Path, idx: npt.NDArray[np.int64], days: pd.DatetimeIndex) -> tuple[F32, F32]:
    """The label of the file's period and the SMAP of ``days`` at the band's flat cells ``idx``."""
    with HDF5_IO, xr.open_dataset(path, engine="netcdf4") as ds:
        label = ds["label"].values
        smap = ds["smap"].sel(time=days).values
    return (
        np.ascontiguousarray(label.reshape(label.shape[0], -1)[:, idx], dtype=np.float32),
        np.ascontiguousarray(smap.reshape(len(days), -1)[:, idx], dtype=np.float32),
    )


def kept_series(
    client: Any, labels: Labels, land: Mask, kept: Mask, days: pd.DatetimeIndex
) -> tuple[F32, F32]:
    """The label series over the period (n_period, k) and the SMAP of the target days
    (n_days, k) of the ``kept`` land cells, in land-cell order, read by one task per band."""
    first = np.concatenate([[0], np.cumsum(land.sum(axis=1))])
    futures = []
    for band in labels.bands:
        mine = kept[first[band.rows.start] : first[band.rows.stop]]
        if mine.any():
            idx = np.flatnonzero(land[band.rows].ravel())[mine]
            futures.append(client.submit(_band_series, band.path, idx, days, pure=False))
    parts: list[tuple[F32, F32]] = client.gather(futures)
    return (
        np.concatenate([p[0] for p in parts], axis=1),
        np.concatenate([p[1] for p in parts], axis=1),
    )
