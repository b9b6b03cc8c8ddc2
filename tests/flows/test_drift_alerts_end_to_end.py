"""Drift alerts fire on the real components when the twin's products degrade.

A 3° × 3° world (144 cells: enough innovations a day for the drift alerts' ≥ 100 guard), its
model trained on March–early April, its chain cold-started before the test. Daily flow runs
fetch each new day from the twin, push to a real Pushgateway, a real Prometheus evaluates
``monitoring/alerts.yml`` (``for:`` removed, see :mod:`monitoring_stack`) and a real
Alertmanager delivers to the test's webhook::

    1. two healthy days                                   → no alert
    2. SMAP calibration bias +0.08 m3 m-3 from the next day (twin scenario ``smap_bias``)
                                                          → SmdaInnovationMeanDrift
    3. ERA5 2 m temperature +12 K from the next day, SMAP back to normal (``era5_shift``)
                                                          → SmdaFeatureDrift
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import EPOCH, SEED, SPINUP, smda_environment, today_for
from monitoring_stack import MonitoringStack, missing_binaries, monitoring_stack
from staged_world import TINY_TRAINING, stage_world

from flows.daily import daily
from smda.config import Settings
from smda.geo.grid import BBox
from smda.ops import backfill_days, open_runtime, train_model
from smda.science.model import CVConfig
from smda.storage.store import Store
from smda_twin.scenario import Scenario
from smda_twin.service import Twin, TwinConfig
from smda_twin.world import World, WorldSpec

pytestmark = pytest.mark.slow

REGION = BBox(-101.0, 34.0, -98.0, 37.0)
TRAIN = (date(2024, 3, 1), date(2024, 4, 10))
CHAIN_END = date(2024, 4, 18)
"""The chain is cold-started on ``TRAIN[1] + 1 … CHAIN_END``; the daily runs start the day after."""
HEALTHY = [CHAIN_END + timedelta(days=i) for i in (1, 2)]
BIASED = CHAIN_END + timedelta(days=3)
SHIFTED = CHAIN_END + timedelta(days=4)


@dataclass
class Story:
    states: dict[str, Any] = field(default_factory=dict)
    quiet: list[dict[str, Any]] = field(default_factory=list)
    received_after_healthy: set[str] = field(default_factory=set)
    fired: dict[str, dict[str, float]] = field(default_factory=dict)
    innovations: dict[str, tuple[float, int]] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)


def _prepare(data: Path) -> None:
    """Stage the inputs up to the chain's end, train the model, cold-start the chain."""
    world = World(WorldSpec(seed=SEED, region=REGION, epoch=EPOCH))
    stage_world(Store(data, world.grid), world, TRAIN[0], CHAIN_END)
    rt = open_runtime(Settings(data_dir=data, spinup_days=SPINUP), region=REGION, today=CHAIN_END)
    config = replace(TINY_TRAINING, cv=CVConfig(n_folds=3, block_deg=1.0))
    train_model(rt, *TRAIN, config=config, min_n=20, cdf_min_samples=10)
    backfill_days(rt, TRAIN[1] + timedelta(days=1), CHAIN_END)


def _record(story: Story, step: str, stack: MonitoringStack) -> float:
    state = daily(return_state=True)
    story.states[step] = state
    ended = time.time()
    runs = [r for r in state.result() if r.status != "skipped"] if state.is_completed() else []
    if runs:
        story.innovations[step] = (runs[-1].innovation_mean, runs[-1].n_obs)
        story.drift[step] = runs[-1].feature_drift
    return ended


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Story:
    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `bash .ci/system-deps.sh` as root")
    work = tmp_path_factory.mktemp("drift")
    data = work / "data"
    _prepare(data)
    config = TwinConfig(
        world=WorldSpec(seed=SEED, region=REGION, epoch=EPOCH), today=today_for(HEALTHY[0])
    )
    twin = Twin(config, work / "replicas").start()
    twin.endpoints().write(work / "endpoints.json")
    story = Story()
    try:
        with monitoring_stack(work / "stack") as stack, pytest.MonkeyPatch.context() as mp:
            for key, value in smda_environment(data, work / "endpoints.json").items():
                mp.setenv(key, value)
            mp.setenv("SMDA_REGION", str(REGION))
            mp.setenv("SMDA_PUSHGATEWAY", stack.pushgateway)
            _sequence(story, stack, twin)
    finally:
        twin.stop()
    return story


def _sequence(story: Story, stack: MonitoringStack, twin: Twin) -> None:
    for i, _ in enumerate(HEALTHY):
        if i:
            twin.clock.advance(1)
        _record(story, f"healthy {i}", stack)
    stack.settle()
    story.quiet = stack.firing()
    story.received_after_healthy = stack.received.names()

    twin.set_scenario(
        Scenario.from_json([{"kind": "smap_bias", "start": str(BIASED), "bias": 0.08}])
    )
    twin.clock.advance(1)
    ended = _record(story, "smap biased", stack)
    story.fired["smap biased"] = stack.wait_for({"SmdaInnovationMeanDrift"}, ended)

    twin.set_scenario(
        Scenario.from_json(
            [{"kind": "era5_shift", "start": str(SHIFTED), "variable": "t2m", "offset": 12.0}]
        )
    )
    twin.clock.advance(1)
    ended = _record(story, "era5 shifted", stack)
    story.fired["era5 shifted"] = stack.wait_for({"SmdaFeatureDrift"}, ended)
    print("innovations (mean, n):", story.innovations, "feature drift:", story.drift)
    print("time to fire after the run ended (s):", story.fired)


def test_healthy_days_fire_no_alert(story: Story) -> None:
    for i, day in enumerate(HEALTHY):
        state = story.states[f"healthy {i}"]
        assert state.is_completed() and state.name == "Completed", state.message
        done = [r.day for r in state.result() if r.status != "skipped"]
        assert done[-1] == day and all(d < day for d in done[:-1])  # + days revisions made stale
    assert story.quiet == [], [a["labels"]["alertname"] for a in story.quiet]
    assert story.received_after_healthy == set()


def test_a_smap_calibration_bias_fires_the_innovation_mean_alert(story: Story) -> None:
    mean, n = story.innovations["smap biased"]
    assert n >= 100 and mean > 0.02
    assert "SmdaInnovationMeanDrift" in story.fired["smap biased"]


def test_a_shifted_era5_temperature_fires_the_feature_drift_alert(story: Story) -> None:
    assert story.drift["era5 shifted"] > 3.0 > max(story.drift[f"healthy {i}"] for i in (0, 1))
    assert "SmdaFeatureDrift" in story.fired["era5 shifted"]
