"""Shared fixtures: the real producer samples and a running offline twin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real producer files (../shared/data/real), present on every developer machine and in CI."""
    if not REAL.is_dir():
        pytest.fail(
            f"real producer samples not found at {REAL}: check out ../shared beside the repository"
        )
    return REAL


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[object]:
    """A running offline twin over a small region, today 2024-07-20."""
    from smda.geo.grid import BBox
    from smda_twin.service import Twin, TwinConfig
    from smda_twin.world import WorldSpec

    config = TwinConfig(
        world=WorldSpec(seed=7, region=BBox(-100, 35, -99, 36), epoch=date(2024, 1, 1)),
        today=date(2024, 7, 20),
    )
    with Twin(config, tmp_path / "twin") as running:
        yield running
