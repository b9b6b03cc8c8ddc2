"""The feature matrix of the model: staged daily inputs + yesterday's state → (rows, features).

One function, :func:`build_features`, serves both uses: operationally it builds the rows of
one day (one row per land cell), for training the rows of many days (day-major: row
``t * n_cells + c`` is day ``t``, cell ``c``), from the same code and in the same column order
(:attr:`FeatureSpec.names`).

Features (configurable through :class:`FeatureSpec`; units are those of the staged inputs):

- ERA5 daily aggregates as staged by :func:`smda.ingest.staging.era5.era5_daily`: ``t2m_mean``,
  ``t2m_min``, ``t2m_max``, ``d2m_mean`` (K), ``ssrd_sum`` (J m-2), ``wind_mean`` (m s-1),
  ``sp_mean`` (Pa); optionally ``tp_sum`` (mm);
- humidity from the daily means: ``vpd`` = e_s(t2m) − e(d2m) (kPa) and ``rh`` = e(d2m)/e_s(t2m)
  (0–1), with the Magnus/Tetens form e(T) = 0.6108·exp(17.27·T/(T + 237.3)) kPa, T in °C
  (computed from daily means, not the daily mean of hourly humidity);
- MSWEP precipitation (mm day-1): ``precip`` = P(D); ``precip_<w>d`` = Σ P over the ``w``
  days D−w+1 … D (default w = 3, 7, 15, 30); ``api`` the antecedent precipitation index
  API_D = k·API_{D−1} + P_D (mm);
- static fields of :func:`smda.ingest.staging.era5.era5_static`: ``orography`` (m), ``lsm``, ``slt``,
  ``cvh``, ``cvl``, ``tvh``, ``tvl`` (codes are used as numbers);
- ``lat``, ``lon`` (degrees) and the season ``doy_sin``, ``doy_cos`` = sin/cos(2π·doy/365.25);
- the state ``sm_prev``: the analysis SM_a(D−1) (m3 m-3), always the last column.

The antecedent precipitation index is *recomputed from the precipitation history* rather
than carried in the state: API_D = Σ_{j=0}^{N−1} k^j·P_{D−j} with N = ``api_days``, i.e. the
recursion started from zero N days before D. Training and operation therefore compute the
identical quantity from the same N-day history with no second state chain to persist; the
difference from the infinite recursion is k^N·API_{D−N} (k = 0.85, N = 30: < 1 %). A run needs
``FeatureSpec.history_days`` days of precipitation ending at D; a missing day is an error,
never silently filled.

Science core: numpy and xarray only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.geo.grid import GLOBAL_025

__all__ = [
    "DEFAULT_POROSITY",
    "ERA5_FEATURES",
    "POROSITY_BY_SLT",
    "STATE",
    "STATIC_FEATURES",
    "FeatureMatrix",
    "FeatureSpec",
    "antecedent_precipitation",
    "build_features",
    "global_cell_ids",
    "lagged",
    "porosity",
]

F32 = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

ERA5_FEATURES = (
    "t2m_mean",
    "t2m_min",
    "t2m_max",
    "d2m_mean",
    "ssrd_sum",
    "wind_mean",
    "sp_mean",
)
"""Default ERA5 daily aggregates (names of :func:`smda.ingest.staging.era5.era5_daily`)."""
STATIC_FEATURES = ("orography", "lsm", "slt", "cvh", "cvl", "tvh", "tvl")
"""Default static fields (names of :func:`smda.ingest.staging.era5.era5_static`)."""
STATE = "sm_prev"
"""Name of the state column, SM_a(D−1) (m3 m-3)."""
POROSITY_BY_SLT: Mapping[int, float] = {
    1: 0.403,
    2: 0.439,
    3: 0.430,
    4: 0.520,
    5: 0.614,
    6: 0.766,
    7: 0.472,
}
"""Saturated volumetric water content (m3 m-3) of the ERA5 (HTESSEL) soil types 1–7:
coarse, medium, medium-fine, fine, very fine, organic, tropical organic (IFS documentation,
Part IV, van Genuchten parameters). Other codes use :data:`DEFAULT_POROSITY`."""
DEFAULT_POROSITY = 0.6
"""Upper bound (m3 m-3) where the soil type is unknown."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which features the model uses, in a fixed order (:attr:`names`).

    Parameters
    ----------
    era5:
        ERA5 daily aggregates taken as they are staged.
    humidity:
        Derived humidity features, any of ``"vpd"`` (kPa) and ``"rh"`` (0–1).
    precip_windows:
        Lengths (days) of the antecedent precipitation sums ``precip_<w>d``.
    api_decay:
        k of the antecedent precipitation index (day-1 decay factor, 0 < k < 1).
    api_days:
        N: days of history over which the API recursion runs (module docstring).
    static:
        Static fields taken as they are staged.
    location:
        Include ``lat`` and ``lon``.
    season:
        Include ``doy_sin`` and ``doy_cos``.
    """

    era5: tuple[str, ...] = ERA5_FEATURES
    humidity: tuple[str, ...] = ("vpd", "rh")
    precip_windows: tuple[int, ...] = (3, 7, 15, 30)
    api_decay: float = 0.85
    api_days: int = 30
    static: tuple[str, ...] = STATIC_FEATURES
    location: bool = True
    season: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.api_decay < 1.0:
            problems.append(f"api_decay={self.api_decay} must be in (0, 1)")
        if self.api_days < 1 or any(w < 1 for w in self.precip_windows):
            problems.append("api_days and precip_windows must be ≥ 1 day")
        unknown = set(self.humidity) - {"vpd", "rh"}
        if unknown:
            problems.append(f"unknown humidity feature(s) {sorted(unknown)}; choose vpd, rh")
        if len(set(self.names)) != len(self.names):
            problems.append(f"duplicate feature names in {self.names}")
        if problems:
            raise ValueError("invalid FeatureSpec: " + "; ".join(problems))

    @property
    def names(self) -> tuple[str, ...]:
        """Column names of the feature matrix, in order (the state is last)."""
        precip = ("precip", *(f"precip_{w}d" for w in self.precip_windows), "api")
        where = ("lat", "lon") if self.location else ()
        when = ("doy_sin", "doy_cos") if self.season else ()
        return (*self.era5, *self.humidity, *precip, *self.static, *where, *when, STATE)

    @property
    def history_days(self) -> int:
        """Days of precipitation (ending at D) needed to build the features of day D."""
        return max(self.api_days, *self.precip_windows, 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse: :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        tuples = ("era5", "humidity", "precip_windows", "static")
        kwargs: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        return cls(**kwargs)


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Features of ``days × cells`` rows, day-major (row ``t * n_cells + c``).

    Attributes
    ----------
    values:
        float32 (n_days * n_cells, n_features).
    names:
        Column names (:attr:`FeatureSpec.names`).
    days:
        The target days D, length n_days.
    cells:
        Flat index (row * ncols + col) into the input grid of each land cell, (n_cells,).
    shape:
        (lat, lon) shape of the input grid.
    lat, lon:
        Cell-centre coordinates of the cells (degrees), (n_cells,).
    upper:
        Physical upper bound of soil moisture per cell (m3 m-3, :func:`porosity`), (n_cells,).
    """

    values: F32
    names: tuple[str, ...]
    days: pd.DatetimeIndex
    cells: IntArray
    shape: tuple[int, int]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    upper: F32
    cell_ids: IntArray = field(init=False)
    """Global 0.25° cell id of each cell (:func:`global_cell_ids`), (n_cells,)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cell_ids", global_cell_ids(self.lat, self.lon))

    @property
    def n_cells(self) -> int:
        return int(self.cells.size)

    @property
    def state_column(self) -> int:
        return self.names.index(STATE)

    def cube(self) -> F32:
        """The values as (n_days, n_cells, n_features) (a view)."""
        return self.values.reshape(len(self.days), self.n_cells, len(self.names))

    def select(self, keep: npt.NDArray[np.bool_]) -> FeatureMatrix:
        """The same days for the cells where ``keep`` (n_cells,) is true (a copy)."""
        values = np.ascontiguousarray(self.cube()[:, keep]).reshape(-1, len(self.names))
        return FeatureMatrix(
            values,
            self.names,
            self.days,
            self.cells[keep],
            self.shape,
            self.lat[keep],
            self.lon[keep],
            self.upper[keep],
        )


def global_cell_ids(lat: npt.ArrayLike, lon: npt.ArrayLike) -> IntArray:
    """Id of the global 0.25° cell containing each point: ``row * 1440 + col`` (int64)."""
    row, col, ok = GLOBAL_025.locate(np.asarray(lat, float), np.asarray(lon, float))
    if not ok.all():
        raise ValueError("coordinates outside the globe")
    return (row.astype(np.int64) * GLOBAL_025.ncols + col).astype(np.int64)


def porosity(slt: npt.ArrayLike) -> F32:
    """Physical upper bound of soil moisture (m3 m-3) from the ERA5 soil type codes."""
    codes = np.nan_to_num(np.asarray(slt, dtype=np.float64), nan=0.0).round().astype(np.intp)
    table = np.full(max(POROSITY_BY_SLT) + 1, DEFAULT_POROSITY, dtype=np.float32)
    for code, value in POROSITY_BY_SLT.items():
        table[code] = value
    inside = (codes >= 0) & (codes < table.size)
    return np.where(inside, table[np.clip(codes, 0, table.size - 1)], DEFAULT_POROSITY).astype(
        np.float32
    )


def antecedent_precipitation(precip: xr.DataArray, decay: float) -> xr.DataArray:
    """The antecedent precipitation index ``API_D = k·API_{D−1} + P_D`` (mm) along ``time``,
    started from zero on the first day (a day with missing precipitation counts as dry).

    Parameters
    ----------
    precip:
        Daily precipitation (time, lat, lon), mm day-1.
    decay:
        k, the daily decay factor in (0, 1).
    """
    values = np.nan_to_num(np.asarray(precip.transpose("time", ...).values, np.float64))
    out = np.empty_like(values)
    running = np.zeros(values.shape[1:])
    for t in range(values.shape[0]):
        running = decay * running + values[t]
        out[t] = running
    return precip.transpose("time", ...).copy(data=out.astype(np.float32)).rename("api")


def lagged(series: xr.DataArray, days: Sequence[date] | pd.DatetimeIndex) -> xr.DataArray:
    """The values of ``series`` (time, lat, lon) on the day before each of ``days``, labelled
    with ``days``: the state input SM(D−1) for teacher forcing.

    Raises
    ------
    KeyError
        If a day D−1 is not in ``series``.
    """
    target = _as_days(days)
    out = series.sel(time=target - pd.Timedelta(days=1))
    return out.assign_coords(time=target)


def _as_days(days: Sequence[date] | pd.DatetimeIndex | date) -> pd.DatetimeIndex:
    if isinstance(days, date):
        days = [days]
    return pd.DatetimeIndex(pd.to_datetime(list(days))).normalize()


def _values(field: xr.DataArray, dims: tuple[str, ...], what: str) -> npt.NDArray[Any]:
    if set(field.dims) != set(dims):
        raise ValueError(f"{what} has dims {field.dims}, expected {dims}")
    return np.asarray((field if field.dims == dims else field.transpose(*dims)).data)


@dataclass(frozen=True)
class _Columns:
    """Where the matrix's rows come from: the target days and the land cells of the grid."""

    spec: FeatureSpec
    days: pd.DatetimeIndex
    cells: IntArray
    shape: tuple[int, int]

    def take(self, field: xr.DataArray, days: pd.DatetimeIndex | None, what: str) -> F32:
        """``field`` at ``days`` (None: a static field) and the cells → float32
        (n_days, n_cells), or (n_cells,) for a static field. A field without a time
        dimension is taken as the single day asked for."""
        if days is None or "time" not in field.dims:
            if days is not None and len(days) != 1:
                raise ValueError(f"{what} has no time dimension but {len(days)} days were asked")
            values = _values(field, ("lat", "lon"), what)[None]
            rows = np.zeros(1, dtype=np.intp)
        else:
            values = _values(field, ("time", "lat", "lon"), what)
            rows = pd.DatetimeIndex(field["time"].values).normalize().get_indexer(days)
            if (rows < 0).any():
                missing = [d.date().isoformat() for d in days[rows < 0][:5]]
                raise ValueError(f"{what} lacks day(s) {missing}")
        if values.shape[-2:] != self.shape:
            raise ValueError(f"{what} has shape {values.shape[-2:]}, expected {self.shape}")
        flat = values.reshape(values.shape[0], -1)
        out = np.asarray(flat[np.ix_(rows, self.cells)], dtype=np.float32)
        return out if days is not None else out[0]


