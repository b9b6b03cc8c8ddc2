"""The train and validate flows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flow_helpers import (
    CHAIN,
    HISTORY_END,
    TRAIN,
    FlowWorld,
    Trained,
    artifacts_of,
    runtime,
    today_for,
)

from flows.validate import validate


def test_train_flow_registers_the_model_and_reports_its_skill(trained: Trained) -> None:
    registry = runtime(trained.data, HISTORY_END).registry

    assert registry.current_version() == trained.version
    artifacts = artifacts_of(trained.flow_run_id)
    summary = artifacts["summary"].data
    assert f"**Model {trained.version}**" in summary
    assert f"..{TRAIN[1]}: {(TRAIN[1] - TRAIN[0]).days} days" in summary  # target days
    assert "free-running" in summary and "teacher-forced" in summary  # the CV skill
    table = json.loads(artifacts["validation"].data)
    assert {(row["scheme"], row["mode"]) for row in table} == {
        ("random", "teacher_forced"),
        ("random", "free_running"),
    }
    assert all(0.0 < row["r"] <= 1.0 for row in table)
    link = artifacts["model"].data
    assert f"({registry.path(trained.version).as_uri()})" in link


def test_validate_flow_tables_the_figures_of_the_analysed_days(
    chain_template: Path, flow_world: Callable[..., FlowWorld]
) -> None:
    flow_world(chain_template, today_for(HISTORY_END))

    state = validate(*CHAIN, return_state=True)

    assert state.is_completed(), state.message
    artifacts = artifacts_of(state.state_details.flow_run_id)
    rows = json.loads(artifacts["validation"].data)
    assert [row["day"] for row in rows] == [r["day"] for r in state.result().rows()]
    assert len(rows) == (CHAIN[1] - CHAIN[0]).days + 1
    assert all(row["status"] == "analysis" and row["n_obs"] > 0 for row in rows)
    assert "products" in artifacts
