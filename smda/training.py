"""Training from the store: staged label products → TC-merged labels → model bundle.

:func:`train_from_store` is what ``smda train`` and the train flow run (ARCHITECTURE.md,
"Training"). Over the period ``start … end`` of a region's store:

1. **Check** that everything required is staged (ERA5 of every target day, MSWEP over the
   antecedent window, the static fields, at least one day of each label product); otherwise
   :class:`~smda.errors.MissingInputs` lists what to fetch.
2. **Labels**: the three label products (default SMAP ``soil_moisture``, ERA5-Land
   ``swvl1_mean``, GLDAS ``soil_moisture``) over ``start … end`` are merged per pixel by triple
   collocation (:func:`smda.labels.merge_labels`) with the SCIENCE.md §1 defaults: reference
   SMAP (labels on SMAP's scale, m3 m-3), TC-β scaling, minimum-variance ("optimal") weights,
   equal-weight fallback where TC is invalid, ``min_n`` = 100 common days. A short period
   has fewer common days: lower ``min_n`` or accept the fallback (the flags say which).
3. **Features** (:func:`smda.features.build_features`) of the *target days*
   ``start + 1 … end`` with the label of D−1 as the state (teacher forcing,
   :func:`smda.features.lagged`): the first day of the period serves only as the state of the
   second. Land cells that never get a label are left out.
4. **Model** (:func:`smda.model.train`): blocked K-fold CV (and the comparison schemes), DAgger,
   the final booster and the climatology.
5. **CDF tables** (:func:`smda.nudging.fit_cdf`): the final model run free over the target days
   (from the label of ``start``) against the staged SMAP of the same days.
6. **Gain** (:func:`smda.gain.estimate_gain`): every cell cycled over the target days by the CV
   model that did not see it, nudged toward its SMAP*; the gain (constant or per cell) with
   the smallest held-out mean squared innovation, σ_o² from SMAP's TC error variance.
7. **Bundle**: ``with_cdf``, ``with_tc_stats`` (the merge settings, the label flags, the
   median TC ρ² and error SD per product, the period) and ``with_gain``; ``input_hashes`` carry
   one SHA-256 per source over the ledger digests of every staged file used (so the version
   changes when a staged input changes).

:func:`describe` renders a :class:`TrainOutcome` as a short markdown summary (label flags, TC,
CV blocked vs random, teacher-forced vs free-running) for the CLI and Prefect artifacts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.bundle import ModelBundle
from smda.errors import ConfigError, MissingInputs
from smda.features import (
    FeatureMatrix,
    FeatureSpec,
    antecedent_precipitation,
    build_features,
    lagged,
)
from smda.gain import GainField, estimate_gain
from smda.inputs import (
    STATIC,
    load_era5,
    load_series,
    load_static,
    missing_days,
    missing_message,
    static_version,
)
from smda.labels import LabelFlag, LabelResult, merge_labels
from smda.model import FoldModels, TrainConfig, assign_folds, rollout, train_with_folds
from smda.nudging import CdfTables, fit_cdf
from smda.store import Store

__all__ = [
    "LABEL_PRODUCTS",
    "LABEL_VARIABLES",
    "MERGE_DEFAULTS",
    "Progress",
    "TrainOutcome",
    "describe",
    "train_from_store",
]

LOG = logging.getLogger(__name__)

LABEL_PRODUCTS = ("smap", "era5land", "gldas")
"""The default label triplet (SCIENCE.md §1)."""
LABEL_VARIABLES = {"smap": "soil_moisture", "era5land": "swvl1_mean", "gldas": "soil_moisture"}
"""The staged variable (m3 m-3) of each label product."""
MERGE_DEFAULTS: dict[str, Any] = {"scaling": "tc_beta", "weighting": "optimal", "fallback": "equal"}
"""How labels are merged (SCIENCE.md §1): TC-β rescaling, minimum-variance weights, equal
weights of the usable products where TC is invalid."""
Progress = Callable[[str], None]
"""Receives a one-line message at each training step."""


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train_from_store` produced.

    Attributes
    ----------
    bundle:
        The model bundle (CDF tables and TC statistics included), ready to register.
    start, end:
        The target days (the label of ``start − 1`` is the first state).
    labels:
        Land pixels per label flag: ``{"tc", "fallback_equal", "fallback_best", "no_data"}``.
    tc:
        TC summary (``bundle.tc_stats``): merge settings, median ρ² and error SD per product.
    cv:
        Per CV scheme: ``{"protocol", "teacher_forced": {"r", "ubrmsd"}, "free_running": …}``.
    cdf:
        ``{"pixels": with a table, "median_n": paired days}``.
    gain:
        How the gain was chosen (:attr:`smda.gain.GainField.provenance`).
    cells, days:
        Land cells and target days of the training matrix.
    seconds:
        Wall time of each step (not part of the bundle).
    """

    bundle: ModelBundle
    start: date
    end: date
    labels: dict[str, int]
    tc: dict[str, Any]
    cv: dict[str, dict[str, Any]]
    cdf: dict[str, Any]
    gain: dict[str, Any]
    cells: int
    days: int
    seconds: dict[str, float] = field(default_factory=dict)


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


