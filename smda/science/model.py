"""The LightGBM model that steps soil moisture forward from yesterday's state, and its bundle.

Training (:func:`train`) takes a teacher-forced feature matrix (state column = the label of
D−1, :func:`smda.science.features.lagged`) and the labels, cross-validates, fits the final booster and
returns a versioned :class:`ModelBundle`.

Cross-validation
----------------
Ten folds over *cells* (every day of a cell is in the same fold). ``blocked`` (default) groups
cells into ``block_deg`` × ``block_deg`` tiles and deals whole tiles to the folds, largest
first, each to the currently smallest fold (group k-fold); ``random`` deals single cells at
random (pixel folds, which leak through spatial autocorrelation: reported beside the blocked
figure for comparison). For fold k, fold k+1 is held out for early stopping and the rest
trains. Skill is measured on the test cells against the label, per cell (Pearson R and
ubRMSD of :mod:`smda.science.metrics`) and summarised by the median over cells, in two modes:
*teacher-forced* (the state input is the label of D−1) and *free-running* (open loop: from the
label of the day before the first day, every later state is the model's own prediction).

Exposure bias
-------------
A model trained only with the label as lag never sees its own errors in the lag, yet at
inference the lag is its own forecast (or the analysis). The remedy is DAgger-style
retraining: after fitting, the model is run free over the training (and early-stopping) cells,
and it is refitted on the teacher-forced rows *plus* the same rows with the lag replaced by that
rollout (targets unchanged: the label), so it learns to pull a drifting state back toward the
label. ``dagger_rounds`` (default 1) repeats this, each round using the latest model's rollout
(on the twin one round raised the blocked-CV free-running R by 0.007–0.014; a second round
added nothing). The final model is fitted on all cells with the number of trees set to the median of the
folds' early-stopping iterations.

Cost
----
Early stopping ends a fit when ``early_stopping_rounds`` trees in a row lower the
early-stopping cells' RMSE by less than ``HyperParams.early_stopping_min_delta`` (1e-4 m3 m-3):
without that tolerance the loss creeps down by tiny amounts and every fit runs to the tree cap.
The labelled rows are binned once (:class:`BinnedRows`); each fold's teacher-forced rows are a
subset of that dataset and the DAgger rows are binned with its bin mappers, so no fit bins
afresh. Only the primary scheme is cross-validated unless ``TrainConfig.compare`` asks for
more (each comparison scheme costs as much as the primary CV).

Science core: numpy and lightgbm; the bundle itself is :mod:`smda.science.bundle`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from smda.science.bundle import Climatology, HyperParams, ModelBundle, Predict, content_hash
from smda.science.features import FeatureMatrix, FeatureSpec
from smda.science.metrics import pearson_r, ubrmsd

__all__ = [
    "BinnedRows",
    "CVConfig",
    "FoldModels",
    "TrainConfig",
    "assign_folds",
    "cross_validate",
    "fit_booster",
    "rollout",
    "train",
    "train_with_folds",
]

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Scheme = Literal["blocked", "random"]


@dataclass(frozen=True)
class CVConfig:
    """Cross-validation protocol (module docstring)."""

    n_folds: int = 10
    scheme: Scheme = "blocked"
    block_deg: float = 5.0
    """Tile size (degrees) of the ``blocked`` scheme."""
    seed: int = 0

    def describe(self, n_groups: int) -> str:
        """The protocol in words, written next to every figure."""
        groups = (
            f"{self.block_deg:g}°×{self.block_deg:g}° tiles ({n_groups} tiles, group k-fold)"
            if self.scheme == "blocked"
            else f"random cells ({n_groups} cells)"
        )
        return (
            f"{self.n_folds}-fold CV over {groups}; early stopping on the next fold; skill per "
            "held-out cell against the label (R, ubRMSD ddof 0), median over cells"
        )


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`train` fits and evaluates the model."""

    hyper: HyperParams = field(default_factory=HyperParams)
    cv: CVConfig = field(default_factory=CVConfig)
    compare: tuple[Scheme, ...] = ()
    """Further CV schemes run and reported beside ``cv.scheme`` (same folds count), e.g.
    ``("random",)``: opt-in, each costs as much as the primary CV."""
    dagger_rounds: int = 1


