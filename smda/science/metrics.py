"""Validation metrics with pytesmo's definitions, and scoring of gridded series at stations.

For series ``x`` (e.g. a product) and ``y`` (e.g. in situ), over their common valid samples
(both finite), SCIENCE.md §4:

- ``bias = mean(x) − mean(y)`` (sign follows the argument order);
- ``RMSD = sqrt(mean((x − y)²))`` (ddof 0);
- ``ubRMSD = sqrt(mean(((x − x̄) − (y − ȳ))²)) = sqrt(RMSD² − bias²)`` (computed directly);
- ``R`` = Pearson's correlation and its two-sided p-value (``scipy.stats.pearsonr``).

Every function works along the **last axis** of arrays that broadcast together (``(..., time)``)
and returns arrays over the leading dims (0-d for 1-D input); NaN marks a missing value. A
metric is NaN where it is undefined (no common sample; R with fewer than 2 samples or zero
variance). :func:`score` bundles them with a minimum sample size; :func:`match_stations`
extracts a gridded field at stations and scores each; :func:`summarise` takes medians over
stations, the way the paper reports skill.

This module is part of the science core: numpy, scipy, pandas and xarray only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from scipy.special import betainc

from smda.geo.grid import Grid

__all__ = [
    "METRICS",
    "Score",
    "StationSeries",
    "bias",
    "match_stations",
    "pearson_r",
    "rmsd",
    "score",
    "summarise",
    "ubrmsd",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StationSeries = tuple[str, float, float, pd.Series]
"""A station as ``(id, lat, lon, daily series)``: degrees north/east; a series of m3 m-3 indexed
by UTC day (e.g. ``(f"{s.network}/{s.station}", s.lat, s.lon, s.soil_moisture)`` for an
:class:`smda.ingest.readers.ismn.IsmnStation`)."""

METRICS = ("bias", "rmsd", "ubrmsd", "r")
"""The metrics :func:`summarise` takes medians of."""
_GRID_TOLERANCE = 1e-6  # degrees


def _common(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray, IntArray]:
    """x and y (float64, broadcast) with NaN where either is missing, and the sample counts."""
    xa, ya = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    if xa.ndim == 0:
        raise ValueError("metrics need series: arrays with a last (time) axis")
    ok = np.isfinite(xa) & np.isfinite(ya)
    return np.where(ok, xa, np.nan), np.where(ok, ya, np.nan), ok.sum(axis=-1)


def _mean(a: FloatArray, n: IntArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.nansum(a, axis=-1) / n
    return np.where(n > 0, mean, np.nan)


def bias(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Mean difference ``mean(x) − mean(y)`` over the common valid samples, in x's units.

    Parameters
    ----------
    x, y:
        Series ``(..., time)`` (broadcastable), NaN where missing.

    Returns
    -------
    ndarray ``(...)``; NaN where there is no common sample.
    """
    xa, ya, n = _common(x, y)
    return _mean(xa, n) - _mean(ya, n)


