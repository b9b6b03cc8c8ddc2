"""References to score against: a truth on the grid (a netCDF file, or the twin's given by the
CLI), any gridded series, and ISMN stations (staged in the store, or an ISMN download)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from smda.errors import ConfigError, MalformedFile
from smda.ingest.readers.ismn import read_ismn
from smda.science.metrics import StationSeries
from smda.storage.iolock import HDF5_IO
from smda.storage.store import Store

__all__ = [
    "collect_stations",
    "read_series",
    "read_stations",
    "read_truth",
    "staged_stations",
    "station_series",
]

_LAT_LON = {"latitude": "lat", "longitude": "lon", "valid_time": "time"}


def _open_netcdf(path: Path) -> xr.Dataset:
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    try:
        with HDF5_IO, xr.open_dataset(path) as ds:
            loaded = ds.load()
    except (OSError, ValueError) as exc:
        raise MalformedFile(f"{path} is not a readable netCDF file: {exc}") from exc
    return loaded.rename({k: v for k, v in _LAT_LON.items() if k in loaded.variables})


def read_series(path: Path) -> xr.Dataset:
    """The ``(time, lat, lon)`` variables of a netCDF file (``latitude``/``longitude`` are
    renamed), e.g. soil moisture in m3 m-3 to score against stations.

    Raises
    ------
    ConfigError
        If the file does not exist.
    MalformedFile
        If it cannot be read or has no (time, lat, lon) variable.
    """
    ds = _open_netcdf(path)
    keep = [n for n, v in ds.data_vars.items() if set(v.dims) == {"time", "lat", "lon"}]
    if not keep:
        raise MalformedFile(
            f"{path} has no (time, lat, lon) variable (variables: {list(map(str, ds.data_vars))})"
        )
    return ds[keep].transpose("time", "lat", "lon")


def read_truth(path: Path) -> xr.DataArray:
    """The truth ``(time, lat, lon)`` (m3 m-3) from a netCDF file (as ``smda twin truth``
    writes it): the variable ``soil_moisture``, or the file's only gridded variable."""
    series = read_series(path)
    if "soil_moisture" in series:
        return series["soil_moisture"]
    if len(series.data_vars) == 1:
        return series[next(iter(series.data_vars))]
    raise MalformedFile(
        f"{path}: which variable is the truth? name it soil_moisture (have {list(series.data_vars)})"
    )


def staged_stations(store: Store, start: date, end: date) -> xr.DataArray | None:
    """The ISMN stations staged in ``store`` (``smda fetch ismn``) over ``start … end``.

    Returns
    -------
    ``soil_moisture (time, station)`` (m3 m-3, daily means; NaN where a station has no value)
    with ``lat``/``lon(station)``, or None when no ISMN day of the period is staged.
    """
    days = [d for d in store.staged_days("ismn") if start <= d <= end]
    if not days:
        return None
    values: dict[str, dict[pd.Timestamp, float]] = {}
    where: dict[str, tuple[float, float]] = {}
    for day in days:
        ds = store.open_staged("ismn", day)
        for ident, lat, lon, value in zip(
            ds["station"].values,
            ds["lat"].values,
            ds["lon"].values,
            ds["soil_moisture"].values,
            strict=True,
        ):
            values.setdefault(str(ident), {})[pd.Timestamp(day)] = float(value)
            where[str(ident)] = (float(lat), float(lon))
    frame = pd.DataFrame(values).reindex(pd.DatetimeIndex(days, name="time")).sort_index(axis=1)
    ids = [str(c) for c in frame.columns]
    return xr.DataArray(
        frame.to_numpy(dtype=np.float64),
        dims=("time", "station"),
        coords={
            "time": frame.index,
            "station": ids,
            "lat": ("station", [where[i][0] for i in ids]),
            "lon": ("station", [where[i][1] for i in ids]),
        },
        name="soil_moisture",
        attrs={"units": "m3 m-3"},
    )


def read_stations(
    path: Path,
    *,
    max_depth: float = 0.05,
    good_flags: Iterable[str] | None = ("G",),
    min_count: int = 12,
) -> list[StationSeries]:
    """The surface sensors of an ISMN download (folder or zip) as station series.

    Parameters
    ----------
    path:
        The download root (:func:`smda.ingest.readers.ismn.read_ismn`).
    max_depth:
        Deepest sensor bottom (m): 0.05 = surface sensors (SCIENCE.md §4).
    good_flags:
        ISMN flags kept (``"G"``: good).
    min_count:
        Fewest records in a UTC day's mean.

    Returns
    -------
    ``(network/station/sensor, lat, lon, daily series m3 m-3)`` of each sensor with data.
    """
    if not path.exists():
        raise ConfigError(f"ISMN download {path} does not exist")
    flags = None if good_flags is None else tuple(good_flags)
    with tempfile.TemporaryDirectory(prefix="smda-ismn-") as work:
        sensors = read_ismn(
            path, workdir=work, max_depth=max_depth, good_flags=flags, min_count=min_count
        )
    return [
        (f"{s.network}/{s.station}/{s.sensor}", s.lat, s.lon, s.soil_moisture)
        for s in sensors
        if len(s.soil_moisture)
    ]


def station_series(stations: xr.DataArray) -> list[StationSeries]:
    """``soil_moisture (time, station)`` with ``lat``/``lon`` as ``(id, lat, lon, series)``."""
    index = pd.DatetimeIndex(stations["time"].values)
    return [
        (str(ident), float(lat), float(lon), pd.Series(values, index=index).dropna())
        for ident, lat, lon, values in zip(
            stations["station"].values,
            stations["lat"].values,
            stations["lon"].values,
            stations.transpose("station", "time").values,
            strict=True,
        )
    ]


def collect_stations(
    store: Store | None,
    start: date,
    end: date,
    download: Path | None,
    *,
    max_depth: float = 0.05,
) -> tuple[list[StationSeries] | None, str]:
    """The ISMN stations to score against and where they come from, in words.

    Stations staged in ``store`` over ``start … end`` (:func:`staged_stations`) and those of
    an ISMN ``download`` (:func:`read_stations`, sensors to ``max_depth`` m); a sensor in both
    is taken from the download. None when there is neither.
    """
    found: dict[str, StationSeries] = {}
    origin = []
    staged = staged_stations(store, start, end) if store is not None else None
    if staged is not None:
        found.update({s[0]: s for s in station_series(staged)})
        origin.append(f"{len(found)} sensors staged in the store (`smda fetch ismn`)")
    if download is not None:
        read = read_stations(download, max_depth=max_depth)
        found.update({s[0]: s for s in read})
        origin.append(f"{len(read)} sensors (0–{max_depth:g} m, flag G) of {download}")
    if not found:
        return None, ""
    text = "ISMN daily means (UTC) in the cell containing each station: " + " and ".join(origin)
    return list(found.values()), text
