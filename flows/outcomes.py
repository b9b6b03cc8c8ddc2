"""What every flow run tells the operator: its name, smda's log records, and how it ended.

- **Names**: flow runs are named by what they do (``daily -105,30,-95,40``, renamed to
  ``daily 2024-07-15 -105,30,-95,40`` once the days are planned; ``backfill 2024-01-01…2024-06-30
  globe``), so the runs list says which day and region each made.
- **Logs**: at the flow's entry the ``smda`` logger is set to ``SMDA_LOG_LEVEL`` and given
  Prefect's API log handler (:func:`flows.tasks.send_smda_logs`), so smda's own INFO records
  reach the flow-run logs.
- **Outcomes**: a run that decides its own end (completed, waiting, a provider that refused
  smda) reports it with its metrics and artifacts. A run that *raises* or *crashes* never gets
  there: the state hooks :func:`on_failure` and :func:`on_crashed` report it instead — the status
  and its reason to Prometheus (``smda_last_run_status``) and a summary artifact saying what to
  do. They never raise: a hook that fails must not hide the run's own error.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from prefect import Flow, State
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.runtime import flow_run as current_flow_run

from flows.artifacts import artifact_key
from flows.tasks import run_context
from smda.config import load_settings
from smda.ops import open_runtime, report_metrics
from smda.ops.outcome import RunOutcome, RunStatus
from smda.storage.locks import RegionBusy

__all__ = [
    "backfill_run_name",
    "daily_run_name",
    "mark_reported",
    "on_crashed",
    "on_failure",
    "rename_run",
    "train_run_name",
]

logger = logging.getLogger(__name__)

_REPORTED: set[str] = set()
"""Flow runs (ids) that reported their own failure: the hooks leave them alone."""


def _region_label(region: str | None) -> str:
    if region:
        return region
    bbox = load_settings().bbox
    return "globe" if bbox is None else str(bbox)


def daily_run_name() -> str:
    """``daily <region>`` (the days are added once planned: :func:`rename_run`)."""
    return f"daily {_region_label(current_flow_run.parameters.get('region'))}"


def backfill_run_name() -> str:
    """``backfill <start>…<end> <region>``."""
    params = current_flow_run.parameters
    return f"backfill {params['start']}…{params['end']} {_region_label(params.get('region'))}"


def train_run_name() -> str:
    """``train <start>…<end> <region>``."""
    params = current_flow_run.parameters
    return f"train {params['start']}…{params['end']} {_region_label(params.get('region'))}"


def days_label(days: list[date]) -> str:
    """``2024-07-15``, ``2024-07-14…2024-07-15`` or ``no day`` (the run's state says why)."""
    if not days:
        return "no day"
    return str(days[0]) if len(days) == 1 else f"{days[0]}…{days[-1]}"


def rename_run(name: str) -> None:
    """Rename the current flow run (best effort: a name is not worth failing a run for)."""
    run_id = current_flow_run.id
    if run_id is None:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(run_id, name=name)
    except Exception as exc:  # an API hiccup must not fail the run
        logger.warning("could not rename flow run %s to %r: %s", run_id, name, exc)


def mark_reported() -> None:
    """Say that the current flow run has reported its own failure (the hooks skip it)."""
    if current_flow_run.id is not None:
        _REPORTED.add(str(current_flow_run.id))


def _job(flow: Flow[..., Any]) -> str:
    return flow.name.replace("-", "_")


def _report(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any], status: RunStatus) -> None:
    if str(flow_run.id) in _REPORTED:
        _REPORTED.discard(str(flow_run.id))
        return
    outcome = RunOutcome(status, state.message or f"the flow run ended {state.type.value.lower()}")
    try:
        rt = open_runtime(run_context(flow_run.parameters.get("region")))
        started = flow_run.start_time.timestamp() if flow_run.start_time else time.time()
        report_metrics(rt, _job(flow), [], outcome=outcome, started_at=started)
        create_markdown_artifact(
            f"# smda {flow.name} run {status}\n\n> **{outcome.reason}**\n\n"
            f"**What to do**: {outcome.advice}\n",
            key=artifact_key(flow.name.removeprefix("smda-"), rt.region, "summary"),
            description=f"smda {flow.name} run for region {rt.region}: {status}",
        )
    except Exception as exc:  # never hide the run's own error behind the hook's
        logger.warning("could not report the %s run %s: %s", status, flow_run.name, exc)


def on_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """State hook: report a failed run (status ``failed``, the error as reason; ``busy`` when
    it stopped because another process writes the region)."""
    _report(flow, flow_run, state, "busy" if _busy(state) else "failed")


def _busy(state: State[Any]) -> bool:
    """Whether the run failed on :class:`~smda.storage.locks.RegionBusy`."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # the result may be unavailable to the hook: nothing to tell
        return False
    return isinstance(error, RegionBusy)


def on_crashed(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """State hook: report a crashed run (status ``crashed``)."""
    _report(flow, flow_run, state, "crashed")