# -- checks -------------------------------------------------------------------------------------
def _check_options(products: Sequence[str], reference: str, start: date, end: date) -> None:
    problems = []
    if end <= start:
        problems.append(f"the period {start}..{end} must span at least two days")
    if len(products) != 3 or len(set(products)) != 3:
        problems.append(f"label products must be three distinct names, got {list(products)}")
    unknown = [p for p in products if p not in LABEL_VARIABLES]
    if unknown:
        problems.append(f"unknown label product(s) {unknown}; choose from {list(LABEL_VARIABLES)}")
    if reference not in products:
        problems.append(
            f"reference {reference!r} is not one of the label products {list(products)}"
        )
    if problems:
        raise ConfigError("cannot train: " + "; ".join(problems))


def _check_staged(
    store: Store, products: Sequence[str], start: date, end: date, history_days: int
) -> None:
    """Raise :class:`MissingInputs` listing every required input that is not staged."""
    target = pd.date_range(start + timedelta(days=1), end).date.tolist()
    window = pd.date_range(target[0] - timedelta(days=history_days - 1), end).date.tolist()
    missing: list[tuple[str, date | None]] = [
        ("era5", d) for d in missing_days(store, "era5", target)
    ]
    missing += [("mswep", d) for d in missing_days(store, "mswep", window)]
    period = pd.date_range(start, end).date.tolist()
    for name in products:
        absent = missing_days(store, name, period)
        if len(absent) == len(period):
            missing += [(name, d) for d in absent]
    if not store.static_path(STATIC).exists():
        missing.append((STATIC, None))
    if missing:
        raise MissingInputs(missing_message(store, missing, f"training {start}..{end}"), missing)


def _check_cv(static: xr.Dataset, config: TrainConfig) -> None:
    """Fail before the expensive steps when the region has too few CV groups."""
    land = np.asarray(static["land"].values, dtype=bool)
    lat, lon = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    for scheme in (config.cv.scheme, *config.compare):
        try:
            assign_folds(lat[land], lon[land], replace(config.cv, scheme=scheme))
        except ValueError as exc:
            raise ConfigError(
                f"cannot cross-validate on this region ({int(land.sum())} land cells): {exc}"
            ) from exc


# -- labels -------------------------------------------------------------------------------------
def _instrument(store: Store, spec: FeatureSpec, start: date, end: date) -> xr.DataArray:
    """The antecedent precipitation index of the staged MSWEP over ``start … end`` (warmed up
    over the staged history before ``start``): the labels' independent instrument."""
    first = start + timedelta(days=1) - timedelta(days=spec.history_days - 1)
    precip = load_series(store, "mswep", "precipitation", min(first, start), end)
    api = antecedent_precipitation(precip, spec.api_decay)
    return api.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end)))


