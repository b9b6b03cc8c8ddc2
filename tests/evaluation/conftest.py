"""Fixtures of the evaluation tests: a staged tiny twin world, a tiny model trained from it,
and the experiments of a two-month period (shared by the session; tests must not modify
them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from evaluation_helpers import FAST, GAIN, PERIOD, SPINUP, STAGED, TRAIN
from staged_world import stage_world, tiny_world

from smda.ops.evaluate import run_experiments
from smda.ops.train import train_from_store
from smda.science.bundle import ModelBundle
from smda.storage.store import Store
from smda_twin.world import World


@pytest.fixture(scope="session")
def world() -> World:
    return tiny_world()


@pytest.fixture(scope="session")
def store(world: World, tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("evaluation") / "data", world.grid)
    stage_world(store, world, *STAGED)
    return store


@pytest.fixture(scope="session")
def bundle(store: Store) -> ModelBundle:
    return train_from_store(store, *TRAIN, config=FAST, min_n=20).bundle


@pytest.fixture(scope="session")
def experiments(store: Store, bundle: ModelBundle) -> xr.Dataset:
    return run_experiments(store, bundle, *PERIOD, gain=GAIN, spinup_days=SPINUP)


@pytest.fixture(scope="session")
def hawaii_series(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Hawaii products of 2017–2018 gridded to 0.25° (evaluation_helpers), as netCDF."""
    from evaluation_helpers import hawaii_grid_series

    path = tmp_path_factory.mktemp("hawaii") / "hawaii_products.nc"
    hawaii_grid_series(real_data).to_netcdf(path)
    return path
