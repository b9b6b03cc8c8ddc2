"""The training data from the store: checks, TC-merged labels, the feature matrix, the model's
SMAP CDF tables and nudging gain, and the hashes of the inputs (the steps of
:func:`smda.ops.train.train_from_store`)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.errors import ConfigError, MissingInputs
from smda.science.bundle import ModelBundle
from smda.science.features import (
    FeatureMatrix,
    FeatureSpec,
    antecedent_precipitation,
    build_features,
    lagged,
)
from smda.science.gain import GainField, estimate_gain
from smda.science.labels import LabelResult, merge_labels
from smda.science.model import FoldModels, TrainConfig, fit_cv_to_region, rollout
from smda.science.nudging import CdfTables, fit_cdf
from smda.storage.inputs import (
    STATIC,
    load_era5,
    load_series,
    missing_days,
    missing_message,
    static_version,
)
from smda.storage.store import Store

__all__ = [
    "LABEL_PRODUCTS",
    "LABEL_VARIABLES",
    "MERGE_DEFAULTS",
    "block_args",
    "cdf_tables",
    "check_cv",
    "check_options",
    "check_staged",
    "input_hashes",
    "join_blocks",
    "label_instrument",
    "labelled_cells",
    "matrix_block",
    "merge",
    "nudging_gain",
    "require_labels",
    "smap_rows",
    "training_matrix",
    "training_spans",
]

LABEL_VARIABLES = {"smap": "soil_moisture", "era5land": "swvl1_mean", "gldas": "soil_moisture"}
"""The staged variable (m3 m-3) of each label product."""


MERGE_DEFAULTS: dict[str, Any] = {"scaling": "tc_beta", "weighting": "optimal", "fallback": "equal"}
"""How labels are merged (SCIENCE.md §1): TC-β rescaling, minimum-variance weights, equal
weights of the usable products where TC is invalid."""

LABEL_PRODUCTS = ("smap", "era5land", "gldas")
"""The default label triplet (SCIENCE.md §1)."""

LOG = logging.getLogger(__name__)

Mask = npt.NDArray[np.bool_]


def check_options(products: Sequence[str], reference: str, start: date, end: date) -> None:
    problems = []
    if end <= start:
        problems.append(f"the period {start}..{end} must span at least two days")
    if len(products) != 3 or len(set(products)) != 3:
        problems.append(f"label products must be three distinct names, got {list(products)}")
    unknown = [p for p in products if p not in LABEL_VARIABLES]
    if unknown:
        problems.append(f"unknown label product(s) {unknown}; choose from {list(LABEL_VARIABLES)}")
    if reference not in products:
        problems.append(
            f"reference {reference!r} is not one of the label products {list(products)}"
        )
    if problems:
        raise ConfigError("cannot train: " + "; ".join(problems))


def training_spans(
    products: Sequence[str], start: date, end: date, history_days: int
) -> dict[str, tuple[date, date]]:
    """First and last day of each source that training on ``start`` … ``end`` reads: ERA5 for
    the target days (from ``start`` + 1), MSWEP also for their precipitation history, the label
    products over the period."""
    first = start + timedelta(days=1)
    return {
        "era5": (first, end),
        "mswep": (first - timedelta(days=history_days - 1), end),
        **{name: (start, end) for name in products},
    }


def check_staged(
    store: Store, products: Sequence[str], start: date, end: date, history_days: int
) -> None:
    """Raise :class:`MissingInputs` listing every required input that is not staged."""
    spans = training_spans(products, start, end, history_days)
    target = pd.date_range(*spans["era5"]).date.tolist()
    window = pd.date_range(*spans["mswep"]).date.tolist()
    missing: list[tuple[str, date | None]] = [
        ("era5", d) for d in missing_days(store, "era5", target)
    ]
    missing += [("mswep", d) for d in missing_days(store, "mswep", window)]
    period = pd.date_range(start, end).date.tolist()
    for name in products:
        absent = missing_days(store, name, period)
        if len(absent) == len(period):
            missing += [(name, d) for d in absent]
    if not store.static_path(STATIC).exists():
        missing.append((STATIC, None))
    if missing:
        raise MissingInputs(missing_message(store, missing, f"training {start}..{end}"), missing)


def check_cv(static: xr.Dataset, config: TrainConfig) -> None:
    """Fail before the expensive steps when the region cannot be cross-validated at all (fewer
    than two groups); say when the protocol is fitted to a small region
    (:func:`smda.science.model.fit_cv_to_region`)."""
    land = np.asarray(static["land"].values, dtype=bool)
    lat, lon = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    for scheme in (config.cv.scheme, *config.compare):
        try:
            _, note = fit_cv_to_region(replace(config.cv, scheme=scheme), lat[land], lon[land])
            if note is not None:
                LOG.warning("train: %s", note)
        except ValueError as exc:
            raise ConfigError(
                f"cannot cross-validate on this region ({int(land.sum())} land cells): {exc}"
            ) from exc


def label_instrument(
    store: Store, spec: FeatureSpec, start: date, end: date, *, rows: slice | None = None
) -> xr.DataArray:
    """The antecedent precipitation index of the staged MSWEP over ``start … end`` (warmed up
    over the staged history before ``start``): the labels' independent instrument (``rows``:
    of that band of grid rows)."""
    first = start + timedelta(days=1) - timedelta(days=spec.history_days - 1)
    precip = load_series(store, "mswep", "precipitation", min(first, start), end, rows=rows)
    api = antecedent_precipitation(precip, spec.api_decay)
    return api.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end)))


def merge(
    store: Store,
    products: Sequence[str],
    reference: str,
    period: tuple[date, date],
    min_n: int,
    instrument: xr.DataArray,
    *,
    rows: slice | None = None,
) -> tuple[LabelResult, xr.DataArray]:
    """Merged labels and the staged SMAP over the period (``rows``: of that band of grid
    rows only; TC is per pixel, so the band of the whole grid's merge)."""
    start, end = period
    series = [load_series(store, p, LABEL_VARIABLES[p], start, end, rows=rows) for p in products]
    instrument = instrument.assign_coords(time=series[0]["time"])
    merged = merge_labels(
        series,
        names=list(products),
        reference=reference,
        min_n=min_n,
        instrument=instrument,
        **MERGE_DEFAULTS,
    )
    smap = series[list(products).index("smap")] if "smap" in products else None
    if smap is None:
        smap = load_series(store, "smap", "soil_moisture", start, end, rows=rows)
    return merged, smap


def labelled_cells(label: xr.DataArray, static: xr.Dataset, days: pd.DatetimeIndex) -> Mask:
    """Which land cells (in :func:`build_features`' order) have a label on some of ``days``."""
    land = np.flatnonzero(np.asarray(static["land"].values, dtype=bool).ravel())
    keep = np.zeros(land.size, dtype=bool)
    for block in _blocks(days, 31):  # a month of the label cube at a time
        y = label.sel(time=block).values.reshape(len(block), -1)[:, land]
        keep |= np.isfinite(y).any(axis=0)
    return require_labels(keep, days)


def require_labels(labelled: Mask, days: pd.DatetimeIndex) -> Mask:
    """``labelled`` (land cells with a label on some of ``days``), or a :class:`ConfigError`
    saying what to do when there is none."""
    if not labelled.any():
        raise ConfigError(
            f"no land cell has a label over {days[0].date()}..{days[-1].date()}: the reference "
            "product has no valid value; choose another period or reference"
        )
    return labelled


def _blocks(days: pd.DatetimeIndex, size: int) -> list[pd.DatetimeIndex]:
    return [days[i : i + size] for i in range(0, len(days), size)]


def matrix_block(
    store: Store,
    spec: FeatureSpec,
    state: xr.DataArray,
    target: xr.DataArray,
    static: xr.Dataset,
    keep: Mask,
    *,
    rows: slice | None = None,
) -> tuple[FeatureMatrix, npt.NDArray[np.float32]]:
    """Teacher-forced features and labels of the days of ``target`` (the label on those days;
    ``state`` the label of each day before, :func:`lagged`) over the land cells where ``keep``;
    reads the block's ERA5 and MSWEP from the store (a Dask worker can run it). With ``rows``
    (a band of the grid's rows) ``state``, ``target`` and ``static`` are that band's, and so
    are the features (their ``cells`` index the band). The features are built for the kept
    cells only (every feature is the cell's own): the same rows as building them for every
    land cell and selecting, at the cost of the kept cells."""
    days = pd.DatetimeIndex(target["time"].values)
    first, last = days[0].date(), days[-1].date()
    era5 = load_era5(store, first, last, rows=rows)
    history = first - timedelta(days=spec.history_days - 1)
    precip = load_series(store, "mswep", "precipitation", history, last, rows=rows)
    land = np.asarray(static["land"].values, dtype=bool)
    kept = np.zeros(land.size, dtype=bool)
    kept[np.flatnonzero(land.ravel())[keep]] = True
    only = static.assign(land=(static["land"].dims, kept.reshape(land.shape)))
    fm = build_features(spec, days, era5=era5, precip=precip, static=only, state=state)
    y = target.values.reshape(len(days), -1)[:, fm.cells]
    return fm, np.ascontiguousarray(y, dtype=np.float32)


def block_args(
    label: xr.DataArray, days: pd.DatetimeIndex, chunk_days: int
) -> Iterator[tuple[xr.DataArray, xr.DataArray]]:
    """(state, target) label slices of each block of ``chunk_days`` days (:func:`matrix_block`),
    each made when it is asked for (a block's slices are copies)."""
    return ((lagged(label, b), label.sel(time=b)) for b in _blocks(days, max(1, chunk_days)))


def join_blocks(
    parts: Sequence[tuple[FeatureMatrix, npt.NDArray[np.float32]]],
) -> tuple[FeatureMatrix, npt.NDArray[np.float32]]:
    """The blocks of consecutive days as one matrix (day-major rows stay day-major)."""
    fm0 = parts[0][0]
    if len(parts) == 1:
        return parts[0]
    values = np.concatenate([fm.values for fm, _ in parts])
    days = pd.DatetimeIndex(np.concatenate([fm.days.values for fm, _ in parts]))
    y = np.concatenate([y for _, y in parts])
    joined = FeatureMatrix(
        values, fm0.names, days, fm0.cells, fm0.shape, fm0.lat, fm0.lon, fm0.upper
    )
    return joined, y


def training_matrix(
    store: Store,
    spec: FeatureSpec,
    label: xr.DataArray,
    static: xr.Dataset,
    days: pd.DatetimeIndex,
    *,
    cells: Mask | None = None,
    chunk_days: int | None = None,
) -> tuple[FeatureMatrix, npt.NDArray[np.float32]]:
    """Teacher-forced features of ``days`` and their labels (n_days, n_cells), over the land
    cells that have a label on some day (and, if given, where ``cells`` (land cells,) is true).

    With ``chunk_days`` the features are built ``chunk_days`` days at a time and only the kept
    cells of each block are held: the peak is the kept rows plus one block of the region, the
    same matrix as in one piece."""
    keep = labelled_cells(label, static, days)
    if cells is not None:
        keep &= np.asarray(cells, dtype=bool)
        if not keep.any():
            raise ConfigError("no labelled land cell is among the sampled cells")
    parts = [
        matrix_block(store, spec, state, target, static, keep)
        for state, target in block_args(label, days, chunk_days or len(days))
    ]
    return join_blocks(parts)


def smap_rows(fm: FeatureMatrix, smap: xr.DataArray) -> npt.NDArray[np.float32]:
    """The staged SMAP of the matrix's days and cells, (days, cells)."""
    values = smap.sel(time=fm.days).values.reshape(len(fm.days), -1)[:, fm.cells]
    return np.asarray(values, dtype=np.float32)


def cdf_tables(
    bundle: ModelBundle, fm: FeatureMatrix, smap: xr.DataArray, min_samples: int
) -> CdfTables:
    """CDF tables of SMAP against the final model run free over the matrix's days."""
    free = rollout(bundle.predict, fm)
    return fit_cdf(free, smap_rows(fm, smap), fm.cell_ids, min_samples=min_samples)


def nudging_gain(
    fm: FeatureMatrix,
    folds: FoldModels,
    smap: npt.NDArray[np.float32],
    cdf: CdfTables,
    tc: xr.Dataset,
    products: Sequence[str],
) -> GainField:
    """The gain from held-out cycles (:func:`smda.science.gain.estimate_gain`) against the
    staged SMAP of the matrix's days and cells ``smap`` (:func:`smap_rows`), with SMAP's TC
    error variance where TC was valid (``tc``: the merge's per-pixel statistics)."""
    err_var = np.full(fm.n_cells, np.nan)
    if "smap" in products:
        i = list(products).index("smap")
        var = np.where(tc["valid"].values, tc["err_var"].values[i], np.nan)
        err_var = np.asarray(var, dtype=np.float64).reshape(-1)[fm.cells]
    return estimate_gain(fm, folds.folds, folds.predictors, smap, cdf, err_var)


def staged_digest(store: Store, source: str, days: Sequence[date]) -> str | None:
    """SHA-256 over the ledger digests of the staged ``days`` of ``source`` (None if none)."""
    ledger = store.ledger(source)
    h = hashlib.sha256()
    found = False
    for day in days:
        record = ledger.get(day)
        if record is not None and store.staged_path(source, day).exists():
            h.update(f"{day} {record.sha256}\n".encode())
            found = True
    return h.hexdigest() if found else None


def input_hashes(
    store: Store, products: Sequence[str], start: date, end: date, history_days: int
) -> dict[str, str]:
    period = pd.date_range(start, end).date.tolist()
    target = period[1:]
    window = pd.date_range(target[0] - timedelta(days=history_days - 1), end).date.tolist()
    used = {"era5": target, "mswep": window, **{p: period for p in products}}
    if "smap" not in used:
        used["smap"] = target
    hashes = {f"staged/{s}": staged_digest(store, s, days) for s, days in used.items()}
    static = static_version(store)
    if static is not None:
        hashes[f"static/{STATIC}"] = static["sha256"]
    return {k: v for k, v in hashes.items() if v is not None}