def _merge(
    store: Store,
    products: Sequence[str],
    reference: str,
    period: tuple[date, date],
    min_n: int,
    instrument: xr.DataArray,
) -> tuple[LabelResult, xr.DataArray]:
    """Merged labels and the staged SMAP (or the reference product) over the period."""
    start, end = period
    series = [load_series(store, p, LABEL_VARIABLES[p], start, end) for p in products]
    instrument = instrument.assign_coords(time=series[0]["time"])
    merged = merge_labels(
        series,
        names=list(products),
        reference=reference,
        min_n=min_n,
        instrument=instrument,
        **MERGE_DEFAULTS,
    )
    smap = series[list(products).index("smap")] if "smap" in products else None
    if smap is None:
        smap = load_series(store, "smap", "soil_moisture", start, end)
    return merged, smap


def _label_summary(merged: LabelResult, land: npt.NDArray[np.bool_]) -> dict[str, int]:
    flags = np.asarray(merged.flag.values)[land]
    return {code.name.lower(): int((flags == code).sum()) for code in LabelFlag}


def _median(values: npt.NDArray[np.floating]) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(np.median(finite)), 6) if finite.size else None


def _tc_summary(
    merged: LabelResult, land: npt.NDArray[np.bool_], products: Sequence[str], min_n: int
) -> dict[str, Any]:
    """Merge settings and the median over valid-TC land pixels of ρ² and the error SD (in
    the reference's units) per product; products without a valid pixel are left out."""
    tc = merged.tc
    valid = np.asarray(tc["valid"].values, dtype=bool) & land
    stats: dict[str, Any] = {
        "products": list(products),
        "reference": str(merged.label.attrs["reference"]),
        **MERGE_DEFAULTS,
        "min_n": min_n,
        "valid_pixels": int(valid.sum()),
        "land_pixels": int(land.sum()),
        "median_common_days": _median(np.asarray(tc["n"].values, float)[land]),
        "median_error_correlation": _median(
            np.asarray(tc["error_correlation"].values, float)[valid]
        ),
        "rho2": {},
        "error_sd": {},
    }
    for i, name in enumerate(products):
        for key, var in (("rho2", "rho2"), ("error_sd", "err_std_scaled")):
            value = _median(np.asarray(tc[var].values[i], dtype=float)[valid])
            if value is not None:
                stats[key][name] = value
    return stats


# -- features, model, CDF -----------------------------------------------------------------------
def _matrix(
    store: Store,
    spec: FeatureSpec,
    label: xr.DataArray,
    static: xr.Dataset,
    days: pd.DatetimeIndex,
) -> tuple[FeatureMatrix, npt.NDArray[np.float32]]:
    """Teacher-forced features of ``days`` and their labels (n_days, n_cells), over the land
    cells that have a label on some day."""
    first, last = days[0].date(), days[-1].date()
    era5 = load_era5(store, first, last)
    precip = load_series(
        store, "mswep", "precipitation", first - timedelta(days=spec.history_days - 1), last
    )
    fm = build_features(
        spec, days, era5=era5, precip=precip, static=static, state=lagged(label, days)
    )
    y = label.sel(time=days).values.reshape(len(days), -1)[:, fm.cells]
    keep = np.isfinite(y).any(axis=0)
    if not keep.any():
        raise ConfigError(
            f"no land cell has a label over {first}..{last}: the reference product has no "
            "valid value; choose another period or reference"
        )
    return fm.select(keep), np.ascontiguousarray(y[:, keep], dtype=np.float32)


def _smap_rows(fm: FeatureMatrix, smap: xr.DataArray) -> npt.NDArray[np.float32]:
    """The staged SMAP of the matrix's days and cells, (days, cells)."""
    values = smap.sel(time=fm.days).values.reshape(len(fm.days), -1)[:, fm.cells]
    return np.asarray(values, dtype=np.float32)


