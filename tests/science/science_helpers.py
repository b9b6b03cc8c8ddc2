"""Staged-like daily inputs made from the twin world, shared by the science tests."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import xarray as xr

from smda.staging.era5 import era5_static
from smda.twin.world import World

ERA5_HOURLY = ["t2m", "d2m", "u10", "v10", "sp", "ssrd"]


def twin_inputs(
    world: World, start: date, end: date, history: int = 30
) -> tuple[xr.Dataset, xr.DataArray, xr.Dataset]:
    """Staged-like inputs on ``world.grid``: ERA5 daily aggregates (time, lat, lon) of
    ``start … end`` (simpler equivalents of ``era5_daily``: the world's hourly fields at the
    cell centres, accumulations over valid times 00–23 UTC), MSWEP daily precipitation from
    ``history − 1`` days before ``start`` (the world's own forcing: MSWEP conservatively
    regridded) and the static fields (``era5_static`` of the world's invariants)."""
    g = world.grid
    n = (end - start).days + 1
    h = world.weather.hourly(start.toordinal(), n, g.lats, g.lons, ERA5_HOURLY)
    dims = ("time", "lat", "lon")
    coords = {"time": pd.date_range(start, end, name="time"), "lat": g.lats, "lon": g.lons}
    era5 = xr.Dataset(
        {
            "t2m_mean": (dims, h["t2m"].mean(axis=1)),
            "t2m_min": (dims, h["t2m"].min(axis=1)),
            "t2m_max": (dims, h["t2m"].max(axis=1)),
            "d2m_mean": (dims, h["d2m"].mean(axis=1)),
            "ssrd_sum": (dims, h["ssrd"].sum(axis=1)),
            "wind_mean": (dims, np.hypot(h["u10"], h["v10"]).mean(axis=1)),
            "sp_mean": (dims, h["sp"].mean(axis=1)),
        },
        coords=coords,
    ).astype(np.float32)
    precip = world.forcing(start - timedelta(days=history - 1), end)["precip"]
    plat = np.arange(g.lats[0] + 0.125, g.lats[-1] - 0.2, -0.25)
    plon = np.arange(g.lons[0] - 0.125, g.lons[-1] + 0.2, 0.25)
    points = xr.Dataset(
        {k: (("latitude", "longitude"), v) for k, v in world.invariants(plat, plon).items()},
        coords={"latitude": plat, "longitude": plon},
    )
    return era5, precip, era5_static(points, g)
