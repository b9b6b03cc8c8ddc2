"""Constants shared by the training tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import date

from smda.bundle import HyperParams
from smda.model import CVConfig, TrainConfig

START, END = date(2015, 4, 1), date(2015, 6, 15)
"""The training period of the shared model."""
AFTER = date(2015, 6, 20)
"""Inputs are staged up to this day (days after END to run the model on)."""
FAST = TrainConfig(
    hyper=HyperParams(
        learning_rate=0.1,
        num_leaves=7,
        min_data_in_leaf=20,
        max_rounds=60,
        early_stopping_rounds=10,
        num_threads=1,
    ),
    cv=CVConfig(n_folds=4, block_deg=0.5),
    dagger_rounds=0,
)
"""A tiny model (about a second to train on 4 × 4 cells; one thread, as the tests share two
cores; DAgger is tested in tests/science/test_model.py)."""
MIN_N = 20
"""TC's minimum common days for ~100-day periods."""
