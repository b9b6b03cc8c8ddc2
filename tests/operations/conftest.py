"""Fixtures of the operations tests: a tiny staged world with a model (tests/ops_runtime.py).

The template is built once per session (per pytest-xdist worker) and never modified: tests get
private copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ops_runtime import make_template, runtime_for
from staged_world import tiny_world

from smda.ops import Runtime
from smda_twin.world import World


@pytest.fixture(scope="session")
def world() -> World:
    return tiny_world()


@pytest.fixture(scope="session")
def template(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with staged inputs and a registered model (tests copy it, never write to it)."""
    return make_template(tmp_path_factory.mktemp("ops") / "data", world)


@pytest.fixture
def rt(template: Path, world: World, tmp_path: Path) -> Runtime:
    shutil.copytree(template, tmp_path / "data")
    return runtime_for(tmp_path / "data", world)