def _humidity(name: str, t2m: F32, d2m: F32) -> F32:
    """``vpd`` (kPa) or ``rh`` (0–1) from daily mean temperature and dew point (K)."""
    es, ea = _saturation_vp(t2m), _saturation_vp(d2m)
    out = np.maximum(es - ea, 0.0) if name == "vpd" else np.clip(ea / es, 0.0, 1.0)
    return np.asarray(out, dtype=np.float32)


def _saturation_vp(t_kelvin: F32) -> F32:
    t = t_kelvin - np.float32(273.15)
    return np.asarray(0.6108 * np.exp(17.27 * t / (t + 237.3)), dtype=np.float32)


def _precip_columns(spec: FeatureSpec, hist: F32) -> dict[str, F32]:
    """P, window sums and API of each day that has a full history in ``hist`` (days, cells).

    Sums run over the lags j = 0 … N−1 in the same order whatever the length of ``hist``, so
    the features of a day are bitwise identical whether built alone or with many days.
    """
    n_days = hist.shape[0] - spec.history_days + 1
    end = np.arange(spec.history_days - 1, hist.shape[0])  # row of each day D in hist
    total = np.zeros((n_days, hist.shape[1]), dtype=np.float64)
    api = np.zeros_like(total)
    out = {"precip": hist[end]}
    for j in range(spec.history_days):
        day_j = hist[end - j]
        total += day_j
        if j < spec.api_days:
            api += spec.api_decay**j * day_j  # API_D = Σ_j k^j·P_{D−j}
        if j + 1 in spec.precip_windows:
            out[f"precip_{j + 1}d"] = total.astype(np.float32)
    out["api"] = api.astype(np.float32)
    return out