def rmsd(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Root-mean-square difference ``sqrt(mean((x − y)²))`` (ddof 0), ``(...)``, x's units."""
    xa, ya, n = _common(x, y)
    return np.sqrt(_mean((xa - ya) ** 2, n))


def ubrmsd(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Unbiased RMSD ``sqrt(mean(((x − x̄) − (y − ȳ))²))`` (ddof 0), ``(...)``, x's units."""
    xa, ya, n = _common(x, y)
    d = xa - ya
    anomaly = d - _mean(d, n)[..., None]
    return np.sqrt(_mean(anomaly**2, n))


def _pearson(xa: FloatArray, ya: FloatArray, n: IntArray) -> tuple[FloatArray, FloatArray]:
    dx = xa - _mean(xa, n)[..., None]
    dy = ya - _mean(ya, n)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nansum(dx * dy, axis=-1) / np.sqrt(
            np.nansum(dx * dx, axis=-1) * np.nansum(dy * dy, axis=-1)
        )
        r = np.where(n >= 2, np.clip(r, -1.0, 1.0), np.nan)
        # two-sided p of r under H0 (as scipy.stats.pearsonr): r ~ Beta(n/2 − 1, n/2 − 1) on
        # [−1, 1], so p = 2·I_{(1−|r|)/2}(a, a); with 2 samples r = ±1 and p = 1.
        a = n / 2.0 - 1.0
        p = np.where(n > 2, 2.0 * betainc(a, a, (1.0 - np.abs(r)) / 2.0), 1.0)
    return r, np.where(np.isfinite(r), np.minimum(p, 1.0), np.nan)


def pearson_r(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Pearson's correlation and its two-sided p-value (``scipy.stats.pearsonr``).

    Parameters
    ----------
    x, y:
        Series ``(..., time)`` (broadcastable), NaN where missing.

    Returns
    -------
    (r, p)
        Arrays ``(...)``, unitless; NaN where fewer than 2 common samples or a series is
        constant.
    """
    return _pearson(*_common(x, y))


@dataclass(frozen=True)
class Score:
    """Skill of x against y over the common valid samples (arrays over the leading dims).

    Attributes
    ----------
    n:
        Common valid samples, int64.
    bias, rmsd, ubrmsd:
        In x's units (m3 m-3 for soil moisture); NaN where ``n < min_n``.
    r, p:
        Pearson correlation and its two-sided p-value; NaN where ``n < min_n``.
    """

    n: IntArray
    bias: FloatArray
    rmsd: FloatArray
    ubrmsd: FloatArray
    r: FloatArray
    p: FloatArray

    def as_dict(self) -> dict[str, float]:
        """The metrics of a single series as plain floats (``n`` as a float too)."""
        return {k: float(v) for k, v in asdict(self).items()}


def score(x: npt.ArrayLike, y: npt.ArrayLike, *, min_n: int = 30) -> Score:
    """All metrics of ``x`` against ``y`` along the last axis.

    Parameters
    ----------
    x, y:
        Series ``(..., time)`` (broadcastable), NaN where missing; ``x`` is the one being
        judged (bias = mean(x) − mean(y)).
    min_n:
        Fewest common valid samples for the metrics to be reported (SCIENCE.md §4: 30 days).

    Returns
    -------
    Score
        Arrays ``(...)`` (0-d for 1-D input; ``Score.as_dict()`` gives floats).
    """
    xa, ya, n = _common(x, y)
    enough = n >= min_n
    r, p = _pearson(xa, ya, n)

    def keep(a: FloatArray) -> FloatArray:
        return np.where(enough, a, np.nan)

    return Score(
        n=n.astype(np.int64),
        bias=keep(bias(xa, ya)),
        rmsd=keep(rmsd(xa, ya)),
        ubrmsd=keep(ubrmsd(xa, ya)),
        r=keep(r),
        p=keep(p),
    )


def _grid_of(field: xr.DataArray) -> tuple[xr.DataArray, Grid]:
    """The field ordered north → south and the :class:`Grid` window its lat/lon centres form."""
    if field.sizes.get("lat", 0) < 1 or field.sizes.get("lon", 0) < 1:
        raise ValueError(f"the field needs lat and lon dims, got {dict(field.sizes)}")
    field = field.sortby("lat", ascending=False)
    lats, lons = field["lat"].values.astype(np.float64), field["lon"].values.astype(np.float64)
    steps = np.abs(np.concatenate([np.diff(lats), np.diff(lons)]))
    res = float(np.median(steps)) if steps.size else 0.25
    row0 = round((90.0 - lats[0]) / res - 0.5)
    col0 = round((lons[0] + 180.0) / res - 0.5) % round(360.0 / res)
    grid = Grid(res, row0, col0, lats.size, lons.size)
    wrapped = (lons + 180.0) % 360.0 - 180.0
    if not (
        np.allclose(grid.lats, lats, atol=_GRID_TOLERANCE)
        and np.allclose(grid.lons, wrapped, atol=_GRID_TOLERANCE)
    ):
        raise ValueError(
            "the field's lat/lon must be the cell centres of a regular global grid window "
            f"(e.g. smda's 0.25° grid); got lat {lats[0]}…{lats[-1]}, lon {lons[0]}…{lons[-1]}"
        )
    return field, grid


def _stations(stations: xr.Dataset | xr.DataArray | Iterable[StationSeries]) -> xr.DataArray:
    """Station series as (time, station) with lat/lon coordinates."""
    if isinstance(stations, xr.Dataset):
        stations = stations["soil_moisture"]
    if isinstance(stations, xr.DataArray):
        missing = {"time", "station", "lat", "lon"} - set(stations.dims) - set(stations.coords)
        if missing:
            raise ValueError(
                f"station data need dims (time, station) and coords lat/lon(station); missing {sorted(missing)}"
            )
        return stations.transpose("time", "station")
    rows = list(stations)
    series = [pd.Series(s, dtype=np.float64).rename(str(i)) for i, _, _, s in rows]
    table = pd.concat(series, axis=1, sort=True) if series else pd.DataFrame()
    return xr.DataArray(
        table.to_numpy(dtype=np.float64).reshape(len(table), len(rows)),
        dims=("time", "station"),
        coords={
            "time": pd.DatetimeIndex(table.index).to_numpy(),
            "station": [str(i) for i, *_ in rows],
            "lat": ("station", [float(r[1]) for r in rows]),
            "lon": ("station", [float(r[2]) for r in rows]),
        },
    )


def _days(times: xr.DataArray) -> npt.NDArray[np.datetime64]:
    return np.asarray(times.values).astype("datetime64[D]")


def match_stations(
    field: xr.DataArray,
    stations: xr.Dataset | xr.DataArray | Iterable[StationSeries],
    *,
    min_n: int = 30,
) -> pd.DataFrame:
    """Score a gridded daily field against stations, in the cell that contains each station.

    Parameters
    ----------
    field:
        Daily values ``(time, lat, lon)`` (m3 m-3) on a regular cell-centred grid that is a
        window of a global grid (smda's 0.25° grid or any other resolution dividing 180°).
    stations:
        Daily in-situ series (m3 m-3): a Dataset with ``soil_moisture (time, station)`` or such a
        DataArray, with coordinates ``lat(station)``, ``lon(station)`` in degrees; or an
        iterable of :data:`StationSeries` ``(id, lat, lon, pd.Series indexed by day)``. Days
        are matched by UTC calendar day.
    min_n:
        Fewest common valid days for a station's metrics (fewer: NaN metrics, row kept).

    Returns
    -------
    pandas.DataFrame
        One row per station, indexed by station id: ``lat``, ``lon`` (station), ``in_grid``,
        ``cell_lat``, ``cell_lon`` (centre of the containing cell), and the :class:`Score`
        fields ``n``, ``bias``, ``rmsd``, ``ubrmsd``, ``r``, ``p`` of field minus station.
    """
    field, grid = _grid_of(field.transpose("time", "lat", "lon"))
    obs = _stations(stations)
    lat, lon = obs["lat"].values.astype(np.float64), obs["lon"].values.astype(np.float64)
    row, col, inside = grid.locate(lat, lon)
    days = np.union1d(_days(field["time"]), _days(obs["time"]))
    cells = {"lat": xr.DataArray(row, dims="station"), "lon": xr.DataArray(col, dims="station")}
    at_cells = np.asarray(field.isel(cells).values, dtype=np.float64)  # (time, station)
    model = _on_days(at_cells, _days(field["time"]), days)
    insitu = _on_days(obs.values.astype(np.float64), _days(obs["time"]), days)
    model[:, ~inside] = np.nan
    result = score(model.T, insitu.T, min_n=min_n)
    table = pd.DataFrame(
        {
            "lat": lat,
            "lon": lon,
            "in_grid": inside,
            "cell_lat": np.where(inside, grid.lats[row], np.nan),
            "cell_lon": np.where(inside, grid.lons[col], np.nan),
            **asdict(result),
        },
        index=pd.Index([str(s) for s in obs["station"].values], name="station"),
    )
    return table


def _on_days(
    values: FloatArray, have: npt.NDArray[np.datetime64], days: npt.NDArray[np.datetime64]
) -> FloatArray:
    """Rows of ``values`` (time, station) placed on ``days`` (NaN where absent)."""
    if np.unique(have).size != have.size:
        raise ValueError("daily series must have one value per UTC day (duplicated days found)")
    out = np.full((days.size, values.shape[1]), np.nan)
    out[np.searchsorted(days, have)] = values
    return out


def summarise(table: pd.DataFrame) -> pd.Series:
    """Medians over stations of :data:`METRICS`, as the paper reports them.

    Parameters
    ----------
    table:
        A :func:`match_stations` table (stations with NaN metrics are left out).

    Returns
    -------
    pandas.Series
        ``n_stations`` (stations with every metric finite) and the median ``bias``, ``rmsd``,
        ``ubrmsd`` and ``r`` over them (NaN when there is none).
    """
    scored = table[list(METRICS)].dropna()
    medians = scored.median() if len(scored) else pd.Series(np.nan, index=list(METRICS))
    return pd.concat([pd.Series({"n_stations": float(len(scored))}), medians.astype(np.float64)])
