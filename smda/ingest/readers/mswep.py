"""MSWEP V2.8 daily precipitation files (``YYYYDDD.nc``, GloH2O), checked and normalised on read.

No real MSWEP file was available (PROVENANCE.md); SOURCES.md gives a 0.1° global grid of
1800 × 3600 cell centres, variable ``precipitation`` in mm per time step, latitude 89.95 …
−89.95 and longitude −179.95 … 179.95, marking the orientation *unconfirmed*. So this reader
relies on the coordinates, not on the order:

- the dims may be called ``lat``/``lon`` or ``latitude``/``longitude``, in either order, with an
  optional size-1 ``time``;
- latitude may run north → south or south → north (it is made descending);
- longitude may be −180 … 180 or 0 … 360, starting anywhere (it is wrapped into [−180, 180)
  and rolled to start at −179.95);
- anything but the full 0.1° global grid of cell centres raises :class:`MalformedFile`, as
  does a file with more than one time step (a 3-hourly or monthly file is not a daily one).

The fill value is masked to NaN. The time is decoded from the file's own units (the twin writes
``days since 1899-12-31``; nothing else is assumed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.errors import MalformedFile
from smda.ingest.readers import malformed
from smda.ingest.readers.ncfile import (
    DailyField,
    NcFile,
    decode_cf_time,
    open_ncfile,
    read_daily_field,
)
from smda.storage.iolock import serialized

__all__ = ["LATITUDE", "LONGITUDE", "MSWEP_RES", "SHAPE", "VARIABLE", "open_mswep"]

VARIABLE = "precipitation"
MSWEP_RES = 0.1
SHAPE = (1800, 3600)
LATITUDE: npt.NDArray[np.float64] = np.round(89.95 - MSWEP_RES * np.arange(SHAPE[0]), 2)
"""Output latitudes (degrees_north), descending."""
LONGITUDE: npt.NDArray[np.float64] = np.round(-179.95 + MSWEP_RES * np.arange(SHAPE[1]), 2)
"""Output longitudes (degrees_east), −179.95 … 179.95."""
_TOL = 1e-3
_NAMES = {"lat": ("lat", "latitude"), "lon": ("lon", "longitude")}


def _time(nc: NcFile) -> np.datetime64 | None:
    """The file's single time (datetime64[ns]), None if it has none or it is not decodable."""
    if "time" not in nc or int(np.prod(nc.shape("time"))) != 1:
        return None
    attrs = nc.attrs("time", ("units", "calendar"))
    try:
        moment = decode_cf_time(
            nc.read("time"), str(attrs.get("units", "")), nc.label, str(attrs.get("calendar", ""))
        )
    except MalformedFile:
        return None
    return np.datetime64(moment.reshape(-1)[0], "ns")


@dataclass(frozen=True, eq=False)
class _Loaded:
    """What a daily file holds for :func:`open_mswep`, the field still as stored."""

    field: DailyField
    time: np.datetime64 | None


@serialized
def _load(path: str | os.PathLike[str], label: str) -> _Loaded:
    """Read what :func:`open_mswep` needs (under the HDF5 lock; decompression comes later)."""
    with open_ncfile(path, name=label) as nc:
        field = read_daily_field(
            nc, VARIABLE, lat_names=_NAMES["lat"], lon_names=_NAMES["lon"], label=label
        )
        return _Loaded(field=field, time=_time(nc))


def _order(
    values: npt.NDArray[np.float64], target: npt.NDArray[np.float64], name: str, label: str
) -> npt.NDArray[np.intp]:
    """Indices that put ``values`` in ``target`` order; MalformedFile unless they match 1:1."""
    if values.shape != target.shape:
        raise malformed(
            label,
            f"unexpected grid: {values.size} {name} values, the 0.1° global grid has "
            f"{target.size} (MSWEP daily files are global)",
        )
    index = np.round((values - target[0]) / (target[1] - target[0])).astype(np.intp)
    ok = (index >= 0) & (index < target.size)
    ok[ok] &= np.abs(values[ok] - target[index[ok]]) < _TOL
    if not ok.all() or np.unique(index).size != index.size:
        raise malformed(
            label,
            f"unexpected grid: {name} is not the 0.1° global grid of cell centres "
            f"(first values {values[:3].round(4).tolist()})",
        )
    order: npt.NDArray[np.intp] = np.empty(index.size, dtype=np.intp)
    order[index] = np.arange(index.size)
    return order


def open_mswep(path: str | os.PathLike[str]) -> xr.DataArray:
    """Read one MSWEP daily file as precipitation on the 0.1° global grid.

    The field's chunk is decompressed after the HDF5 lock is released (:mod:`smda.ingest.readers.ncfile`).

    Parameters
    ----------
    path:
        A daily ``YYYYDDD.nc`` file (any of the orientations in the module docstring).

    Returns
    -------
    xr.DataArray
        ``precipitation`` with dims ``(lat, lon)`` = (1800, 3600): float32, mm day-1, NaN where
        the file has fill; ``lat`` 89.95 … −89.95 (descending), ``lon`` −179.95 … 179.95, both
        float64; scalar coordinate ``time`` (datetime64[ns]) when the file has one.

    Raises
    ------
    MalformedFile
        Not netCDF, truncated/corrupt, no ``precipitation``, more than one time step, or a grid
        that is not the 0.1° global grid.
    """
    label = os.fspath(path)
    loaded = _load(path, label)
    lat, lon, time = loaded.field.lat, loaded.field.lon, loaded.time
    units = str(loaded.field.attrs.get("units", "mm/d"))
    lat_order = _order(lat, LATITUDE, "latitude", label)
    lon_order = _order((lon + 180.0) % 360.0 - 180.0, LONGITUDE, "longitude", label)
    values = loaded.field.values()
    if np.any(lat_order != np.arange(lat_order.size)):
        values = values[lat_order]
    if np.any(lon_order != np.arange(lon_order.size)):
        values = values[:, lon_order]
    coords: dict[str, object] = {
        "lat": ("lat", LATITUDE.copy(), {"units": "degrees_north"}),
        "lon": ("lon", LONGITUDE.copy(), {"units": "degrees_east"}),
    }
    if time is not None:
        coords["time"] = time
    return xr.DataArray(
        np.ascontiguousarray(values),
        dims=("lat", "lon"),
        coords=coords,
        name=VARIABLE,
        attrs={"units": "mm day-1", "file_units": units, "source": os.path.basename(label)},
    )