@dataclass
class _Inputs:
    """Where each feature column of :func:`build_features` comes from (taken on first use)."""

    spec: FeatureSpec
    target: pd.DatetimeIndex
    cols: _Columns
    era5: xr.Dataset
    static: xr.Dataset
    state: xr.DataArray
    precip: dict[str, F32]
    lat: npt.NDArray[np.floating]
    lon: npt.NDArray[np.floating]
    _era5: dict[str, F32] = field(default_factory=dict)

    def era5_field(self, name: str) -> F32:
        if name not in self.era5:
            raise ValueError(
                f"ERA5 daily input lacks {name!r}; it has {sorted(map(str, self.era5))}"
            )
        if name not in self._era5:
            self._era5[name] = self.cols.take(self.era5[name], self.target, f"ERA5 {name}")
        return self._era5[name]

    def static_field(self, name: str) -> F32:
        if name not in self.static:
            raise ValueError(f"static input lacks {name!r}; it has {sorted(map(str, self.static))}")
        return self.cols.take(self.static[name], None, f"static {name}")

    def column(self, name: str) -> npt.NDArray[np.floating]:
        """The values of feature ``name``: (days, cells), or broadcastable to it."""
        if name in self.precip:
            return self.precip[name]
        if name in self.spec.era5:
            return self.era5_field(name)
        if name in self.spec.static:
            return self.static_field(name)
        if name in ("vpd", "rh"):
            return _humidity(name, self.era5_field("t2m_mean"), self.era5_field("d2m_mean"))
        if name == STATE:
            return self.cols.take(self.state, self.target, "state")
        doy = 2.0 * np.pi * self.target.day_of_year.to_numpy(dtype=np.float64) / 365.25
        where: dict[str, npt.NDArray[np.floating]] = {
            "lat": self.lat,
            "lon": self.lon,
            "doy_sin": np.sin(doy)[:, None],
            "doy_cos": np.cos(doy)[:, None],
        }
        return where[name]


