"""Summaries of a training run: label flags, TC statistics, CV skill, the gain — for the
bundle, the CLI and the Prefect artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.ops.train_data import MERGE_DEFAULTS
from smda.science.bundle import ModelBundle
from smda.science.labels import LabelFlag

__all__ = [
    "TrainOutcome",
    "cv_summary",
    "describe",
    "label_summary",
    "median_or_none",
    "tc_summary",
]


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
        How the gain was chosen (:attr:`smda.science.gain.GainField.provenance`).
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


def label_summary(flag: xr.DataArray, land: npt.NDArray[np.bool_]) -> dict[str, int]:
    flags = np.asarray(flag.values)[land]
    return {code.name.lower(): int((flags == code).sum()) for code in LabelFlag}


def median_or_none(values: npt.NDArray[np.floating]) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(np.median(finite)), 6) if finite.size else None


def tc_summary(
    tc: xr.Dataset, land: npt.NDArray[np.bool_], products: Sequence[str], min_n: int
) -> dict[str, Any]:
    """Merge settings and the median over valid-TC land pixels of ρ² and the error SD (in
    the reference's units) per product; products without a valid pixel are left out (``tc``:
    the merge's per-pixel statistics, :attr:`smda.science.labels.LabelResult.tc`)."""
    valid = np.asarray(tc["valid"].values, dtype=bool) & land
    stats: dict[str, Any] = {
        "products": list(products),
        "reference": str(tc.attrs["reference"]),
        **MERGE_DEFAULTS,
        "min_n": min_n,
        "valid_pixels": int(valid.sum()),
        "land_pixels": int(land.sum()),
        "median_common_days": median_or_none(np.asarray(tc["n"].values, float)[land]),
        "median_error_correlation": median_or_none(
            np.asarray(tc["error_correlation"].values, float)[valid]
        ),
        "rho2": {},
        "error_sd": {},
    }
    for i, name in enumerate(products):
        for key, var in (("rho2", "rho2"), ("error_sd", "err_std_scaled")):
            value = median_or_none(np.asarray(tc[var].values[i], dtype=float)[valid])
            if value is not None:
                stats[key][name] = value
    return stats


def cv_summary(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        scheme: {
            "protocol": rep["protocol"],
            "teacher_forced": dict(rep["teacher_forced"]),
            "free_running": dict(rep["free_running"]),
            "trees": int(np.median(rep["best_iterations"])),
            **({"note": rep["note"]} if "note" in rep else {}),
        }
        for scheme, rep in report.items()
    }


def fmt(value: float | None, digits: int = 3) -> str:
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
        f"min_n {tc['min_n']}; median {fmt(tc['median_common_days'], 0)} common days)",
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
            f"| {name} | {fmt(tc['rho2'].get(name))} | {fmt(tc['error_sd'].get(name), 4)} |"
        )
    lines += ["", "| CV (median over held-out cells) | R | ubRMSD (m3 m-3) |", "|---|---|---|"]
    for scheme, rep in outcome.cv.items():
        for mode in ("teacher_forced", "free_running"):
            lines.append(
                f"| {scheme}, {mode.replace('_', '-')} | {fmt(rep[mode]['r'])} | "
                f"{fmt(rep[mode]['ubrmsd'], 4)} |"
            )
    lines += [""] + [
        f"- {scheme}: {rep['protocol']}" + (f" ({rep['note']})" if "note" in rep else "")
        for scheme, rep in outcome.cv.items()
    ]
    lines.append(
        f"- CDF tables: {outcome.cdf['pixels']} pixels "
        f"(median {fmt(outcome.cdf['median_n'], 0)} paired days with SMAP)"
    )
    sampling = tc.get("sampling")
    if sampling is not None:
        lines.append(
            f"- Sampled: {sampling['cells']} of {sampling['labelled_cells']} labelled cells "
            f"({sampling['rows']} rows, budget {sampling['row_budget']}, seed "
            f"{sampling['seed']}; {sampling['scheme']})"
        )
    g = outcome.gain
    scores = ", ".join(f"{k} {v:.2e}" for k, v in g.get("scores", {}).items() if np.isfinite(v))
    lines.append(
        f"- Gain: {g['summary']}, chosen by the held-out mean squared innovation "
        f"(m6 m-6: {scores}); median σ_o {fmt(g.get('median_sigma_o'), 4)}, "
        f"σ_f {fmt(g.get('median_sigma_f'), 4)} m3 m-3"
    )
    return "\n".join(lines)
