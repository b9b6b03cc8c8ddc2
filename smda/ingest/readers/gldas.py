"""GLDAS Noah 0.25° 3-hourly v2.1 granules (``GLDAS_NOAH025_3H.AYYYYMMDD.HHMM.021.nc4``).

Layout (the real granule, STRUCTURE.md §4.1, and the twin's ``write_gldas_noah025_3h``): NETCDF4,
dims ``time`` (1), ``lat`` 600 **ascending** −59.875 … 89.875, ``lon`` 1440 −179.875 … 179.875;
``SoilMoi0_10cm_inst`` float32 ``(time, lat, lon)`` in **kg m-2** with fill −9999 (sea and
Antarctica); ``time`` float64 in ``' minutes since 2000-01-01 03:00:00'`` — the units string
starts with a space, which is stripped before decoding here rather than left to the decoder.

Conversion: water mass per area of the 0–10 cm layer → volumetric content, ``kg m-2 / (1000 kg m-3
· 0.1 m) = kg m-2 / 100`` in m3 m-3.

Orientation: the returned field has latitude **descending** (north → south), the row order of
smda's grids (:mod:`smda.geo.grid`) and of every other reader; the file's ascending rows are
flipped. Longitude stays −179.875 … 179.875. A spatial subset of the global grid (any window of
0.25° cell centres) is accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.ingest.readers import malformed
from smda.ingest.readers.ncfile import (
    DailyField,
    NcFile,
    decode_cf_time,
    open_ncfile,
    read_daily_field,
)
from smda.storage.iolock import serialized

__all__ = ["GLDAS_RES", "VARIABLE", "gldas_time", "open_gldas"]

VARIABLE = "SoilMoi0_10cm_inst"
"""The GLDAS variable read: soil moisture of the 0–10 cm layer (kg m-2 in the file)."""
GLDAS_RES = 0.25
"""Grid spacing (degrees); cell centres at odd multiples of 0.125°."""
_KG_M2_PER_M3_M3 = 100.0  # 1000 kg m-3 water density × 0.1 m layer
_FILL = -9999.0
_TOL = 1e-4


def _decode_time(nc: NcFile) -> np.datetime64:
    """The granule's single valid time (UTC) from ``time`` and its units."""
    if "time" not in nc:
        raise malformed(nc.label, "no time variable")
    values = np.atleast_1d(nc.read("time"))
    if values.size != 1:
        raise malformed(nc.label, f"expected one time step, found {values.size}")
    attrs = nc.attrs("time", ("units", "calendar"))
    units = str(attrs.get("units", ""))
    moment = decode_cf_time(values, units, nc.label, str(attrs.get("calendar", "standard")))
    return np.datetime64(moment.reshape(-1)[0], "ns")


def _check_axis(values: np.ndarray, name: str, label: str) -> None:
    """A regular 0.25° axis of cell centres (odd multiples of 0.125°)."""
    if values.size < 1:
        raise malformed(label, f"{name} is empty")
    steps = np.abs(np.diff(values))
    offsets = np.abs(
        (values - GLDAS_RES / 2) / GLDAS_RES - np.round((values - GLDAS_RES / 2) / GLDAS_RES)
    )
    if np.any(np.abs(steps - GLDAS_RES) > _TOL) or np.any(offsets > _TOL / GLDAS_RES):
        raise malformed(
            label,
            f"unexpected grid: {name} is not a regular {GLDAS_RES}° axis of cell centres "
            f"(first {values[:3].tolist()}, {values.size} values)",
        )


@dataclass(frozen=True, eq=False)
class _Loaded:
    """What a granule holds for :func:`open_gldas`, the field still as stored."""

    field: DailyField
    moment: np.datetime64


@serialized
def _load(path: str | os.PathLike[str], label: str) -> _Loaded:
    """Read what :func:`open_gldas` needs (under the HDF5 lock; decompression comes later)."""
    with open_ncfile(path, name=label) as nc:
        return _Loaded(field=read_daily_field(nc, VARIABLE, label=label), moment=_decode_time(nc))


def _field(loaded: _Loaded) -> npt.NDArray[np.float32]:
    """``SoilMoi0_10cm_inst`` as (lat, lon) float32 in the file's units, fill → NaN."""
    values: npt.NDArray[np.float32] = loaded.field.values()
    values[values == np.float32(_FILL)] = np.nan  # the product's fill, declared or not
    return values


def open_gldas(path: str | os.PathLike[str]) -> xr.DataArray:
    """Read a GLDAS Noah granule's 0–10 cm soil moisture in m3 m-3.

    Only ``SoilMoi0_10cm_inst``, ``lat``, ``lon`` and ``time`` are read (directly, through
    :mod:`smda.ingest.readers.ncfile`): the other variables of a full granule are not decoded, and
    the field's chunk is decompressed after the HDF5 lock is released.

    Parameters
    ----------
    path:
        A ``GLDAS_NOAH025_3H`` v2.1 granule (global, or a 0.25° window of it).

    Returns
    -------
    xr.DataArray
        ``SoilMoi0_10cm_inst`` with dims ``(lat, lon)``: float32, **m3 m-3** (file kg m-2 ÷ 100),
        NaN where the file has its fill (sea, Antarctica); ``lat`` float64 **descending**
        (89.875 … −59.875 for a global granule), ``lon`` float64 −179.875 … 179.875; scalar
        coordinate ``time`` (datetime64[ns], UTC valid time of the instantaneous field).

    Raises
    ------
    MalformedFile
        Not netCDF, truncated/corrupt, no ``SoilMoi0_10cm_inst``, unexpected dims or grid, or
        undecodable time.
    """
    label = os.fspath(path)
    loaded = _load(path, label)
    values, lat, lon, moment = _field(loaded), loaded.field.lat, loaded.field.lon, loaded.moment
    units = str(loaded.field.attrs.get("units", "")).strip()
    _check_axis(lat, "lat", label)
    _check_axis(lon, "lon", label)
    if lat.size != values.shape[0] or lon.size != values.shape[1]:
        raise malformed(label, f"unexpected grid: lat/lon sizes do not match {VARIABLE}")
    if units.replace(" ", "") not in ("kgm-2", "kg/m2", "kgm**-2"):
        raise malformed(label, f"{VARIABLE} has units {units!r}, expected 'kg m-2'")
    values /= np.float32(_KG_M2_PER_M3_M3)
    if lat.size > 1 and lat[1] > lat[0]:
        lat, values = lat[::-1], values[::-1]
    return xr.DataArray(
        np.ascontiguousarray(values),
        dims=("lat", "lon"),
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            "time": moment,
        },
        name=VARIABLE,
        attrs={
            "units": "m3 m-3",
            "long_name": "volumetric soil moisture, 0-10 cm (GLDAS Noah kg m-2 / 100)",
            "source": os.path.basename(label),
        },
    )


@serialized
def gldas_time(path: str | os.PathLike[str]) -> datetime:
    """The valid time (naive UTC ``datetime``) of a GLDAS granule, read without the data.

    Raises
    ------
    MalformedFile
        Not netCDF, truncated/corrupt, or no decodable single time step.
    """
    label = os.fspath(path)
    with open_ncfile(path, name=label) as nc:
        moment = _decode_time(nc)
    result: datetime = pd.Timestamp(moment).to_pydatetime()
    return result
