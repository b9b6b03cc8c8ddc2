"""Validating analysed days: innovation statistics per day, in-situ skill where ISMN is staged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from smda.ops.days import round_or_none
from smda.ops.runtime import Runtime
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND

__all__ = ["STATION_WINDOW_DAYS", "ValidationReport", "validate_days"]


@dataclass(frozen=True)
class ValidationReport:
    """Validation of analysed days: innovation statistics per day, in-situ skill where staged.

    Attributes
    ----------
    days:
        One row per day: ``day``, ``status``, ``n_obs``, ``omf_mean``, ``omf_sd`` (O − F of the
        assimilated SMAP, m3 m-3), ``assimilated_pct``.
    stations:
        In-situ skill of the analysis over the days (ISMN staged for the region): median R,
        ubRMSD, bias and the number of stations; empty without staged ISMN.
    """

    days: list[dict[str, Any]]
    stations: dict[str, float]

    def rows(self) -> list[dict[str, Any]]:
        return self.days

    def markdown(self) -> str:
        if not self.days:
            return "No analysed day to validate.\n"
        keys = list(self.days[0])
        lines = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in self.days]
        if self.stations:
            lines += [
                "",
                "In situ (ISMN): " + ", ".join(f"{k} {v}" for k, v in self.stations.items()),
            ]
        return "\n".join(lines) + "\n"


STATION_WINDOW_DAYS = 30
"""In-situ skill is scored over the chain's days of this window ending at the newest day
validated: a daily run validates one new day, and a correlation needs a series."""


def validate_days(rt: Runtime, days: Sequence[date]) -> ValidationReport:
    """Innovation statistics of ``days`` from the chain, and ISMN skill where stations are staged
    (over the :data:`STATION_WINDOW_DAYS` days of the chain ending at the newest of ``days``)."""
    rows = []
    done = [d for d in days if rt.chain.has(d)]
    for day in done:
        ds = rt.chain.read(day)
        inn = np.asarray(ds["innovations"].values, dtype=np.float64)
        valid = np.isfinite(inn)
        flags = np.asarray(ds["flags"].values)
        land = max(int(((flags & FLAG_LAND) > 0).sum()), 1)
        rows.append(
            {
                "day": day.isoformat(),
                "status": "forecast_only"
                if int(ds["analysis"].attrs.get("forecast_only", 0))
                else "analysis",
                "n_obs": int(valid.sum()),
                "omf_mean": round_or_none(float(inn[valid].mean())) if valid.any() else None,
                "omf_sd": round_or_none(float(inn[valid].std())) if valid.sum() > 1 else None,
                "assimilated_pct": round(
                    100 * int(((flags & FLAG_ASSIMILATED) > 0).sum()) / land, 1
                ),
            }
        )
    window: list[date] = []
    if done:
        first = max(done) - timedelta(days=STATION_WINDOW_DAYS - 1)
        window = [d for d in rt.chain.days() if first <= d <= max(done)]
    return ValidationReport(rows, _station_skill(rt, window))


def _station_skill(rt: Runtime, days: Sequence[date]) -> dict[str, float]:
    staged = set(rt.store.staged_days("ismn"))
    days = [d for d in days if d in staged]
    if len(days) < 2:
        return {}
    from smda.science.metrics import score

    pairs: dict[str, list[tuple[float, float]]] = {}
    for day in days:
        obs = rt.store.open_staged("ismn", day)
        analysis = np.asarray(rt.chain.state(day).values)
        sim = analysis[obs["row"].values, obs["col"].values]
        for name, a, o in zip(obs["station"].values, sim, obs["soil_moisture"].values, strict=True):
            pairs.setdefault(str(name), []).append((float(a), float(o)))
    n = max(len(v) for v in pairs.values())
    table = np.full((2, len(pairs), n), np.nan)
    for i, values in enumerate(pairs.values()):
        table[:, i, : len(values)] = np.asarray(values).T
    s = score(table[0], table[1], min_n=min(n, 30))
    if not np.isfinite(s.r).any():
        return {}
    return {
        "stations": int(np.isfinite(s.r).sum()),
        "median_r": round(float(np.nanmedian(s.r)), 3),
        "median_ubrmsd": round(float(np.nanmedian(s.ubrmsd)), 4),
        "median_bias": round(float(np.nanmedian(s.bias)), 4),
    }
