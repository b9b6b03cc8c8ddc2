"""``python -m benchmarks global-year``: the day-by-day staging behind it, on a tiny region
(the training it then runs is :func:`smda.ops.train.train_from_store` at scale, tested in
tests/operations)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from benchmarks.global_year import FIRST, HISTORY_DAYS, main, stage
from smda.geo.grid import BBox
from smda.storage.store import Store
from smda_twin.world import World, WorldSpec

TINY = BBox(-100.0, 35.0, -99.5, 35.5)


def test_an_unknown_option_is_refused_before_any_staging() -> None:
    with pytest.raises(SystemExit, match="unknown option"):
        main(["--size=8"])
    with pytest.raises(SystemExit, match="unknown option"):
        main(["--train-only"])


def test_stages_each_day_with_its_precipitation_history_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "year"
    assert stage(3, root, TINY) == HISTORY_DAYS + 2  # 29 days of MSWEP alone, then 3 full
    store = Store(root, World(WorldSpec(region=TINY)).grid)
    days = [FIRST + timedelta(days=i) for i in range(3)]
    for source in ("era5", "smap", "era5land", "gldas"):
        assert store.staged_days(source) == days
    history = [FIRST - timedelta(days=HISTORY_DAYS - 1 - i) for i in range(HISTORY_DAYS)]
    assert store.staged_days("mswep") == [*history, *days[1:]]
    assert store.static_path("era5_static").exists()
    written = {p: p.stat().st_mtime_ns for p in (root / "staged").rglob("*.nc")}
    assert stage(4, root, TINY) == 1  # a rerun stages only the day it lacks
    assert all(p.stat().st_mtime_ns == t for p, t in written.items())
    again = Store(root, store.grid)
    assert again.staged_days("gldas")[-1] == FIRST + timedelta(days=3)
