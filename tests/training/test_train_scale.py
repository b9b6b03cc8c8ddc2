"""Training that scales out (smda.ops.train_scale): the chunked matrix, the Dask path on a real
LocalCluster (two worker processes) and on a real `dask scheduler` + two `dask worker`
processes on loopback, the seeded row-budget sampling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from monitoring_stack import free_port, stop_group
from staged_world import TINY_TRAINING, stage_world
from training_helpers import END, MIN_N, START
from typer.testing import CliRunner

import smda
from smda.cli.train import train
from smda.ops.train import TrainOutcome, train_from_store
from smda.ops.train_data import label_instrument, merge, training_matrix
from smda.ops.train_scale import ScaleOptions, row_bands
from smda.science.features import FeatureSpec
from smda.storage.inputs import load_static
from smda.storage.registry import ModelRegistry
from smda.storage.store import Store
from smda_twin.world import World

ROOT = Path(smda.__file__).resolve().parent.parent


def _labels(store: Store) -> tuple[Any, Any, pd.DatetimeIndex]:
    spec = FeatureSpec()
    instrument = label_instrument(store, spec, START, END)
    merged, _ = merge(store, ("smap", "era5land", "gldas"), "smap", (START, END), MIN_N, instrument)
    days = pd.date_range(START + pd.Timedelta(days=1), END)
    return merged.label, load_static(store), days


def test_chunked_matrix_is_the_in_memory_matrix(store: Store) -> None:
    label, static, days = _labels(store)
    spec = FeatureSpec()
    whole, y = training_matrix(store, spec, label, static, days)
    for chunk in (1, 7, 30):
        part, y_part = training_matrix(store, spec, label, static, days, chunk_days=chunk)
        assert np.array_equal(part.values, whole.values, equal_nan=True)
        assert np.array_equal(y_part, y, equal_nan=True)
        assert part.days.equals(whole.days) and np.array_equal(part.cells, whole.cells)
    cells = np.arange(whole.n_cells) % 3 == 0  # a subset of the cells: the same columns
    sub, y_sub = training_matrix(store, spec, label, static, days, cells=cells, chunk_days=9)
    assert np.array_equal(sub.values, whole.select(cells).values, equal_nan=True)
    assert np.array_equal(y_sub, y[:, cells], equal_nan=True)


def _scaled(store: Store, work: Path, **options: Any) -> TrainOutcome:
    scale = ScaleOptions(chunk_days=10, tile_cells=5, work_dir=work, **options)
    return train_from_store(store, START, END, config=TINY_TRAINING, min_n=MIN_N, scale=scale)


@pytest.mark.slow
def test_dask_path_without_budget_is_the_in_memory_model(store: Store, tmp_path: Path) -> None:
    memory = train_from_store(store, START, END, config=TINY_TRAINING, min_n=MIN_N)
    scaled = _scaled(store, tmp_path)  # a LocalCluster: one worker process per core
    assert scaled.bundle.model == memory.bundle.model
    assert scaled.bundle.cv_report == memory.bundle.cv_report
    a, b = scaled.bundle.cdf, memory.bundle.cdf
    assert a is not None and b is not None
    assert np.array_equal(a.cell_ids, b.cell_ids) and np.array_equal(a.n, b.n)
    np.testing.assert_allclose(a.model, b.model, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.obs, b.obs)
    assert scaled.tc["sampling"]["fraction"] == 1.0 and scaled.cells == memory.cells
    # the label flags, TC summary and gain from the bands' summaries are the whole merge's
    assert scaled.labels == memory.labels and scaled.gain == memory.gain
    assert {k: v for k, v in scaled.tc.items() if k != "sampling"} == memory.tc
    g, h = scaled.bundle.gain, memory.bundle.gain
    assert g is not None and h is not None and g.default == h.default
    assert np.array_equal(g.cell_ids, h.cell_ids) and np.array_equal(g.values, h.values)


@pytest.mark.slow
def test_row_budget_sampling_is_reproducible_and_valid(store: Store, tmp_path: Path) -> None:
    full = train_from_store(store, START, END, config=TINY_TRAINING, min_n=MIN_N)
    budget = full.cells * full.days // 2
    first, again = (
        _scaled(store, tmp_path, row_budget=budget, seed=3),
        _scaled(store, tmp_path, row_budget=budget, seed=3),
    )
    sampling = first.tc["sampling"]
    assert sampling == again.tc["sampling"] and first.bundle.model == again.bundle.model
    assert 2 <= first.cells < full.cells and sampling["rows"] == first.cells * first.days
    assert sampling["labelled_cells"] == full.cells and sampling["seed"] == 3
    other = _scaled(store, tmp_path, row_budget=budget, seed=4)
    assert other.tc["sampling"]["cells"] != first.cells or other.bundle.model != first.bundle.model
    report = first.bundle.cv_report["blocked"]
    assert report["cells"] == first.cells and np.isfinite(report["free_running"]["r"])
    cdf, full_cdf = first.bundle.cdf, full.bundle.cdf
    assert cdf is not None and full_cdf is not None  # every labelled cell gets its table
    assert np.array_equal(cdf.cell_ids, full_cdf.cell_ids)
    rows = np.zeros((3, len(first.bundle.feature_names)), np.float32) + 0.2
    assert np.all(np.isfinite(first.bundle.predict(rows)))


@pytest.fixture
def dask_cluster() -> Iterator[tuple[str, str]]:
    """A `dask scheduler` and two single-threaded `dask worker` processes on loopback."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    scheduler = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker"]
    procs = [
        subprocess.Popen(
            [*scheduler, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [*worker, address, "--nthreads", "1", "--nworkers", "1",
                     "--host", "127.0.0.1", "--dashboard-address", ":0"],
                    env=env,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        from distributed import Client

        deadline = time.monotonic() + 60
        with Client(address, timeout="30s") as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "the dask workers did not start"
                time.sleep(0.5)
        yield address, str(ROOT)
    finally:
        for proc in reversed(procs):
            stop_group(proc)


@pytest.mark.slow
def test_cli_trains_on_a_dask_scheduler(
    dask_cluster: tuple[str, str], data_dir: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, _ = dask_cluster
    store = Store(data_dir, world.grid)
    stage_world(store, world, date_of("2015-05-01"), date_of("2015-06-15"))
    monkeypatch.setenv("SMDA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SMDA_REGION", "-100,35,-99,36")
    monkeypatch.setenv("SMDA_DASK_SCHEDULER", address)
    app = typer.Typer()
    app.command("train")(train)
    app.callback()(lambda: None)
    args = ["train", "--start", "2015-05-01", "--end", "2015-06-15", "--min-n=20", "--folds=4",
            "--block-deg=0.5", "--learning-rate=0.1", "--num-leaves=7", "--max-rounds=40",
            "--min-data-in-leaf=20", "--dagger-rounds=0", "--threads=1", "--no-compare-random",
            "--row-budget=400", "--sample-seed=1"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "- Sampled: " in result.output and "budget 400, seed 1" in result.output
    registry = ModelRegistry(data_dir / "models" / store.region)
    bundle = registry.current()
    sampling = bundle.tc_stats["sampling"]
    assert sampling["cells"] < sampling["labelled_cells"] and sampling["fraction"] < 1.0
    assert sampling["rows"] == sampling["cells"] * bundle.cv_report["blocked"]["days"]
    from distributed import Client

    with Client(address) as client:  # the blocks and the tiles ran on the scheduler's workers
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
        )
    assert {"block", "band_tables", "merge_band", "band_series"} <= set(prefixes)
    bad = CliRunner().invoke(app, [*args[:5], "--dask-scheduler", "tcp://127.0.0.1:1"])
    assert bad.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in (
        bad.output
    )


def date_of(text: str) -> Any:
    return pd.Timestamp(text).date()


def test_row_bands_cover_the_grid_in_bands_of_about_the_tile_size() -> None:
    land = np.ones((6, 4), dtype=bool)
    land[0, :2] = False  # 22 land cells
    labelled = np.ones(22, dtype=bool)
    labelled[:3] = False  # rows 0-1 hold 1 + 2 labelled cells
    bands = row_bands(land, labelled, tile_cells=5)
    assert bands == [slice(0, 3), slice(3, 5), slice(5, 6)]
    assert row_bands(land, labelled, tile_cells=100) == [slice(0, 6)]