def _cdf(bundle: ModelBundle, fm: FeatureMatrix, smap: xr.DataArray, min_samples: int) -> CdfTables:
    """CDF tables of SMAP against the final model run free over the matrix's days."""
    free = rollout(bundle.predict, fm)
    return fit_cdf(free, _smap_rows(fm, smap), fm.cell_ids, min_samples=min_samples)


def _gain(
    fm: FeatureMatrix,
    folds: FoldModels,
    smap: xr.DataArray,
    cdf: CdfTables,
    merged: LabelResult,
    products: Sequence[str],
) -> GainField:
    """The gain from held-out cycles (:func:`smda.gain.estimate_gain`), with SMAP's TC error
    variance where TC was valid."""
    err_var = np.full(fm.n_cells, np.nan)
    if "smap" in products:
        tc = merged.tc
        i = list(products).index("smap")
        var = np.where(tc["valid"].values, tc["err_var"].values[i], np.nan)
        err_var = np.asarray(var, dtype=np.float64).reshape(-1)[fm.cells]
    return estimate_gain(fm, folds.folds, folds.predictors, _smap_rows(fm, smap), cdf, err_var)


def _digest(store: Store, source: str, days: Sequence[date]) -> str | None:
    """SHA-256 over the ledger digests of the staged ``days`` of ``source`` (None if none)."""
    ledger = store.ledger(source)
    h = hashlib.sha256()
    found = False
    for day in days:
        record = ledger.get(day)
        if record is not None and store.staged_path(source, day).exists():
            h.update(f"{day} {record.sha256}\n".encode())
            found = True
    return h.hexdigest() if found else None


def _input_hashes(
    store: Store, products: Sequence[str], start: date, end: date, history_days: int
) -> dict[str, str]:
    period = pd.date_range(start, end).date.tolist()
    target = period[1:]
    window = pd.date_range(target[0] - timedelta(days=history_days - 1), end).date.tolist()
    used = {"era5": target, "mswep": window, **{p: period for p in products}}
    if "smap" not in used:
        used["smap"] = target
    hashes = {f"staged/{s}": _digest(store, s, days) for s, days in used.items()}
    static = static_version(store)
    if static is not None:
        hashes[f"static/{STATIC}"] = static["sha256"]
    return {k: v for k, v in hashes.items() if v is not None}


