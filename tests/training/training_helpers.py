"""Constants shared by the training tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from staged_world import TINY_TRAINING

START, END = date(2015, 4, 1), date(2015, 6, 15)
"""The training period of the shared model."""
AFTER = date(2015, 6, 20)
"""Inputs are staged up to this day (days after END to run the model on)."""
FAST = replace(TINY_TRAINING, compare=("random",))
"""The tests' tiny model (tests/staged_world.py), with the random-fold CV beside the blocked one."""
MIN_N = 20
"""TC's minimum common days for ~100-day periods."""
