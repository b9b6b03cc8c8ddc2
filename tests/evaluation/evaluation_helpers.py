"""Helpers of the evaluation tests: the real Hawaii products gridded, pytesmo on matched pairs."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from pytesmo import metrics as pm
from staged_world import TINY_TRAINING

from smda.geo.grid import GLOBAL_025, BBox

STAGED = (date(2015, 2, 1), date(2015, 6, 30))
"""Days staged (about 150)."""
TRAIN = (date(2015, 2, 1), date(2015, 5, 15))
"""The training period: the climatology knows February to May."""
PERIOD = (date(2015, 5, 1), date(2015, 6, 30))
"""The evaluated period (May climatology, then the all-month fallback in June)."""
SPINUP = 10
GAIN = 0.5
FAST = TINY_TRAINING
"""The tests' tiny model (tests/staged_world.py)."""


HAWAII = Path("colocated/hawaii_qa4sm")
HAWAII_BOX = BBox(-156.0, 19.0, -155.0, 20.0)
"""4 × 4 cells of the 0.25° grid (19.125…19.875 N, 155.875…155.125 W) around the stations."""
ISMN = HAWAII / "ismn_ceop"
_TS = HAWAII / "ts_cell0165"
_GLDAS = _TS / "GLDAS/GLDAS_NOAH025_3H_2_1/0165.nc"
_ERA5_LAND = _TS / "ERA5_LAND/ERA5_LAND_V20190904/0165.nc"
_SMAP_AM = _TS / "SMAP_L3/SMAP_V8_AM/netcdf/0165.nc"
_DAYS = pd.date_range("2017-01-01", "2018-12-31", name="time")


def _daily(
    path: Path, variable: str, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat, lon, daily means (locations, day)) of a point time-series file, 2017–2018."""
    with xr.open_dataset(path) as ds:
        values = ds[variable].load() * scale
        lat, lon = ds["lat"].values.astype(float), ds["lon"].values.astype(float)
    frame = values.transpose("time", "locations").to_pandas()
    daily = frame.groupby(frame.index.floor("D")).mean().reindex(_DAYS)
    return lat, lon, daily.to_numpy().T


def hawaii_grid_series(real: Path) -> xr.Dataset:
    """The real Hawaii products of 2017–2018 on the 0.25° grid of :data:`HAWAII_BOX`, daily,
    m3 m-3 (time, lat, lon): ``gldas`` (Noah 0–10 cm, whose points are the cell centres),
    ``era5land`` (mean of the 0.1° points in each cell) and ``smap`` (SMAP L3 v8 AM of the
    36 km pixel nearest each cell centre); NaN where a product has no point."""
    grid = GLOBAL_025.subset(HAWAII_BOX)
    out = {}
    for name, path, variable, scale in (
        ("gldas", _GLDAS, "SoilMoi0_10cm_inst", 0.01),
        ("era5land", _ERA5_LAND, "swvl1", 1.0),
    ):
        lat, lon, daily = _daily(real / path, variable, scale)
        row, col, inside = grid.locate(lat, lon)
        field = np.full((len(_DAYS), *grid.shape), np.nan)
        for r, c in {(int(r), int(c)) for r, c, ok in zip(row, col, inside, strict=True) if ok}:
            here = inside & (row == r) & (col == c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days
                field[:, r, c] = np.nanmean(daily[here], axis=0)
        out[name] = field
    lat, lon, daily = _daily(real / _SMAP_AM, "soil_moisture")
    clat, clon = np.meshgrid(grid.lats, grid.lons, indexing="ij")
    nearest = np.argmin((clat[..., None] - lat) ** 2 + (clon[..., None] - lon) ** 2, axis=-1)
    out["smap"] = np.moveaxis(daily[nearest], -1, 0)
    coords = {"time": _DAYS, "lat": grid.lats, "lon": grid.lons}
    dims = ("time", "lat", "lon")
    return xr.Dataset(
        {k: (dims, v.astype(np.float32), {"units": "m3 m-3"}) for k, v in out.items()},
        coords=coords,
    )


def pytesmo_metrics(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """pytesmo's bias, RMSD, ubRMSD and R of x against y over their common valid samples."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok].astype(np.float64), y[ok].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pm.pearsonr is deprecated
        r, _ = pm.pearsonr(x, y)
    return {"bias": pm.bias(x, y), "rmsd": pm.rmsd(x, y), "ubrmsd": pm.ubrmsd(x, y), "r": r}


def pytesmo_at_stations(
    field: xr.DataArray, stations: list[tuple[str, float, float, pd.Series]], min_n: int = 30
) -> pd.DataFrame:
    """pytesmo's metrics per station on the matched pairs (the station's cell vs its series),
    stations with at least ``min_n`` pairs."""
    grid = GLOBAL_025.subset(HAWAII_BOX)
    rows = {}
    for ident, lat, lon, series in stations:
        row, col, ok = grid.locate(np.array([lat]), np.array([lon]))
        assert ok[0], ident
        cell = field.isel(lat=row[0], lon=col[0]).to_series()
        pairs = pd.concat({"f": cell, "s": series}, axis=1, sort=True).dropna()
        if len(pairs) >= min_n:
            rows[ident] = pytesmo_metrics(pairs["f"].to_numpy(), pairs["s"].to_numpy())
    return pd.DataFrame.from_dict(rows, orient="index")
