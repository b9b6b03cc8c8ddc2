"""Small cycle results on a 4 × 4 window of the global grid, shared by the operations tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import xarray as xr

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_FORECAST_ONLY, FLAG_LAND, CycleResult
from smda.science.uncertainty import analysis_uncertainty

REGION = BBox(-100, 35, -99, 36)
"""A 1° × 1° box: 4 × 4 cells of 0.25°."""


def region_grid(bbox: BBox = REGION) -> Grid:
    return GLOBAL_025.subset(bbox)


def sea_mask(grid: Grid) -> np.ndarray:
    """Sea in the first row's two westernmost cells and the last cell (deterministic)."""
    sea = np.zeros(grid.shape, dtype=bool)
    sea[0, :2] = True
    sea[-1, -1] = True
    return sea


def small_result(
    day: date, *, grid: Grid | None = None, seed: int = 0, smap: bool = True
) -> CycleResult:
    """A plausible :class:`CycleResult` of ``day``: random soil moisture over land, NaN over
    sea, SMAP assimilated in every other land cell when ``smap``."""
    grid = grid or region_grid()
    rng = np.random.default_rng(seed + day.toordinal())
    sea = sea_mask(grid)
    shape = grid.shape
    forecast = rng.uniform(0.05, 0.45, shape).astype(np.float32)
    assimilated = np.zeros(shape, dtype=bool)
    if smap:
        assimilated.reshape(-1)[::2] = True
    assimilated &= ~sea
    innovations = np.where(assimilated, rng.normal(0.0, 0.03, shape), np.nan).astype(np.float32)
    analysis = np.where(assimilated, forecast + 0.3 * innovations, forecast).astype(np.float32)
    forecast[sea] = np.nan
    analysis[sea] = np.nan
    flags = np.where(sea, 0, FLAG_LAND).astype(np.uint8)
    flags |= np.where(assimilated, FLAG_ASSIMILATED, 0).astype(np.uint8)
    if not smap:
        flags |= np.where(sea, 0, FLAG_FORECAST_ONLY).astype(np.uint8)
    count = np.where(assimilated, rng.integers(1, 3, shape), 0).astype(np.uint16)
    attrs: dict[str, Any] = {"units": "m3 m-3", "forecast_only": int(not smap)}

    def field(values: np.ndarray, name: str) -> xr.DataArray:
        return xr.DataArray(
            values,
            dims=("lat", "lon"),
            coords={"lat": grid.lats, "lon": grid.lons},
            name=name,
            attrs=attrs,
        )

    return CycleResult(
        day=day,
        forecast=field(forecast, "forecast"),
        analysis=field(analysis, "analysis"),
        innovations=field(innovations, "innovations"),
        flags=field(flags, "flags"),
        obs_count=field(count, "obs_count"),
        gain=field(np.where(sea, 0.0, 0.3).astype(np.float32), "gain"),
    )


def small_uncertainty(result: CycleResult) -> xr.DataArray:
    """σ_a for a gain 0.3, σ_f 0.05 and σ_o 0.04 (m3 m-3)."""
    return analysis_uncertainty(result.flags, 0.3, 0.05, 0.04)


def provenance(**changes: Any) -> dict[str, Any]:
    """A provenance dict like the daily flow's."""
    base: dict[str, Any] = {
        "model_version": "0123456789abcdef",
        "inputs": {"era5": {"expver": "0005", "provisional": True}, "smap": "SPL3SMP_E.006"},
        "provisional": True,
        "code_version": "0.1.0",
    }
    base.update(changes)
    return base
