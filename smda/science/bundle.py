"""A trained model and everything needed to run and audit it: the versioned model bundle.

:class:`ModelBundle` holds the LightGBM booster (as its model string), the feature list and
order, the hyper-parameters, the cross-validation report, hashes of the training inputs, the
cold-start :class:`Climatology`, the CDF tables rescaling SMAP (:mod:`smda.science.nudging`), the
triple-collocation statistics of the labels and the nudging gain estimated from the training
data (:mod:`smda.science.gain`). Its version is a hash of that content.

Science core: numpy and lightgbm; the bundle serialises to a dict and arrays
(:meth:`ModelBundle.to_parts`), writing files is :mod:`smda.storage.bundle_io`'s job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from smda.science.drift import FeatureStats
from smda.science.features import FeatureMatrix, FeatureSpec
from smda.science.gain import GainField
from smda.science.nudging import CdfTables

__all__ = ["BUNDLE_FORMAT", "Climatology", "HyperParams", "ModelBundle", "Predict", "content_hash"]

F32 = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Predict = Callable[[F32], npt.NDArray[np.floating]]
"""Feature rows (n, n_features) → predictions (n,)."""
BUNDLE_FORMAT = 1
"""Version of the bundle layout (:meth:`ModelBundle.to_parts`)."""


def content_hash(*arrays: npt.NDArray[Any]) -> str:
    """SHA-256 (hex) over the raw bytes of the arrays."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).view(np.uint8).data)
    return h.hexdigest()


