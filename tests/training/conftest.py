"""Fixtures for the training tests: a staged twin world and a model trained from it (shared
by the session; tests must not modify them — stage their own store for that)."""

from __future__ import annotations

from pathlib import Path

import pytest
from staged_world import StagedWorld, stage_world, tiny_world
from training_helpers import AFTER, END, FAST, MIN_N, START

from smda.ops.train import TrainOutcome, train_from_store
from smda.storage.store import Store
from smda_twin.world import World


@pytest.fixture(scope="session")
def world() -> World:
    return tiny_world()


@pytest.fixture(scope="session")
def staged(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, StagedWorld]:
    store = Store(tmp_path_factory.mktemp("training") / "data", world.grid)
    return store, stage_world(store, world, START, AFTER)


@pytest.fixture(scope="session")
def store(staged: tuple[Store, StagedWorld]) -> Store:
    return staged[0]


@pytest.fixture(scope="session")
def outcome(store: Store) -> TrainOutcome:
    return train_from_store(store, START, END, config=FAST, min_n=MIN_N)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
