"""Fixtures for ingest tests: a running twin and an ingest context pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from ingest_helpers import TODAY, context

from smda.geo.grid import BBox
from smda.ingest.sources.base import IngestContext
from smda_twin.service import Twin, TwinConfig
from smda_twin.world import WorldSpec


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    config = TwinConfig(
        world=WorldSpec(seed=11, region=BBox(-101, 34, -98, 37), epoch=date(2024, 1, 1)),
        today=TODAY,
    )
    with Twin(config, tmp_path / "twin") as running:
        yield running


@pytest.fixture
def ctx(twin: Twin, tmp_path: Path) -> IngestContext:
    return context(twin, tmp_path / "data")
