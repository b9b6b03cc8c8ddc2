"""Training from the store: staged label products → TC-merged labels → model bundle.

:func:`train_from_store` is what ``smda train`` and the train flow run (ARCHITECTURE.md,
"Training"). Over the period ``start … end`` of a region's store:

1. **Check** that everything required is staged (ERA5 of every target day, MSWEP over the
   antecedent window, the static fields, at least one day of each label product); otherwise
   :class:`~smda.errors.MissingInputs` lists what to fetch.
2. **Labels**: the three label products (default SMAP ``soil_moisture``, ERA5-Land
   ``swvl1_mean``, GLDAS ``soil_moisture``) over ``start … end`` are merged per pixel by triple
   collocation (:func:`smda.science.labels.merge_labels`) with the SCIENCE.md §1 defaults: reference
   SMAP (labels on SMAP's scale, m3 m-3), TC-β scaling, minimum-variance ("optimal") weights,
   equal-weight fallback where TC is invalid, ``min_n`` = 100 common days. A short period
   has fewer common days: lower ``min_n`` or accept the fallback (the flags say which).
3. **Features** (:func:`smda.science.features.build_features`) of the *target days*
   ``start + 1 … end`` with the label of D−1 as the state (teacher forcing,
   :func:`smda.science.features.lagged`): the first day of the period serves only as the state of the
   second. Land cells that never get a label are left out.
4. **Model** (:func:`smda.science.model.train`): blocked K-fold CV (and the comparison schemes), DAgger,
   the final booster and the climatology.
5. **CDF tables** (:func:`smda.science.nudging.fit_cdf`): the final model run free over the target days
   (from the label of ``start``) against the staged SMAP of the same days.
6. **Gain** (:func:`smda.science.gain.estimate_gain`): every cell cycled over the target days by the CV
   model that did not see it, nudged toward its SMAP*; the gain (constant or per cell) with
   the smallest held-out mean squared innovation, σ_o² from SMAP's TC error variance.
7. **Bundle**: ``with_cdf``, ``with_tc_stats`` (the merge settings, the label flags, the
   median TC ρ² and error SD per product, the period) and ``with_gain``; ``input_hashes`` carry
   one SHA-256 per source over the ledger digests of every staged file used (so the version
   changes when a staged input changes).

At scale (``scale=``:class:`~smda.ops.train_scale.ScaleOptions`, ``smda train --dask-scheduler``
or ``--row-budget``) steps 2, 3 and 5 run on a Dask cluster: the labels are merged band of rows
by band into files of the store's work folder (:mod:`smda.ops.train_bands`), the features are
built block by block for the cells sampled to a row budget by a seeded hash, and the CDF tables
band by band (:mod:`smda.ops.train_scale`); the main process holds the sampled rows and
per-pixel summaries, never a label cube.

:func:`describe` renders a :class:`TrainOutcome` as a short markdown summary (label flags, TC,
CV blocked vs random, teacher-forced vs free-running) for the CLI and Prefect artifacts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from smda.ops.cluster import dask_client
from smda.ops.runtime import Runtime
from smda.ops.train_bands import merge_bands
from smda.ops.train_data import (
    LABEL_PRODUCTS,
    LABEL_VARIABLES,
    MERGE_DEFAULTS,
    cdf_tables,
    check_cv,
    check_options,
    check_staged,
    input_hashes,
    label_instrument,
    merge,
    nudging_gain,
    smap_rows,
    training_matrix,
)
from smda.ops.train_scale import ScaleOptions, cdf_tables_tiled, row_bands, scaled_matrix
from smda.ops.train_summary import (
    TrainOutcome,
    cv_summary,
    describe,
    label_summary,
    median_or_none,
    tc_summary,
)
from smda.science.drift import FeatureStats
from smda.science.features import (
    FeatureSpec,
)
from smda.science.model import TrainConfig, train_with_folds
from smda.storage.inputs import (
    load_static,
)
from smda.storage.store import Store

__all__ = [
    "LABEL_PRODUCTS",
    "LABEL_VARIABLES",
    "MERGE_DEFAULTS",
    "Progress",
    "TrainOutcome",
    "describe",
    "train_from_store",
    "train_model",
]

LOG = logging.getLogger(__name__)


Progress = Callable[[str], None]
"""Receives a one-line message at each training step."""


class _Steps:
    """Timing and progress reporting of the training steps."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._name = ""
        self._t0 = 0.0

    def start(self, name: str, message: str) -> None:
        self.stop()
        self._name, self._t0 = name, time.perf_counter()
        LOG.info("train: %s", message)
        if self.progress is not None:
            self.progress(message)

    def stop(self) -> None:
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 3)
            self._name = ""