def build_features(
    spec: FeatureSpec,
    days: Sequence[date] | pd.DatetimeIndex | date,
    *,
    era5: xr.Dataset,
    precip: xr.DataArray,
    static: xr.Dataset,
    state: xr.DataArray,
) -> FeatureMatrix:
    """The feature matrix of ``days`` over the land cells (one day or many, same code).

    Parameters
    ----------
    spec:
        The features and their order.
    days:
        Target days D (one date, or a sequence for training).
    era5:
        Staged ERA5 daily aggregates (:data:`ERA5_FEATURES` …), dims (time, lat, lon) covering
        ``days``, or (lat, lon) for a single day.
    precip:
        MSWEP daily precipitation (mm day-1), (time, lat, lon), covering the
        ``spec.history_days`` days up to each of ``days``.
    static:
        Staged static fields (lat, lon) with ``land`` (bool) and the ``spec.static`` fields.
    state:
        SM_a(D−1) for each D (m3 m-3): (time, lat, lon) labelled with the target days (see
        :func:`lagged`), or (lat, lon) for a single day. NaN is passed on (missing).

    Returns
    -------
    :class:`FeatureMatrix` over the cells where ``static.land`` is true.

    Raises
    ------
    ValueError
        If an input lacks a day, a variable or the grid shape.
    """
    target = _as_days(days)
    if not len(target):
        raise ValueError("no days to build features for")
    if not (np.diff(target.asi8) > 0).all():
        raise ValueError("days must be strictly increasing")
    land = np.asarray(static["land"].values, dtype=bool)
    if land.ndim != 2:
        raise ValueError(f"static land must be (lat, lon), got shape {land.shape}")
    shape = (int(land.shape[0]), int(land.shape[1]))
    cols = _Columns(spec, target, np.flatnonzero(land.ravel()).astype(np.int64), shape)
    lat2, lon2 = np.meshgrid(static["lat"].values, static["lon"].values, indexing="ij")
    lat, lon = lat2.ravel()[cols.cells], lon2.ravel()[cols.cells]
    history = pd.date_range(target[0] - pd.Timedelta(days=spec.history_days - 1), target[-1])
    hist = cols.take(precip, history, "precipitation")
    rows = history.get_indexer(target) - (spec.history_days - 1)  # days may have gaps
    precip_cols: dict[str, F32] = {
        k: np.asarray(v[rows]) for k, v in _precip_columns(spec, hist).items()
    }
    inputs = _Inputs(spec, target, cols, era5, static, state, precip_cols, lat, lon)
    cube = np.empty((len(target), cols.cells.size, len(spec.names)), dtype=np.float32)
    for j, name in enumerate(spec.names):
        cube[:, :, j] = inputs.column(name)
    slt = (
        inputs.static_field("slt")
        if "slt" in static
        else np.full(cols.cells.size, np.nan, np.float32)
    )
    return FeatureMatrix(
        cube.reshape(-1, len(spec.names)),
        spec.names,
        target,
        cols.cells,
        cols.shape,
        lat,
        lon,
        porosity(slt),
    )
