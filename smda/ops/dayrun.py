"""What running one day did: :class:`DayRun`, and the day's innovation statistics.

:func:`smda.ops.days.run_day` returns a :class:`DayRun`; reports, metrics, artifacts and the CLI
read it. The statistics are computed from the day's :class:`~smda.science.cycle.CycleResult`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from smda.science.bundle import ModelBundle
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND, CycleResult
from smda.science.drift import expected_innovation_sd
from smda.science.metrics import pearson_r
from smda.science.uncertainty import analysis_uncertainty

__all__ = [
    "DEFAULT_FORECAST_SD",
    "DEFAULT_SMAP_SD",
    "DayRun",
    "Status",
    "analysis_sd",
    "computed_run",
    "forecast_smap_r",
    "innovation_stats",
    "round_or_none",
]

LOG = logging.getLogger(__name__)

DEFAULT_FORECAST_SD = 0.04
"""Forecast error SD (m3 m-3) when the bundle's CV report has none."""


DEFAULT_SMAP_SD = 0.04
"""SMAP error SD (m3 m-3) when the bundle has no TC statistics for it."""


Status = Literal["analysis", "forecast_only", "skipped"]


@dataclass(frozen=True)
class DayRun:
    """What :func:`run_day` did for one day."""

    day: date
    status: Status
    model_version: str
    seconds: float = 0.0
    cog: str | None = None
    item: str | None = None
    state: str | None = None
    innovation_mean: float = float("nan")
    innovation_sd: float = float("nan")
    n_obs: int = 0
    assimilated_fraction: float = 0.0
    invalidated: list[date] = field(default_factory=list)
    feature_drift: float = float("nan")
    """Largest |z| of the day's feature means against the training distribution."""
    innovation_sd_ratio: float = float("nan")
    """SD of O−F over the spread the training period expects (:mod:`smda.science.drift`)."""
    forecast_smap_r: float = float("nan")
    """Correlation of the forecast (before nudging) with the CDF-matched SMAP over the cells
    assimilated: with ``innovation_sd`` and ``innovation_mean`` a validation that needs no
    station."""

    def as_row(self) -> dict[str, Any]:
        """A flat row for tables (Prefect table artifacts, the CLI)."""
        return {
            "day": self.day.isoformat(),
            "status": self.status,
            "model": self.model_version,
            "assimilated %": round(100 * self.assimilated_fraction, 1),
            "O-F mean": round_or_none(self.innovation_mean),
            "O-F sd": round_or_none(self.innovation_sd),
            "seconds": round(self.seconds, 2),
            "cog": self.cog or "",
        }


def round_or_none(value: float) -> float | None:
    """``value`` rounded to 4 decimals, None when not finite."""
    return round(value, 4) if np.isfinite(value) else None


def innovation_stats(result: CycleResult) -> tuple[float, float, int, float]:
    inn = np.asarray(result.innovations.values, dtype=np.float64)
    flags = np.asarray(result.flags.values)
    valid = np.isfinite(inn)
    n = int(valid.sum())
    land = int(((flags & FLAG_LAND) > 0).sum())
    assimilated = int(((flags & FLAG_ASSIMILATED) > 0).sum())
    mean = float(inn[valid].mean()) if n else float("nan")
    sd = float(inn[valid].std()) if n > 1 else float("nan")
    return mean, sd, n, assimilated / land if land else 0.0


def forecast_smap_r(result: CycleResult) -> float:
    """Pearson R of the forecast with SMAP* (forecast + O−F) where assimilated; NaN below 3."""
    inn = np.asarray(result.innovations.values, dtype=np.float64)
    forecast = np.asarray(result.forecast.values, dtype=np.float64)
    valid = np.isfinite(inn) & np.isfinite(forecast)
    if valid.sum() < 3:
        return float("nan")
    r, _ = pearson_r(forecast[valid], forecast[valid] + inn[valid])
    return float(r)


def computed_run(
    result: CycleResult, bundle: ModelBundle, *, state: str, invalidated: list[date]
) -> DayRun:
    """The :class:`DayRun` of a day just computed and committed at ``state`` (its products,
    ``cog`` and ``item``, and ``seconds`` are set once it is published)."""
    mean, sd, n, frac = innovation_stats(result)
    status: Status = "forecast_only" if result.forecast_only else "analysis"
    LOG.info("%s %s: %d obs, O-F %.4f ± %.4f", result.day, status, n, mean, sd)
    expected = expected_innovation_sd(bundle.gain.provenance) if bundle.gain else float("nan")
    return DayRun(
        result.day,
        status,
        bundle.version,
        state=state,
        innovation_mean=mean,
        innovation_sd=sd,
        n_obs=n,
        assimilated_fraction=frac,
        invalidated=invalidated,
        feature_drift=result.feature_drift,
        innovation_sd_ratio=sd / expected if n else float("nan"),
        forecast_smap_r=forecast_smap_r(result),
    )


def analysis_sd(result: CycleResult, bundle: ModelBundle) -> Any:
    """σ_a of the day (m3 m-3, (lat, lon)) from the gain used and the error SDs of the forecast
    and of SMAP*: the held-out cycles' medians (:mod:`smda.science.gain`) when the model has
    them, else the CV free-running ubRMSD and SMAP's TC error SD."""
    cv = bundle.cv_report.get(next(iter(bundle.cv_report), ""), {})
    forecast_sd = float(cv.get("free_running", {}).get("ubrmsd", DEFAULT_FORECAST_SD))
    smap_sd = float(bundle.tc_stats.get("error_sd", {}).get("smap", DEFAULT_SMAP_SD))
    held_out = bundle.gain.provenance if bundle.gain is not None else {}
    forecast_sd = float(held_out.get("median_sigma_f") or forecast_sd)
    smap_sd = float(held_out.get("median_sigma_o") or smap_sd)
    return analysis_uncertainty(result.flags, result.gain, forecast_sd, smap_sd)
