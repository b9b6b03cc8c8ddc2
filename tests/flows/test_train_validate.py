"""The train and validate flows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from flow_helpers import (
    CHAIN,
    HISTORY_END,
    TRAIN,
    FlowWorld,
    Trained,
    artifacts_of,
    runtime,
    smda_environment,
    start_twin,
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


@pytest.mark.slow
def test_a_new_region_is_set_up_from_the_train_and_daily_deployments_alone(
    tmp_path: Path, replicas: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> None:
    from flows.daily import daily
    from flows.train import train

    start, end = date(2024, 2, 1), date(2024, 2, 29)
    data = tmp_path / "data"  # empty: nothing staged, no model
    endpoints = tmp_path / "endpoints.json"
    # GLDAS, a label product, is published 45 days after the fact
    twin = start_twin(endpoints, end + timedelta(days=50), replicas=replicas)
    for key, value in smda_environment(data, endpoints).items():
        monkeypatch.setenv(key, value)
    try:
        # the default CV (10 folds over 5° tiles) on a 1° region: fitted to it, said in the report
        trained = train(start, end, min_n=20, cdf_min_samples=10, return_state=True)
        ran = daily(return_state=True)
    finally:
        twin.stop()

    assert trained.is_completed(), trained.message
    version = trained.result()
    assert runtime(data, end).registry.current_version() == version
    summary = artifacts_of(trained.state_details.flow_run_id)["summary"].data
    assert "using 4 folds over 0.625° tiles" in summary
    assert ran.is_completed() and ran.name == "Completed", ran.message
    assert [r.status for r in ran.result()] == ["analysis"]


def test_the_products_link_is_the_public_url_when_the_products_are_served(
    chain_template: Path, flow_world: Callable[..., FlowWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = flow_world(chain_template, today_for(HISTORY_END))
    monkeypatch.setenv("SMDA_PRODUCTS_PUBLIC_URL", "https://data.example.org/smda/")

    state = validate(*CHAIN, return_state=True)

    assert state.is_completed(), state.message
    link = artifacts_of(state.state_details.flow_run_id)["products"].data
    rt = runtime(world.data, HISTORY_END)
    url = f"https://data.example.org/smda/{rt.publisher.root.name}/stac/catalog.json"
    assert f"({url})" in link and "file://" not in link
