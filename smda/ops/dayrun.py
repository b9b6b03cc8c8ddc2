"""What running one day did: :class:`DayRun`, and the day's innovation statistics.

:func:`smda.ops.days.run_day` returns a :class:`DayRun`; reports, metrics, artifacts and the CLI
read it. The statistics are computed from the day's :class:`~smda.science.cycle.CycleResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND, CycleResult
from smda.science.metrics import pearson_r

__all__ = ["DayRun", "Status", "forecast_smap_r", "innovation_stats", "round_or_none"]


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
