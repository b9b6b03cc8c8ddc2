"""Staged-like daily inputs made from the twin world, shared by the science tests.

The helpers live in :mod:`staged_world` (tests/staged_world.py), which also stages them into a
store; this module re-exports what the science tests use.
"""

from __future__ import annotations

from staged_world import ERA5_HOURLY, twin_inputs

__all__ = ["ERA5_HOURLY", "twin_inputs"]
