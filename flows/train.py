"""The train flow: ``smda train`` as a Prefect flow (on demand, see ``deployments/prefect.yaml``).

Trains on the staged label products (SMAP, ERA5-Land, GLDAS) and forcings of ``start … end``
(:func:`smda.ops.train.train_from_store`: TC-merged labels, LightGBM with blocked K-fold CV,
DAgger, CDF tables), registers the bundle and makes it current for the region, and leaves
artifacts: a markdown summary (label flags, TC statistics, CV skill), a table of the CV skill
and a link to the registered bundle.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from flows.artifacts import artifact_key, catalog_url
from flows.outcomes import on_crashed, on_failure, train_run_name
from flows.tasks import fetch_training_task, run_context, train_task
from smda.ops import open_runtime
from smda.ops.train import TrainOutcome, describe
from smda.science.model import TrainConfig

__all__ = ["train"]


@flow(
    name="smda-train",
    flow_run_name=train_run_name,
    on_failure=[on_failure],
    on_crashed=[on_crashed],
)
def train(
    start: date,
    end: date,
    region: str | None = None,
    config: TrainConfig | None = None,
    min_n: int = 100,
    cdf_min_samples: int = 30,
    fetch: bool = True,
) -> str:
    """Train and register a model on ``start … end`` for ``region``; returns its version.

    Parameters
    ----------
    config:
        LightGBM hyper-parameters, the cross-validation protocol, comparison schemes and DAgger
        rounds (:class:`smda.science.model.TrainConfig`; default: SCIENCE.md §2). In the UI or
        ``prefect deployment run --param``, a JSON object such as
        ``{"hyper": {"num_leaves": 31}, "cv": {"n_folds": 5}}``.
    min_n:
        Fewest common valid days for a pixel's triple collocation (else equal weights).
    cdf_min_samples:
        Fewest paired days for a pixel's SMAP CDF table.
    fetch:
        Fetch and stage the inputs training reads first (idempotent: staged days are not
        fetched again), so a new region is set up from this deployment alone.
    """
    options = {
        "config": config or TrainConfig(),
        "min_n": min_n,
        "cdf_min_samples": cdf_min_samples,
    }
    run = run_context(region)
    if fetch:
        report = fetch_training_task(run, start, end)
        get_run_logger().info("training inputs: %s", report.counts())
    outcome: TrainOutcome = train_task(run, start, end, options)
    rt = open_runtime(run)
    version = outcome.bundle.version
    create_markdown_artifact(
        "# smda train\n\n" + describe(outcome) + "\n",
        key=artifact_key("train", rt.region, "summary"),
        description=f"model {version} trained on {start} … {end} for {rt.region}",
    )
    create_table_artifact(
        [
            {"scheme": scheme, "mode": mode, **report[mode]}
            for scheme, report in outcome.cv.items()
            for mode in ("teacher_forced", "free_running")
        ],
        key=artifact_key("train", rt.region, "validation"),
        description="cross-validation skill against the labels (median over held-out cells)",
    )
    create_link_artifact(
        catalog_url(str(rt.registry.path(version))),
        link_text=f"model bundle {version}",
        key=artifact_key("train", rt.region, "model"),
        description="the registered bundle (booster, features, CV report, CDF tables)",
    )
    get_run_logger().info("registered model %s as current for %s", version, rt.region)
    return version
