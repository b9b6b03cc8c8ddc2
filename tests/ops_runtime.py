"""A runtime over a tiny staged twin world with a registered model (tests of :mod:`smda.ops`).

The fixtures ``world``, ``template`` and ``rt`` of ``tests/operations/conftest.py`` use it;
:func:`digests` fingerprints everything a run writes (state chain and products).
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from staged_world import TINY_TRAINING, stage_world

from smda.config import Settings
from smda.ops import Runtime, open_runtime
from smda.ops.train import train_from_store
from smda_twin.world import World

TRAIN = (date(2015, 4, 1), date(2015, 6, 10))
RUN = date(2015, 6, 11)
LAST = date(2015, 6, 16)


def runtime_for(data_dir: Path, world: World, **settings: object) -> Runtime:
    """The runtime of ``world``'s region over ``data_dir`` (spin-up 3 days)."""
    s = Settings(data_dir=data_dir, spinup_days=3, **settings)  # type: ignore[arg-type]
    return open_runtime(s, region=world.spec.region, today=date(2015, 7, 1))


def make_template(root: Path, world: World) -> Path:
    """Stage ``world`` up to :data:`LAST` under ``root`` and register a tiny model on it."""
    rt = runtime_for(root, world)
    stage_world(rt.store, world, TRAIN[0], LAST)
    outcome = train_from_store(rt.store, *TRAIN, config=TINY_TRAINING, min_n=20)
    rt.registry.register(outcome.bundle)
    return root


def digests(rt: Runtime) -> dict[str, str]:
    """SHA-256 of every state and product file."""
    roots = [Path(rt.chain.url), rt.publisher.root]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }
