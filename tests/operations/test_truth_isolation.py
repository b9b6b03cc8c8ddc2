"""Only scoring reads the twin's truth: training and the daily cycle give the same bytes when
every truth accessor of the twin is poisoned after the products were staged."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import TINY_TRAINING, TRAIN_OPTIONS
from staged_world import stage_world, tiny_world

from smda.cli.twin import truth_of
from smda.config import Settings
from smda.ops import backfill_days, open_runtime
from smda.ops.train import train_from_store
from smda_twin.waterbalance import TruthModel
from smda_twin.world import World

TRAIN = (date(2015, 4, 1), date(2015, 5, 31))
RUN = (date(2015, 6, 1), date(2015, 6, 6))
POISONED = {
    World: ("truth", "root_zone", "snow", "true_forcing", "true_skill", "soil_properties"),
    TruthModel: ("series", "stations", "forcing"),
}


def _poison(name: str) -> Callable[..., Any]:
    def read(*_: object, **__: object) -> Any:
        raise AssertionError(f"the twin's truth was read ({name})")

    return read


def _train_and_run(root: Path, world: World) -> tuple[str, dict[str, str]]:
    """Train on the staged store, backfill RUN; the model version and every output's digest."""
    rt = open_runtime(
        Settings(data_dir=root, spinup_days=3), region=world.spec.region, today=date(2015, 7, 1)
    )
    outcome = train_from_store(rt.store, *TRAIN, config=TINY_TRAINING, **TRAIN_OPTIONS)
    rt.registry.register(outcome.bundle)
    runs = backfill_days(rt, RUN[0], RUN[1])
    assert [r.status for r in runs] and all(r.status != "failed" for r in runs)
    outputs = {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for base in (Path(rt.chain.url), rt.publisher.root)
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }
    return outcome.bundle.version, outputs


def test_training_and_the_cycle_never_read_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = tiny_world()
    rt = open_runtime(Settings(data_dir=tmp_path / "clean"), region=world.spec.region)
    stage_world(rt.store, world, TRAIN[0], RUN[1])
    shutil.copytree(tmp_path / "clean", tmp_path / "poisoned")
    clean = _train_and_run(tmp_path / "clean", world)
    for owner, names in POISONED.items():
        for name in names:
            monkeypatch.setattr(owner, name, _poison(name))
    poisoned = _train_and_run(tmp_path / "poisoned", world)
    assert poisoned[0] == clean[0], "the model does not depend on the truth"
    assert poisoned[1] == clean[1] and len(clean[1]) > 2 * (RUN[1] - RUN[0]).days
    # the poison is real: scoring (smda evaluate's reference) does read the truth
    with pytest.raises(AssertionError, match="truth was read"):
        truth_of(world.spec.seed, world.spec.region, *RUN, epoch=world.spec.epoch)