def _median(values: FloatArray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _summary(pred: F32, obs: F32) -> dict[str, float]:
    """Median over cells of R and ubRMSD (:mod:`smda.science.metrics`) of (time, cells) series."""
    r, _ = pearson_r(pred.T, obs.T)
    return {"r": _median(r), "ubrmsd": _median(ubrmsd(pred.T, obs.T))}


def _groups(lat: npt.ArrayLike, lon: npt.ArrayLike, cv: CVConfig) -> IntArray:
    """Group (tile or cell) index 0 … n_groups−1 of each cell."""
    la, lo = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    if cv.scheme == "random":
        return np.arange(la.size, dtype=np.int64)
    if cv.scheme != "blocked":
        raise ValueError(f"unknown CV scheme {cv.scheme!r}; choose blocked or random")
    row = np.floor((la + 90.0) / cv.block_deg).astype(np.int64)
    col = np.floor((lo + 180.0) / cv.block_deg).astype(np.int64)
    return np.asarray(np.unique(row * 100_000 + col, return_inverse=True)[1], dtype=np.int64)


def fit_cv_to_region(
    cv: CVConfig, lat: npt.ArrayLike, lon: npt.ArrayLike, *, min_block_deg: float = 0.5
) -> tuple[CVConfig, str | None]:
    """A protocol the region's cells can hold, and a note saying what changed (None: nothing).

    A region with fewer groups than folds (e.g. 10 folds over 5° tiles on a 10° × 10° region:
    4 tiles) first gets smaller tiles (halved down to ``min_block_deg``), then fewer folds
    (as many as groups, at least 2).

    Raises
    ------
    ValueError
        If even then fewer than two groups remain (a region of one cell).
    """
    fitted = cv
    while (
        fitted.scheme == "blocked"
        and np.unique(_groups(lat, lon, fitted)).size < fitted.n_folds
        and fitted.block_deg / 2 >= min_block_deg
    ):
        fitted = replace(fitted, block_deg=fitted.block_deg / 2)
    groups = int(np.unique(_groups(lat, lon, fitted)).size)
    if groups < 2:
        raise ValueError(f"{cv.scheme} CV needs at least 2 groups; the region has {groups}")
    if groups < fitted.n_folds:
        fitted = replace(fitted, n_folds=groups)
    if fitted == cv:
        return cv, None
    before = np.unique(_groups(lat, lon, cv)).size
    return fitted, (
        f"the region holds {before} group(s) for {cv.n_folds}-fold {cv.scheme} CV "
        f"(block {cv.block_deg:g}°): using {fitted.n_folds} folds"
        + (f" over {fitted.block_deg:g}° tiles" if fitted.scheme == "blocked" else "")
    )


def assign_folds(lat: npt.ArrayLike, lon: npt.ArrayLike, cv: CVConfig) -> IntArray:
    """Fold (0 … n_folds−1) of each cell (module docstring): whole groups are dealt,
    largest first, each to the fold with the fewest cells so far.

    Raises
    ------
    ValueError
        If there are fewer groups (tiles or cells) than folds.
    """
    groups = _groups(lat, lon, cv)
    sizes = np.bincount(groups)
    if sizes.size < cv.n_folds:
        raise ValueError(
            f"{cv.scheme} CV needs at least {cv.n_folds} groups, got {sizes.size} "
            f"(block_deg={cv.block_deg:g}°): use smaller blocks or fewer folds"
        )
    order = np.random.default_rng(cv.seed).permutation(sizes.size)
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(sizes.size, dtype=np.int64)
    load = np.zeros(cv.n_folds, dtype=np.int64)
    for g in order:
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += sizes[g]
    return fold_of_group[groups]


def rollout(predict: Predict, matrix: FeatureMatrix, *, init: npt.ArrayLike | None = None) -> F32:
    """Run the model free over ``matrix``'s days: each day's state is the previous prediction.

    Parameters
    ----------
    predict:
        Raw model prediction of feature rows (e.g. :meth:`ModelBundle.predict`).
    matrix:
        Features of consecutive days; its state column is used only on the first day unless
        ``init`` (n_cells,) m3 m-3 is given.

    Returns
    -------
    float32 (n_days, n_cells): the free-running forecasts, clipped to [0, ``matrix.upper``].
    """
    cube, col = matrix.cube(), matrix.state_column
    out = np.empty(cube.shape[:2], dtype=np.float32)
    state = cube[0, :, col] if init is None else np.asarray(init, np.float32)
    for t in range(cube.shape[0]):
        rows = cube[t].copy()
        rows[:, col] = state
        state = np.clip(np.asarray(predict(rows), np.float32), 0.0, matrix.upper)
        out[t] = state
    return out


def _predictor(booster: lgb.Booster) -> Predict:
    """The booster's raw prediction as a :data:`Predict`."""

    def predict(rows: F32) -> F32:
        return np.asarray(booster.predict(rows), dtype=np.float32)

    return predict


def _lag_of(forecasts: F32, first: F32) -> F32:
    """States (n_days, n_cells) that feed each day: ``first`` on day 0, then the forecasts."""
    return np.concatenate([first[None], forecasts[:-1]])


@dataclass(frozen=True, eq=False)
class BinnedRows:
    """The teacher-forced rows of a matrix binned once (module docstring, "Cost").

    Attributes
    ----------
    dataset:
        The constructed ``lightgbm.Dataset`` of every labelled row (day-major, as
        ``FeatureMatrix.values``), labels attached: its bin mappers serve every fit.
    index:
        (n_days, n_cells) position of each row in ``dataset``; −1 where the label is missing.
    """

    dataset: lgb.Dataset
    index: IntArray

    @classmethod
    def of(cls, matrix: FeatureMatrix, labels: F32, hyper: HyperParams) -> BinnedRows:
        """Bin ``matrix``'s labelled rows (labels (n_days, n_cells))."""
        y = np.asarray(labels, np.float32).reshape(-1)
        ok = np.isfinite(y)
        index = np.where(ok, np.cumsum(ok) - 1, -1).reshape(np.shape(labels))
        data = lgb.Dataset(
            matrix.values[ok], y[ok], feature_name=list(matrix.names), params=hyper.lgb_params()
        )
        return cls(data.construct(), index.astype(np.int64))

    def subset(self, cells: npt.NDArray[np.bool_]) -> lgb.Dataset:
        """The teacher-forced rows of ``cells`` (a mask over the matrix's cells), in the order
        of ``FeatureMatrix.select(cells)``, without binning again."""
        pos = self.index[:, cells].reshape(-1)
        return self.dataset.subset(np.sort(pos[pos >= 0]).tolist())

    def rows(self, x: F32 | list[F32], y: F32) -> lgb.Dataset:
        """Other rows (e.g. DAgger's; an array or a list of row blocks) binned with the same
        bin mappers."""
        return lgb.Dataset(x, y, reference=self.dataset, params=self.dataset.get_params())


def fit_booster(
    train: tuple[FeatureMatrix, F32],
    valid: tuple[FeatureMatrix, F32] | None,
    hyper: HyperParams,
    *,
    dagger_rounds: int = 1,
    rounds: int | None = None,
    binned: BinnedRows | None = None,
    cells: tuple[npt.NDArray[np.bool_], ...] = (),
) -> lgb.Booster:
    """Fit one booster with early stopping on ``valid`` (or exactly ``rounds`` trees), plus
    ``dagger_rounds`` DAgger refits (module docstring).

    Parameters
    ----------
    train, valid:
        (teacher-forced features, labels (n_days, n_cells)) to fit on and to stop early on.
    binned:
        Rows binned once (:class:`BinnedRows`, of a matrix ``train`` and ``valid`` were
        selected from): every dataset uses its bin mappers instead of binning afresh.
    cells:
        With ``binned``: the cell masks ``train`` (and ``valid``) were selected with, so the
        teacher-forced rows are subsets of ``binned`` (bit-identical to binning them with its
        bin mappers, without the cost).
    """
    sets = [s for s in (train, valid) if s is not None]
    booster: lgb.Booster | None = None
    for round_ in range(dagger_rounds + 1):
        data, check = _datasets(sets, hyper, binned, cells, booster)
        kwargs: dict[str, Any] = {"num_boost_round": rounds or hyper.max_rounds}
        if valid is not None and rounds is None:
            kwargs["valid_sets"] = [check]
            kwargs["callbacks"] = [
                lgb.early_stopping(
                    hyper.early_stopping_rounds,
                    verbose=False,
                    min_delta=hyper.early_stopping_min_delta,
                )
            ]
        booster = lgb.train(hyper.lgb_params(), data, **kwargs)
        log.debug("fit round %d: %d trees on %d rows", round_, booster.num_trees(), data.num_data())
        booster.free_dataset()  # its binned rows: a fold's predictor outlives its fit
    assert booster is not None
    return booster


def _round_rows(m: FeatureMatrix, y: F32, booster: lgb.Booster | None) -> tuple[list[F32], F32]:
    """The teacher-forced rows of (``m``, ``y``) and, after a fit (``booster``), the same rows
    with the lag replaced by the booster's rollout (DAgger, module docstring): a list of row
    blocks LightGBM bins without joining them, and their labels."""
    labels = np.asarray(y, np.float32).reshape(-1)
    ok = np.isfinite(labels)
    x_tf, y_tf = m.values[ok], labels[ok]
    if booster is None:
        return [x_tf], y_tf
    free = rollout(_predictor(booster), m)
    lag = _lag_of(free, m.cube()[0, :, m.state_column]).reshape(-1)
    x_dg = x_tf.copy()
    x_dg[:, m.state_column] = lag[ok]
    return [x_tf, x_dg], np.concatenate([y_tf, y_tf])


def _datasets(
    sets: list[tuple[FeatureMatrix, F32]],
    hyper: HyperParams,
    binned: BinnedRows | None,
    cells: tuple[npt.NDArray[np.bool_], ...],
    booster: lgb.Booster | None,
) -> tuple[lgb.Dataset, lgb.Dataset | None]:
    """The training dataset and the early-stopping one (None without it) of a round's rows
    (:func:`_round_rows`). Each is binned before the next is made, so the raw rows of one
    set at a time are held beside the binned ones: subsets of ``binned`` in the first round
    (the sets' ``cells`` given), binned with its bin mappers otherwise."""
    made: list[lgb.Dataset] = []
    for i, (m, y) in enumerate(sets):
        if booster is None and binned is not None and i < len(cells):
            made.append(binned.subset(cells[i]))
            continue
        x, labels = _round_rows(m, y, booster)
        if binned is not None:
            data = binned.rows(x, labels)
        elif made:  # the early-stopping rows, binned like the training rows
            data = lgb.Dataset(x, labels, reference=made[0], params=made[0].get_params())
        else:
            data = lgb.Dataset(x, labels, feature_name=list(m.names), params=hyper.lgb_params())
        made.append(data.construct())
    return made[0], (made[1] if len(made) > 1 else None)


@dataclass(frozen=True)
class FoldModels:
    """The models of a cross-validation: ``folds`` (the fold of each of the matrix's cells)
    and ``predictors[k]``, fitted without fold k (for held-out experiments, :mod:`smda.science.gain`)."""

    folds: IntArray
    predictors: tuple[Predict, ...]


def cross_validate(
    matrix: FeatureMatrix, labels: F32, *, hyper: HyperParams, cv: CVConfig, dagger_rounds: int
) -> dict[str, Any]:
    """K-fold CV (module docstring): teacher-forced and free-running skill on held-out cells.

    Parameters
    ----------
    matrix:
        Teacher-forced features of consecutive days.
    labels:
        Targets (n_days, n_cells) m3 m-3 aligned with ``matrix`` (NaN rows are skipped).

    Returns
    -------
    A JSON-serialisable report: ``protocol``, ``teacher_forced`` and ``free_running``
    (``{"r": median R, "ubrmsd": median ubRMSD}``), ``best_iterations`` per fold, sizes.
    """
    return _cross_validate(matrix, labels, hyper=hyper, cv=cv, dagger_rounds=dagger_rounds)[0]


def _cross_validate(
    matrix: FeatureMatrix,
    labels: F32,
    *,
    hyper: HyperParams,
    cv: CVConfig,
    dagger_rounds: int,
    binned: BinnedRows | None = None,
) -> tuple[dict[str, Any], FoldModels]:
    folds = assign_folds(matrix.lat, matrix.lon, cv)
    binned = binned or BinnedRows.of(matrix, labels, hyper)
    predictors: list[Predict] = []
    tf = np.full(labels.shape, np.nan, np.float32)
    fr = np.full(labels.shape, np.nan, np.float32)
    best = []
    for k in range(cv.n_folds):
        test, stop = folds == k, folds == (k + 1) % cv.n_folds
        fit = ~(test | stop)
        booster = fit_booster(
            (matrix.select(fit), labels[:, fit]),
            (matrix.select(stop), labels[:, stop]),
            hyper,
            dagger_rounds=dagger_rounds,
            binned=binned,
            cells=(fit, stop),
        )
        best.append(int(booster.best_iteration or booster.num_trees()))
        held = matrix.select(test)
        predict = _predictor(booster)
        predictors.append(predict)
        tf[:, test] = predict(held.values).reshape(len(held.days), -1)
        fr[:, test] = rollout(predict, held)
        log.info("CV %s fold %d/%d: %d trees", cv.scheme, k + 1, cv.n_folds, best[-1])
    n_groups = int(np.unique(_groups(matrix.lat, matrix.lon, cv)).size)
    report = {
        "protocol": cv.describe(n_groups),
        "scheme": cv.scheme,
        "n_folds": cv.n_folds,
        "block_deg": cv.block_deg,
        "dagger_rounds": dagger_rounds,
        "teacher_forced": _summary(np.clip(tf, 0.0, matrix.upper), labels),
        "free_running": _summary(fr, labels),
        "best_iterations": best,
        "rows": int(np.isfinite(labels).sum()),
        "cells": matrix.n_cells,
        "days": len(matrix.days),
        "features": len(matrix.names),
    }
    return report, FoldModels(folds, tuple(predictors))


def train(
    matrix: FeatureMatrix,
    labels: npt.ArrayLike,
    spec: FeatureSpec,
    *,
    config: TrainConfig | None = None,
    input_hashes: Mapping[str, str] | None = None,
) -> ModelBundle:
    """Cross-validate, fit the final model on all cells and bundle it
    (:func:`train_with_folds` without the fold models)."""
    return train_with_folds(matrix, labels, spec, config=config, input_hashes=input_hashes)[0]


def train_with_folds(
    matrix: FeatureMatrix,
    labels: npt.ArrayLike,
    spec: FeatureSpec,
    *,
    config: TrainConfig | None = None,
    input_hashes: Mapping[str, str] | None = None,
) -> tuple[ModelBundle, FoldModels]:
    """Cross-validate, fit the final model on all cells and bundle it.

    Parameters
    ----------
    matrix:
        Teacher-forced features (:func:`smda.science.features.build_features` with the lagged label
        as state) of consecutive days.
    labels:
        Targets (n_days, n_cells) m3 m-3 aligned with ``matrix``.
    spec:
        The spec ``matrix`` was built with (its names must match).
    config:
        Hyper-parameters, CV protocol, comparison schemes and DAgger rounds.
    input_hashes:
        Hashes of the training inputs known to the caller (e.g. staged files), recorded with
        the hashes of the matrix and labels.

    Returns
    -------
    The :class:`ModelBundle` (no CDF tables yet: add them with :meth:`ModelBundle.with_cdf`)
    and the :class:`FoldModels` of the primary CV scheme. A region too small for the CV
    protocol gets one it can hold (:func:`fit_cv_to_region`), said in the report's ``note``.
    """
    cfg = config or TrainConfig()
    y = np.asarray(labels, dtype=np.float32)
    if matrix.names != spec.names or y.shape != (len(matrix.days), matrix.n_cells):
        raise ValueError(
            f"matrix ({matrix.names}, {len(matrix.days)}×{matrix.n_cells}) and labels {y.shape} "
            f"do not match the spec ({spec.names})"
        )
    report: dict[str, dict[str, Any]] = {}
    fold_models: FoldModels | None = None
    binned = BinnedRows.of(matrix, y, cfg.hyper)
    for scheme in (cfg.cv.scheme, *cfg.compare):
        cv, note = fit_cv_to_region(replace(cfg.cv, scheme=scheme), matrix.lat, matrix.lon)
        report[scheme], models = _cross_validate(
            matrix, y, hyper=cfg.hyper, cv=cv, dagger_rounds=cfg.dagger_rounds, binned=binned
        )
        if note is not None:
            report[scheme]["note"] = note
        fold_models = fold_models or models
    n_trees = max(1, round(float(np.median(report[cfg.cv.scheme]["best_iterations"]))))
    everything = np.ones(matrix.n_cells, dtype=bool)
    booster = fit_booster(
        (matrix, y),
        None,
        cfg.hyper,
        dagger_rounds=cfg.dagger_rounds,
        rounds=n_trees,
        binned=binned,
        cells=(everything,),
    )
    hashes = {
        "features": content_hash(matrix.values),
        "labels": content_hash(y),
        **(input_hashes or {}),
    }
    assert fold_models is not None
    bundle = ModelBundle(
        model=booster.model_to_string(),
        spec=spec,
        hyper=cfg.hyper,
        dagger_rounds=cfg.dagger_rounds,
        cv_report=report,
        input_hashes=hashes,
        climatology=Climatology.fit(y, matrix),
    )
    return bundle, fold_models