def train_from_store(
    store: Store,
    start: date,
    end: date,
    *,
    config: TrainConfig | None = None,
    spec: FeatureSpec | None = None,
    label_products: Sequence[str] = LABEL_PRODUCTS,
    reference: str = "smap",
    min_n: int = 100,
    cdf_min_samples: int = 30,
    progress: Progress | None = None,
    scale: ScaleOptions | None = None,
) -> TrainOutcome:
    """Train a model bundle on the staged inputs of ``start … end`` (module docstring).

    Parameters
    ----------
    store:
        The region's store.
    start, end:
        The period: labels over ``start … end``, target days ``start + 1 … end``.
    config:
        Hyper-parameters, CV protocol and DAgger rounds (default :class:`TrainConfig`).
    spec:
        Features (default :class:`FeatureSpec`); MSWEP must be staged from
        ``start + 2 − spec.history_days``.
    label_products, reference:
        The label triplet (names of :data:`LABEL_VARIABLES`) and the product whose scale the
        labels take.
    min_n:
        Fewest common valid days for a pixel's TC to be valid (else the fallback).
    cdf_min_samples:
        Fewest days with both the free-running model and SMAP for a pixel's CDF table.
    progress:
        Called with a message at each step (also logged).
    scale:
        Train on a Dask cluster, on the cells sampled to a row budget
        (:mod:`smda.ops.train_scale`); None: in memory, every cell.

    Raises
    ------
    MissingInputs
        If required inputs are not staged (the message says what to fetch).
    ConfigError
        If the options are inconsistent, the region has too few CV groups, or no cell has
        a label.
    """
    cfg, spec = config or TrainConfig(), spec or FeatureSpec()
    check_options(label_products, reference, start, end)
    steps = _Steps(progress)
    steps.start("check", f"checking staged inputs of {start}..{end} in region {store.region}")
    check_staged(store, label_products, start, end, spec.history_days)
    static = load_static(store)
    check_cv(static, cfg)
    land = np.asarray(static["land"].values, dtype=bool)
    days = pd.date_range(start + timedelta(days=1), end)
    hashes = input_hashes(store, label_products, start, end, spec.history_days)
    merging = f"merging labels of {', '.join(label_products)} (reference {reference})"
    if scale is None:
        steps.start("labels", merging)
        instrument = label_instrument(store, spec, start, end)
        merged, smap = merge(store, label_products, reference, (start, end), min_n, instrument)
        flag, tc_stats = merged.flag, merged.tc
        steps.start("features", f"building features of {len(days)} days")
        fm, y = training_matrix(store, spec, merged.label, static, days)
        steps.start("model", f"training on {fm.n_cells} cells × {len(days)} days (CV, DAgger)")
        bundle, folds = train_with_folds(fm, y, spec, config=cfg, input_hashes=hashes)
        steps.start("cdf", "fitting SMAP CDF tables against the free-running model")
        cdf = cdf_tables(bundle, fm, smap, cdf_min_samples)
        obs, sampling = smap_rows(fm, smap), None
    else:
        with dask_client(scale.scheduler) as client:
            where = scale.scheduler or "a local cluster"
            steps.start("labels", f"{merging} in bands of rows on {where}")
            bands = row_bands(land, np.ones(int(land.sum()), bool), scale.tile_cells)
            labels = merge_bands(
                client, store, spec, list(label_products), reference, (start, end), min_n,
                static, days, hashes, bands, scale.work_dir,
            )  # fmt: skip
            flag, tc_stats = labels.flag, labels.tc
            steps.start("features", f"building features of {len(days)} days on {where}")
            fm, y, obs, sampling = scaled_matrix(client, store, spec, labels, static, days, scale)
            steps.start("model", f"training on {fm.n_cells} cells × {len(days)} days")
            bundle, folds = train_with_folds(fm, y, spec, config=cfg, input_hashes=hashes)
            steps.start("cdf", f"fitting SMAP CDF tables of {int(labels.labelled.sum())} cells")
            cdf = cdf_tables_tiled(
                client, store, spec, bundle, labels, static, days, scale, cdf_min_samples
            )
    steps.start("gain", "estimating the nudging gain from held-out cycles")
    gain = nudging_gain(fm, folds, obs, cdf, tc_stats, label_products)
    tc = tc_summary(tc_stats, land, label_products, min_n)
    tc["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    if sampling is not None:
        tc["sampling"] = sampling
    bundle = (
        bundle.with_cdf(cdf)
        .with_tc_stats(tc)
        .with_gain(gain)
        .with_feature_stats(FeatureStats.fit(fm.values, spec.names))
    )
    steps.stop()
    LOG.info("train: model %s (%d trees) from %s..%s", bundle.version, bundle.num_trees, start, end)
    return TrainOutcome(
        bundle=bundle,
        start=days[0].date(),
        end=end,
        labels=label_summary(flag, land),
        tc=tc,
        cv=cv_summary(dict(bundle.cv_report)),
        cdf={"pixels": int(cdf.cell_ids.size), "median_n": median_or_none(cdf.n.astype(float))},
        gain={"summary": gain.describe(), **gain.provenance},
        cells=fm.n_cells,
        days=len(days),
        seconds=steps.seconds,
    )


def train_model(
    rt: Runtime,
    start: date,
    end: date,
    *,
    config: TrainConfig | None = None,
    spec: FeatureSpec | None = None,
    label_products: Sequence[str] = LABEL_PRODUCTS,
    reference: str = "smap",
    min_n: int = 100,
    cdf_min_samples: int = 30,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Train on the region's staged label products of ``start`` … ``end``
    (:func:`train_from_store`, same options) and register the bundle as current."""
    outcome = train_from_store(
        rt.store,
        start,
        end,
        config=config,
        spec=spec,
        label_products=label_products,
        reference=reference,
        min_n=min_n,
        cdf_min_samples=cdf_min_samples,
        progress=progress,
    )
    with rt.chain_writer():  # the model in use changes: not under a running backfill
        rt.registry.register(outcome.bundle)
    return outcome