def _cv_summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        scheme: {
            "protocol": rep["protocol"],
            "teacher_forced": dict(rep["teacher_forced"]),
            "free_running": dict(rep["free_running"]),
            "trees": int(np.median(rep["best_iterations"])),
        }
        for scheme, rep in report.items()
    }


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

    Raises
    ------
    MissingInputs
        If required inputs are not staged (the message says what to fetch).
    ConfigError
        If the options are inconsistent, the region has too few CV groups, or no cell has
        a label.
    """
    cfg, spec = config or TrainConfig(), spec or FeatureSpec()
    _check_options(label_products, reference, start, end)
    steps = _Steps(progress)
    steps.start("check", f"checking staged inputs of {start}..{end} in region {store.region}")
    _check_staged(store, label_products, start, end, spec.history_days)
    static = load_static(store)
    _check_cv(static, cfg)
    land = np.asarray(static["land"].values, dtype=bool)
    steps.start("labels", f"merging labels of {', '.join(label_products)} (reference {reference})")
    instrument = _instrument(store, spec, start, end)
    merged, smap = _merge(store, label_products, reference, (start, end), min_n, instrument)
    days = pd.date_range(start + timedelta(days=1), end)
    steps.start("features", f"building features of {len(days)} days")
    fm, y = _matrix(store, spec, merged.label, static, days)
    steps.start("model", f"training on {fm.n_cells} cells × {len(days)} days (CV, DAgger)")
    hashes = _input_hashes(store, label_products, start, end, spec.history_days)
    bundle, folds = train_with_folds(fm, y, spec, config=cfg, input_hashes=hashes)
    steps.start("cdf", "fitting SMAP CDF tables against the free-running model")
    cdf = _cdf(bundle, fm, smap, cdf_min_samples)
    steps.start("gain", "estimating the nudging gain from held-out cycles")
    gain = _gain(fm, folds, smap, cdf, merged, label_products)
    tc = _tc_summary(merged, land, label_products, min_n)
    tc["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    bundle = bundle.with_cdf(cdf).with_tc_stats(tc).with_gain(gain)
    steps.stop()
    LOG.info("train: model %s (%d trees) from %s..%s", bundle.version, bundle.num_trees, start, end)
    return TrainOutcome(
        bundle=bundle,
        start=days[0].date(),
        end=end,
        labels=_label_summary(merged, land),
        tc=tc,
        cv=_cv_summary(dict(bundle.cv_report)),
        cdf={"pixels": int(cdf.cell_ids.size), "median_n": _median(cdf.n.astype(float))},
        gain={"summary": gain.describe(), **gain.provenance},
        cells=fm.n_cells,
        days=len(days),
        seconds=steps.seconds,
    )


# -- presentation -------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def describe(outcome: TrainOutcome) -> str:
    """A short markdown summary of a training run (label flags, TC, CV, CDF tables)."""
    b, tc = outcome.bundle, outcome.tc
    lines = [
        f"**Model {b.version}** ({b.num_trees} trees, {len(b.feature_names)} features), "
        f"trained on {outcome.start}..{outcome.end}: {outcome.days} days × {outcome.cells} "
        "land cells",
        "",
        f"Labels: TC-merged {', '.join(tc['products'])} on {tc['reference']}'s scale "
        f"({tc['scaling']} scaling, {tc['weighting']} weights, fallback {tc['fallback']}, "
        f"min_n {tc['min_n']}; median {_fmt(tc['median_common_days'], 0)} common days)",
        "",
        "| label pixels | " + " | ".join(k.replace("_", " ") for k in outcome.labels) + " |",
        "|---" * (len(outcome.labels) + 1) + "|",
        "| land cells | " + " | ".join(str(v) for v in outcome.labels.values()) + " |",
        "",
        f"TC over {tc['valid_pixels']} of {tc['land_pixels']} land pixels (valid TC only):",
        "",
        "| product | median ρ² | median error SD (m3 m-3) |",
        "|---|---|---|",
    ]
    for name in tc["products"]:
        lines.append(
            f"| {name} | {_fmt(tc['rho2'].get(name))} | {_fmt(tc['error_sd'].get(name), 4)} |"
        )
    lines += ["", "| CV (median over held-out cells) | R | ubRMSD (m3 m-3) |", "|---|---|---|"]
    for scheme, rep in outcome.cv.items():
        for mode in ("teacher_forced", "free_running"):
            lines.append(
                f"| {scheme}, {mode.replace('_', '-')} | {_fmt(rep[mode]['r'])} | "
                f"{_fmt(rep[mode]['ubrmsd'], 4)} |"
            )
    lines += [""] + [f"- {scheme}: {rep['protocol']}" for scheme, rep in outcome.cv.items()]
    lines.append(
        f"- CDF tables: {outcome.cdf['pixels']} pixels "
        f"(median {_fmt(outcome.cdf['median_n'], 0)} paired days with SMAP)"
    )
    g = outcome.gain
    scores = ", ".join(f"{k} {v:.2e}" for k, v in g.get("scores", {}).items() if np.isfinite(v))
    lines.append(
        f"- Gain: {g['summary']}, chosen by the held-out mean squared innovation "
        f"(m6 m-6: {scores}); median σ_o {_fmt(g.get('median_sigma_o'), 4)}, "
        f"σ_f {_fmt(g.get('median_sigma_f'), 4)} m3 m-3"
    )
    return "\n".join(lines)
