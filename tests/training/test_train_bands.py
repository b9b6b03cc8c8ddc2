"""The label merge in bands of grid rows (smda.ops.train_bands): each band's merge is the band
of the whole grid's merge, bit for bit; its files are reused for the same inputs; the client
gets the kept cells' series and per-pixel summaries only."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client
from training_helpers import END, MIN_N, START

from smda.ops.train_bands import (
    STALE_AFTER,
    TC_FIELDS,
    kept_series,
    merge_bands,
    prune_label_folders,
)
from smda.ops.train_data import input_hashes, label_instrument, labelled_cells, merge
from smda.ops.train_scale import row_bands
from smda.ops.train_summary import label_summary, tc_summary
from smda.science.features import FeatureSpec
from smda.storage.inputs import load_static
from smda.storage.store import Store

PRODUCTS = ["smap", "era5land", "gldas"]
DAYS = pd.date_range(START + pd.Timedelta(days=1), END)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


def _bands(client: Client, store: Store, work: Path, hashes: dict[str, str]) -> object:
    static = load_static(store)
    land = np.asarray(static["land"].values, dtype=bool)
    bands = row_bands(land, np.ones(int(land.sum()), bool), tile_cells=3)  # one row each
    assert len(bands) == land.shape[0] > 1
    return merge_bands(
        client, store, FeatureSpec(), PRODUCTS, "smap", (START, END), MIN_N, static, DAYS,
        hashes, bands, work,
    )  # fmt: skip


def test_band_merge_is_the_whole_grid_merge_bit_for_bit(
    client: Client, store: Store, tmp_path: Path
) -> None:
    spec = FeatureSpec()
    instrument = label_instrument(store, spec, START, END)
    whole, smap = merge(store, PRODUCTS, "smap", (START, END), MIN_N, instrument)
    hashes = input_hashes(store, PRODUCTS, START, END, spec.history_days)
    labels = _bands(client, store, tmp_path, hashes)
    files = [xr.load_dataset(b.path) for b in labels.bands]
    label = xr.concat([f["label"] for f in files], "lat")
    band_smap = xr.concat([f["smap"] for f in files], "lat")
    assert label.shape == whole.label.shape
    np.testing.assert_array_equal(label.values, whole.label.values)  # NaN where NaN, exactly
    np.testing.assert_array_equal(band_smap.values, smap.values)
    np.testing.assert_array_equal(labels.flag.values, whole.flag.values)
    for name in TC_FIELDS:
        np.testing.assert_array_equal(labels.tc[name].values, whole.tc[name].values)
    assert np.isfinite(whole.label.values).any() and whole.tc["valid"].values.any()
    static = load_static(store)
    land = np.asarray(static["land"].values, dtype=bool)
    assert np.array_equal(labels.labelled, labelled_cells(whole.label, static, DAYS))
    # the summaries the bundle records are the in-memory path's
    assert label_summary(labels.flag, land) == label_summary(whole.flag, land)
    assert tc_summary(labels.tc, land, PRODUCTS, MIN_N) == tc_summary(
        whole.tc, land, PRODUCTS, MIN_N
    )
    # the kept cells' series, in land-cell order
    kept = np.arange(land.sum()) % 3 == 1
    series, kept_smap = kept_series(client, labels, land, kept, DAYS)
    flat = np.flatnonzero(land.ravel())[kept]
    n_period = len(whole.label["time"])
    np.testing.assert_array_equal(series, whole.label.values.reshape(n_period, -1)[:, flat])
    expect = smap.sel(time=DAYS).values.reshape(len(DAYS), -1)[:, flat]
    np.testing.assert_array_equal(kept_smap, expect)


def test_band_files_are_reused_for_the_same_inputs_only(
    client: Client, store: Store, tmp_path: Path
) -> None:
    hashes = input_hashes(store, PRODUCTS, START, END, FeatureSpec().history_days)
    first = _bands(client, store, tmp_path, hashes)
    stamps = {b.path: b.path.stat().st_mtime_ns for b in first.bands}
    again = _bands(client, store, tmp_path, hashes)
    assert [b.path for b in again.bands] == list(stamps)
    assert {b.path: b.path.stat().st_mtime_ns for b in again.bands} == stamps  # not rewritten
    changed = _bands(client, store, tmp_path, {**hashes, "staged/smap": "another file"})
    assert changed.bands[0].path.parent != first.bands[0].path.parent
    assert not list(tmp_path.rglob("*.part"))  # written atomically, nothing left over


def test_a_merge_removes_the_label_folders_no_training_used_for_a_week(
    client: Client, store: Store, tmp_path: Path
) -> None:
    stale, young = tmp_path / ("0" * 24), tmp_path / ("1" * 24)
    for folder, idle in ((stale, STALE_AFTER + 3600), (young, STALE_AFTER - 3600)):
        folder.mkdir()
        (folder / "rows-00000-00001.nc").write_bytes(b"a band")
        then = time.time() - idle
        os.utime(folder, (then, then))
    hashes = input_hashes(store, PRODUCTS, START, END, FeatureSpec().history_days)
    labels = _bands(client, store, tmp_path, hashes)
    current = labels.bands[0].path.parent
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, young.name])
    # a merge that reuses a folder marks it as used, however old its files
    old = time.time() - 2 * STALE_AFTER
    os.utime(current, (old, old))
    _bands(client, store, tmp_path, hashes)
    assert current.stat().st_mtime > time.time() - 600
    assert prune_label_folders(tmp_path, young, now=time.time() + 2 * STALE_AFTER) == [current]
    assert [p.name for p in tmp_path.iterdir()] == [young.name]
