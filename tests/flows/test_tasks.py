"""What the tasks declare: retries on transient errors only; the task runner choice."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask.task_runners import DaskTaskRunner

import flows.tasks
from flows.backfill import task_runner_from_env
from flows.tasks import run_day_task
from smda.errors import ConfigError, CredentialsError, SmdaError, TransientError

DAY = date(2024, 5, 1)


def _flaky(monkeypatch: pytest.MonkeyPatch, errors: list[SmdaError]) -> list[date]:
    """Make run_day raise ``errors`` one after the other, then succeed; return the calls."""
    calls: list[date] = []

    def run_day(rt: Any, day: date, *, force: bool = False) -> str:
        calls.append(day)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"

    monkeypatch.setattr(flows.tasks, "run_day", run_day)
    monkeypatch.setattr(flows.tasks, "open_runtime", lambda region=None: None)
    return calls


@flow
def _one_day() -> Any:
    return run_day_task.with_options(retry_delay_seconds=0)(None, DAY)


def test_a_transient_error_is_retried(monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    calls = _flaky(monkeypatch, [TransientError("503 from the state store")] * 2)

    assert _one_day() == "done"
    assert calls == [DAY] * 3


def test_a_permanent_error_fails_at_once(monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    calls = _flaky(monkeypatch, [CredentialsError("the key was rejected: renew it")])

    state = _one_day(return_state=True)

    assert state.is_failed()
    assert calls == [DAY]
    with pytest.raises(CredentialsError):
        state.result()


def test_task_runner_is_chosen_by_setting() -> None:
    assert isinstance(task_runner_from_env(""), ThreadPoolTaskRunner)
    assert isinstance(task_runner_from_env("threads"), ThreadPoolTaskRunner)
    assert isinstance(task_runner_from_env("dask"), DaskTaskRunner)
    remote = task_runner_from_env("tcp://scheduler:8786")
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://scheduler:8786"
    with pytest.raises(ConfigError, match="threads, dask"):
        task_runner_from_env("celery")