@dataclass(frozen=True)
class HyperParams:
    """LightGBM hyper-parameters (SCIENCE.md §2 starting point): L2 objective, early stopping on
    the RMSE (m3 m-3) of held-out cells."""

    learning_rate: float = 0.05
    num_leaves: int = 63
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    max_rounds: int = 1000
    """Upper bound on the number of trees (early stopping usually ends sooner)."""
    early_stopping_rounds: int = 20
    """Trees in a row without an improvement that end a fit. 20 rather than 50: on the
    10° × 10° region-year the default protocol then takes 172–179 s instead of 227 s on 2 cores, at
    a blocked-CV skill within 0.001 of R (README, "What it costs")."""
    early_stopping_min_delta: float = 1e-4
    """Smallest drop of the early-stopping cells' RMSE (m3 m-3) that counts as an improvement:
    training stops when ``early_stopping_rounds`` trees in a row together gain less. 1e-4 m3 m-3
    is 1/400 of the 0.04 m3 m-3 ubRMSD a satellite product aims at: trees that buy less change
    nothing anyone can measure, and without it the loss creeps down to the tree cap."""
    max_bin: int = 255
    """Histogram bins per feature (LightGBM's default): fewer bins make every fit cheaper."""
    num_threads: int = 2
    seed: int = 0

    def lgb_params(self) -> dict[str, Any]:
        """Parameters for ``lightgbm.train``."""
        return {
            "objective": "regression",
            "metric": "rmse",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "max_bin": self.max_bin,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


@dataclass(frozen=True, eq=False)
class Climatology:
    """Monthly mean of the label per global cell: the cold-start state.

    Attributes
    ----------
    cell_ids:
        Global 0.25° cell ids, sorted (n_cells,).
    monthly:
        float32 (12, n_cells) m3 m-3: mean label of each calendar month (the cell's overall
        mean for a month without data).
    """

    cell_ids: IntArray
    monthly: F32

    @classmethod
    def fit(cls, labels: F32, matrix: FeatureMatrix) -> Climatology:
        """From labels (n_days, n_cells) aligned with ``matrix``."""
        y = np.asarray(labels, dtype=np.float64)
        months = matrix.days.month.to_numpy() - 1

        def mean(part: FloatArray) -> FloatArray:
            n = np.isfinite(part).sum(axis=0)
            total = np.where(np.isfinite(part), part, 0.0).sum(axis=0)
            return np.where(n > 0, total / np.maximum(n, 1), np.nan)

        overall = mean(y)
        monthly = np.stack([mean(y[months == m]) for m in range(12)])
        monthly = np.where(np.isfinite(monthly), monthly, overall)
        order = np.argsort(matrix.cell_ids, kind="stable")
        return cls(matrix.cell_ids[order], monthly[:, order].astype(np.float32))

    def field(self, cell_ids: npt.ArrayLike, month: int) -> F32:
        """The month's (1–12) climatology at ``cell_ids``; the mean over all cells elsewhere."""
        ids = np.asarray(cell_ids, dtype=np.int64)
        row = self.monthly[month - 1]
        known = row[np.isfinite(row)]
        fallback = np.float32(known.mean()) if known.size else np.float32(np.nan)
        if not row.size:
            return np.full(ids.shape, fallback, dtype=np.float32)
        pos = np.clip(np.searchsorted(self.cell_ids, ids), 0, row.size - 1)
        found = (self.cell_ids[pos] == ids) & np.isfinite(row[pos])
        return np.where(found, row[pos], fallback).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """A trained model and everything needed to run and audit it, versioned by content.

    Attributes
    ----------
    model:
        The LightGBM booster as its model string.
    spec:
        Features and their order (``spec.names``).
    hyper, dagger_rounds:
        How it was trained.
    cv_report:
        Cross-validation reports by scheme (:func:`cross_validate`).
    input_hashes:
        SHA-256 of the training inputs.
    climatology:
        Cold-start state (:class:`Climatology`).
    cdf:
        Tables rescaling SMAP to the model (:func:`smda.science.nudging.fit_cdf`), or None.
    tc_stats:
        Triple-collocation statistics of the labels (free-form, JSON-serialisable).
    gain:
        The nudging gain estimated from the training data (:mod:`smda.science.gain`), or None.
    feature_stats:
        Mean and SD of each feature over the training rows (:class:`FeatureStats`), the
        reference of the feature-drift metric; None for bundles trained before it was stored.
    """

    model: str
    spec: FeatureSpec
    hyper: HyperParams
    dagger_rounds: int
    cv_report: Mapping[str, Any]
    input_hashes: Mapping[str, str]
    climatology: Climatology
    cdf: CdfTables | None = None
    tc_stats: Mapping[str, Any] = field(default_factory=dict)
    gain: GainField | None = None
    feature_stats: FeatureStats | None = None

    @cached_property
    def booster(self) -> lgb.Booster:
        return lgb.Booster(model_str=self.model)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.spec.names

    @property
    def num_trees(self) -> int:
        return int(self.booster.num_trees())

    def predict(self, rows: F32, *, num_threads: int | None = None) -> F32:
        """Raw predictions (m3 m-3, unclipped) for feature rows (n, n_features)."""
        threads = num_threads or self.hyper.num_threads
        return np.asarray(self.booster.predict(rows, num_threads=threads), dtype=np.float32)

    def with_cdf(self, cdf: CdfTables) -> ModelBundle:
        """A new bundle (new version) with these CDF tables."""
        return replace(self, cdf=cdf)

    def with_tc_stats(self, stats: Mapping[str, Any]) -> ModelBundle:
        """A new bundle (new version) with these TC statistics."""
        return replace(self, tc_stats=dict(stats))

    def with_gain(self, gain: GainField) -> ModelBundle:
        """A new bundle (new version) with this gain."""
        return replace(self, gain=gain)

    def with_feature_stats(self, stats: FeatureStats) -> ModelBundle:
        """A new bundle (new version) with the training distribution of its features."""
        if stats.names != self.spec.names:
            raise ValueError("feature statistics are for other features than the bundle's")
        return replace(self, feature_stats=stats)

    def to_parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """(metadata, arrays): a JSON-serialisable dict (with the model string) and named
        arrays (climatology, CDF tables, gain). Inverse: :meth:`from_parts`."""
        meta = {
            "format": BUNDLE_FORMAT,
            "model": self.model,
            "feature_names": list(self.spec.names),
            "spec": self.spec.to_dict(),
            "hyper": asdict(self.hyper),
            "dagger_rounds": self.dagger_rounds,
            "cv_report": self.cv_report,
            "input_hashes": dict(self.input_hashes),
            "tc_stats": dict(self.tc_stats),
        }
        if self.gain is not None:
            meta["gain"] = dict(self.gain.provenance)
        if self.feature_stats is not None:
            meta["feature_stats"] = self.feature_stats.to_dict()
        arrays: dict[str, npt.NDArray[Any]] = {
            "clim_cell_ids": self.climatology.cell_ids,
            "clim_monthly": self.climatology.monthly,
        }
        if self.cdf is not None:
            arrays.update(self.cdf.to_arrays())
        if self.gain is not None:
            arrays.update(self.gain.to_arrays())
        return meta, arrays

    @classmethod
    def from_parts(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]
    ) -> ModelBundle:
        """Rebuild a bundle from :meth:`to_parts` output.

        Raises
        ------
        ValueError
            If the format is unknown or the feature order disagrees with the spec.
        """
        if meta.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"bundle format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
        spec = FeatureSpec.from_dict(meta["spec"])
        if tuple(meta["feature_names"]) != spec.names:
            raise ValueError("bundle feature_names disagree with its spec")
        return cls(
            model=meta["model"],
            spec=spec,
            hyper=HyperParams(**meta["hyper"]),
            dagger_rounds=int(meta["dagger_rounds"]),
            cv_report=meta["cv_report"],
            input_hashes=meta["input_hashes"],
            climatology=Climatology(
                np.asarray(arrays["clim_cell_ids"], np.int64),
                np.asarray(arrays["clim_monthly"], np.float32),
            ),
            cdf=CdfTables.from_arrays(arrays) if "cdf_cell_ids" in arrays else None,
            tc_stats=meta.get("tc_stats", {}),
            gain=GainField.from_arrays(arrays, meta.get("gain", {}))
            if "gain_values" in arrays
            else None,
            feature_stats=FeatureStats.from_dict(meta["feature_stats"])
            if "feature_stats" in meta
            else None,
        )

    @cached_property
    def version(self) -> str:
        """Content id: the first 16 hex digits of SHA-256 over metadata and arrays."""
        meta, arrays = self.to_parts()
        h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
        for name in sorted(arrays):
            h.update(name.encode())
            h.update(content_hash(arrays[name]).encode())
        return h.hexdigest()[:16]
