"""Training from a staged store: labels, CV, CDF tables, provenance hashes; the trained bundle
runs the cycle; train → register → reload keeps the version; what is missing is named."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from staged_world import stage_world
from training_helpers import END, FAST, MIN_N, START

from smda.errors import ConfigError, MissingInputs
from smda.ops.train import TrainOutcome, describe, train_from_store
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND, climatology_state, step
from smda.science.model import CVConfig
from smda.storage.inputs import day_inputs, load_static
from smda.storage.registry import ModelRegistry
from smda.storage.store import Store
from smda_twin.world import World


def test_outcome_summaries(outcome: TrainOutcome) -> None:
    assert outcome.start == START + timedelta(days=1) and outcome.end == END
    assert outcome.days == (END - START).days and outcome.cells == 16
    assert sum(outcome.labels.values()) == 16 and outcome.labels["no_data"] == 0
    made = ("tc", "tc_correlated_errors", "fallback_equal")
    assert sum(outcome.labels[k] for k in made) == 16
    tc = outcome.tc
    assert tc == dict(outcome.bundle.tc_stats)
    assert tc["products"] == ["smap", "era5land", "gldas"] and tc["reference"] == "smap"
    assert (tc["scaling"], tc["weighting"], tc["fallback"], tc["min_n"]) == (
        "tc_beta",
        "optimal",
        "equal",
        MIN_N,
    )
    assert tc["period"] == {"start": str(START), "end": str(END)}
    assert tc["valid_pixels"] == outcome.labels["tc"] + outcome.labels["tc_correlated_errors"] > 0
    assert set(tc["error_sd"]) == set(tc["rho2"]) == {"smap", "era5land", "gldas"}
    assert all(0.0 < v <= 1.0 for v in tc["rho2"].values())
    assert all(0.0 < v < 0.2 for v in tc["error_sd"].values())
    assert set(outcome.cv) == {"blocked", "random"}
    for rep in outcome.cv.values():
        for mode in ("teacher_forced", "free_running"):
            assert 0.5 < rep[mode]["r"] <= 1.0 and 0.0 < rep[mode]["ubrmsd"] < 0.1
    assert json.loads(json.dumps(tc)) == tc
    assert set(outcome.seconds) == {"check", "labels", "features", "model", "cdf", "gain"}
    gain = outcome.bundle.gain
    assert gain is not None and gain.provenance["chosen"] in {*gain.provenance["scores"]}
    scores = gain.provenance["scores"]
    assert scores[gain.provenance["chosen"]] == min(scores.values()), "the best candidate wins"
    assert outcome.gain["chosen"] == gain.provenance["chosen"]
    assert json.loads(json.dumps(outcome.gain)) == outcome.gain


def test_bundle_has_cdf_tables_hashes_and_runs_the_cycle(
    outcome: TrainOutcome, store: Store
) -> None:
    bundle = outcome.bundle
    assert bundle.cdf is not None
    assert bundle.cdf.cell_ids.size == outcome.cdf["pixels"] > 0
    assert (bundle.cdf.n >= 30).all()
    assert set(bundle.input_hashes) == {
        "features",
        "labels",
        "staged/era5",
        "staged/mswep",
        "staged/smap",
        "staged/era5land",
        "staged/gldas",
        "static/era5_static",
    }
    day = END + timedelta(days=5)  # after the training period
    state = climatology_state(bundle, load_static(store), day - timedelta(days=1))
    result = step(state, day_inputs(store, day, bundle.spec.history_days), bundle, gain=0.3)
    analysis = result.analysis.values
    assert np.isfinite(analysis).all() and (analysis > 0).all() and (analysis < 0.6).all()
    flags = result.flags.values
    assert (flags & FLAG_LAND).all()
    smap = store.open_staged("smap", day)["soil_moisture"].values
    assert np.isfinite(smap).any()
    np.testing.assert_array_equal((flags & FLAG_ASSIMILATED) > 0, np.isfinite(smap))


def test_train_register_reload_same_version(
    outcome: TrainOutcome, store: Store, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "models" / store.region)
    registry.register(outcome.bundle)
    reloaded = ModelRegistry(registry.root).current()
    assert reloaded.version == outcome.bundle.version
    again = train_from_store(store, START, END, config=FAST, min_n=MIN_N)
    assert again.bundle.version == outcome.bundle.version  # deterministic from the same inputs
    assert registry.register(again.bundle) == registry.path(outcome.bundle.version)
    assert registry.versions() == [outcome.bundle.version]


def test_describe(outcome: TrainOutcome) -> None:
    text = describe(outcome)
    assert f"**Model {outcome.bundle.version}**" in text
    labels = outcome.labels
    assert f"| {labels['tc']} | {labels['fallback_equal']} | 0 | " in text
    assert f"| {labels['tc_correlated_errors']} | 0 |" in text
    assert "Gain: " in text and "held-out mean squared innovation" in text
    for line in ("blocked, teacher-forced", "blocked, free-running", "random, free-running"):
        assert f"| {line} | " in text
    assert "| smap | " in text and "CDF tables: 16 pixels" in text
    assert "0.5°×0.5° tiles" in text


def test_short_period_falls_back_and_still_trains(store: Store) -> None:
    start, end = date(2015, 5, 10), date(2015, 6, 15)  # < 100 common days: TC invalid
    short = train_from_store(store, start, end, config=FAST, cdf_min_samples=10)
    assert short.labels == {
        "tc": 0,
        "fallback_equal": 16,
        "fallback_best": 0,
        "tc_correlated_errors": 0,
        "no_data": 0,
    }
    assert short.tc["valid_pixels"] == 0 and short.tc["rho2"] == {}
    assert short.bundle.cdf is not None and short.bundle.cdf.cell_ids.size > 0


def test_missing_inputs_are_listed(world: World, tmp_path: Path) -> None:
    store = Store(tmp_path / "data", world.grid)
    gap = date(2015, 4, 10)
    stage_world(
        store,
        world,
        date(2015, 4, 1),
        date(2015, 4, 20),
        sources=["era5", "mswep", "smap", "era5land"],
        skip=[("era5", gap)],
    )
    with pytest.raises(MissingInputs) as caught:
        train_from_store(store, date(2015, 4, 1), date(2015, 4, 20), config=FAST)
    message = str(caught.value)
    assert "training 2015-04-01..2015-04-20: not staged" in message
    assert f"era5 {gap} (1 day)" in message
    assert "gldas 2015-04-01..2015-04-20 (20 days)" in message
    assert "`smda fetch gldas --start 2015-04-01 --end 2015-04-20 --region=-100,35,-99,36`" in (
        message
    )
    assert ("era5", gap) in caught.value.missing


def test_configuration_errors(store: Store) -> None:
    with pytest.raises(ConfigError, match="reference 'ismn' is not one of"):
        train_from_store(store, START, END, reference="ismn")
    with pytest.raises(ConfigError, match="unknown label product"):
        train_from_store(store, START, END, label_products=("smap", "era5land", "ascat"))
    with pytest.raises(ConfigError, match="at least two days"):
        train_from_store(store, END, END)


def test_a_small_region_gets_a_cross_validation_it_can_hold(store: Store) -> None:
    ten = replace(FAST, cv=CVConfig(n_folds=10, block_deg=5.0))

    outcome = train_from_store(store, START, END, config=ten)

    blocked = outcome.cv["blocked"]
    assert "using 4 folds over 0.625° tiles" in blocked["note"]
    assert blocked["protocol"].startswith("4-fold CV over 0.625°×0.625° tiles")
    assert "using 4 folds" in describe(outcome)
