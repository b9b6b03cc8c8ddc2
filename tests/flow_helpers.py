"""Helpers for the flow tests (``tests/flows``): the test world's calendar, twins, hashes, artifacts.

The world: seed 7, the 1° × 1° all-land :data:`staged_world.TINY_REGION` (4 × 4 cells), products
from 2024-01-01. Its calendar (the twin's default latencies: ERA5 5 days, SMAP 2, MSWEP 0)::

    2024-03-01 … 04-30   TRAIN: labels + forcings staged, the test model is trained on them
    … 2024-05-10         HISTORY_END (H): every operational input staged (no HTTP needed)
    05-06 … 05-10        CHAIN: the state chain of the daily tests (cold start with SPINUP days)
    twin today = H + 5 + k  → ERA5 is published up to H + k: k days ready for the daily run
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from staged_world import TINY_REGION
from staged_world import TINY_TRAINING as BASE_TINY

from smda.config import Settings
from smda.ops import Runtime, open_runtime
from smda.science.model import CVConfig
from smda_twin.clock import Latencies
from smda_twin.service import Twin, TwinConfig
from smda_twin.world import WorldSpec

__all__ = [
    "CHAIN",
    "EPOCH",
    "HISTORY_END",
    "REGION",
    "SEED",
    "SPINUP",
    "TINY_TRAINING",
    "TRAIN",
    "TRAIN_OPTIONS",
    "FlowWorld",
    "Trained",
    "artifacts_of",
    "copy_data",
    "hash_outputs",
    "runtime",
    "smda_environment",
    "start_twin",
    "today_for",
]

REGION = "-100,35,-99,36"
"""The region as ``SMDA_REGION`` (west,south,east,north) = :data:`staged_world.TINY_REGION`."""
SEED = 7
EPOCH = date(2024, 1, 1)
TRAIN = (date(2024, 3, 1), date(2024, 4, 30))
HISTORY_END = date(2024, 5, 10)
CHAIN = (date(2024, 5, 6), HISTORY_END)
SPINUP = 3
"""``SMDA_SPINUP_DAYS`` of the tests (cold starts cycle 3 days)."""
TINY_TRAINING = replace(BASE_TINY, cv=CVConfig(n_folds=3, scheme="random"), dagger_rounds=1)
"""The tests' tiny model (tests/staged_world.py) as the train flow tests run it: random folds
(their report is checked) and a DAgger round."""
TRAIN_OPTIONS = {"min_n": 30, "cdf_min_samples": 10}
"""Options of the train flow for the short ``TRAIN`` period."""


@dataclass(frozen=True)
class Trained:
    """The inputs template and the train flow run that made its model."""

    data: Path
    version: str
    flow_run_id: UUID


@dataclass
class FlowWorld:
    """A private data directory and the twin the flows of one test talk to."""

    data: Path
    twin: Twin

    def advance(self, days: int) -> date:
        """Move the providers' clock forward (what they have published grows)."""
        return self.twin.clock.advance(days)


def today_for(last_ready: date, latencies: Latencies | None = None) -> date:
    """The twin's today at which ERA5 (the latest required input) is published up to
    ``last_ready``."""
    return last_ready + timedelta(days=(latencies or Latencies()).era5)


def start_twin(
    endpoints: Path, today: date, latencies: Latencies | None = None, *, replicas: Path
) -> Twin:
    """A running twin of the test world (stop it when done), described in ``endpoints``.

    ``replicas`` is where the replicas keep the files they generate: twins of the same world
    may share it (files are named by day and revision), which saves regenerating them.
    """
    config = TwinConfig(
        world=WorldSpec(seed=SEED, region=TINY_REGION, epoch=EPOCH),
        today=today,
        latencies=latencies or Latencies(),
    )
    twin = Twin(config, replicas).start()
    twin.endpoints().write(endpoints)
    return twin


def smda_environment(data_dir: Path, endpoints: Path | None) -> dict[str, str]:
    """The ``SMDA_*`` variables a flow run (or a worker) needs for the test world."""
    env = {
        "SMDA_DATA_DIR": str(data_dir),
        "SMDA_REGION": REGION,
        "SMDA_SPINUP_DAYS": str(SPINUP),
        "SMDA_LOG_LEVEL": "INFO",
    }
    if endpoints is not None:
        env["SMDA_ENDPOINTS"] = str(endpoints)
    return env


def runtime(data_dir: Path, today: date) -> Runtime:
    """The run-time objects of a test data directory (no twin needed: ``today`` is given)."""
    return open_runtime(Settings(data_dir=data_dir, spinup_days=SPINUP), region=REGION, today=today)


def copy_data(template: Path, target: Path, *, outputs: bool = True) -> Path:
    """A private copy of a prepared data directory (without the state chain and the products
    unless ``outputs``)."""
    ignore = None if outputs else shutil.ignore_patterns("state", "products")
    shutil.copytree(template, target, ignore=ignore)
    return target


def hash_outputs(data_dir: Path) -> dict[str, str]:
    """SHA-256 of every file the runs produce (state chain and published products), by path."""
    out = {}
    for folder in ("state", "products"):
        root = data_dir / folder
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(path.relative_to(data_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def artifacts_of(flow_run_id: UUID) -> dict[str, Any]:
    """The artifacts of a flow run by the last part of their key (``summary``, ``validation``,
    ``products``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key.rsplit("-", 1)[-1]: a for a in found if a.key}
