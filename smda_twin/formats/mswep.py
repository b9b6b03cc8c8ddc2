"""MSWEP V2.8 daily precipitation files (``YYYYDDD.nc``) as GloH2O distributes them.

No real MSWEP file was available (PROVENANCE.md, "Not found"), so this follows SOURCES.md and
the usual GloH2O conventions; every choice below is ours and marked so that readers check it
rather than rely on it:

- NETCDF4 with zlib (level 4, shuffle), one chunk per field.
- Dimensions ``time`` (1), ``lat`` (1800), ``lon`` (3600) — 0.1° cell centres, latitude
  **descending** 89.95 … −89.95, longitude −179.95 … 179.95 (SOURCES.md: *unconfirmed*).
- ``lat``/``lon`` float32 with ``standard_name``/``long_name``/``units``/``axis``.
- ``time`` float64 ``days since 1899-12-31 00:00:00`` (calendar ``gregorian``), value = the day
  (our choice; a reader must decode the units, not assume them).
- ``precipitation(time, lat, lon)`` float32, ``units`` ``mm/d`` (mm per time step: one day),
  ``long_name`` ``precipitation``, ``_FillValue`` −9999 (MSWEP is gap-free, so the fill should
  never appear).
- Global attributes ``title``, ``institution``, ``source``, ``Conventions`` (``CF-1.8``) and a
  fixed ``history``, so that identical inputs give byte-identical files.

Writing: netCDF-C writes the file but not the field; the field's one chunk is shuffled and
deflated here (the same byte planes and zlib stream HDF5's shuffle and deflate filters make,
computed outside the HDF5 lock and without the GIL) and stored with a direct chunk write.

NRT files younger than about 10 days are revised in place by the provider; a revision is simply
the same file written again with new values.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Final

import h5py
import netCDF4
import numpy as np
import numpy.typing as npt

from smda.storage.iolock import serialized
from smda_twin.formats._common import atomic_target, shuffled_deflate

__all__ = ["LATITUDE", "LONGITUDE", "SHAPE", "TIME_UNITS", "mswep_filename", "write_mswep_daily"]

SHAPE = (1800, 3600)
LATITUDE: npt.NDArray[np.float64] = np.round(89.95 - 0.1 * np.arange(1800, dtype=np.float64), 2)
LONGITUDE: npt.NDArray[np.float64] = np.round(-179.95 + 0.1 * np.arange(3600, dtype=np.float64), 2)
TIME_UNITS = "days since 1899-12-31 00:00:00"
_EPOCH = date(1899, 12, 31)
_FILL = np.float32(-9999.0)
_LEVEL: Final = 4  # zlib level of the field


def mswep_filename(day: date) -> str:
    """``YYYYDDD.nc`` (DDD: day of the year, 001–366)."""
    return f"{day.year}{day.timetuple().tm_yday:03d}.nc"


def write_mswep_daily(
    path: str | os.PathLike[str], *, day: date, precipitation: npt.ArrayLike
) -> None:
    """Write one MSWEP V2.8 daily file atomically.

    Parameters
    ----------
    path
        Target file (GloH2O's name is :func:`mswep_filename`, under ``…/Daily/``).
    day
        The day (UTC) the precipitation is accumulated over.
    precipitation
        Daily total, mm/day, ``(lat, lon)`` = (1800, 3600) or ``(1, 1800, 3600)``, rows north to
        south (latitude 89.95 first); NaN is written as the fill value.
    """
    values = np.asarray(precipitation, dtype=np.float32)
    if values.shape == (1, *SHAPE):
        values = values[0]
    if values.shape != SHAPE:
        raise ValueError(
            f"MSWEP precipitation has shape {values.shape}, expected (lat, lon) = {SHAPE}"
        )
    stored = values.astype("<f4")  # a copy: NaN is written as the fill value
    np.copyto(stored, _FILL, where=np.isnan(stored))
    chunk = shuffled_deflate(stored, _LEVEL)
    with atomic_target(path) as tmp:  # the file is synced after the library lock is released
        _write_file(tmp, day, chunk)


@serialized
def _write_file(path: Path, day: date, chunk: bytes) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.setncatts(
            {
                "title": "MSWEP V2.8 daily precipitation",
                "institution": "GloH2O",
                "source": "Multi-Source Weighted-Ensemble Precipitation (MSWEP) V2.8",
                "Conventions": "CF-1.8",
                "history": f"created for {day.isoformat()}",
            }
        )
        ds.createDimension("time", 1)
        ds.createDimension("lat", SHAPE[0])
        ds.createDimension("lon", SHAPE[1])
        time = ds.createVariable("time", "f8", ("time",))
        time.setncatts(
            {
                "standard_name": "time",
                "long_name": "time",
                "units": TIME_UNITS,
                "calendar": "gregorian",
            }
        )
        time[:] = [(day - _EPOCH).days]
        for name, axis, units, short in (
            ("lat", LATITUDE, "degrees_north", "Y"),
            ("lon", LONGITUDE, "degrees_east", "X"),
        ):
            var = ds.createVariable(name, "f4", (name,))
            long = "latitude" if name == "lat" else "longitude"
            var.setncatts({"standard_name": long, "long_name": long, "units": units, "axis": short})
            var[:] = axis.astype(np.float32)
        precip = ds.createVariable(
            "precipitation",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            complevel=_LEVEL,
            shuffle=True,
            chunksizes=(1, *SHAPE),
            fill_value=_FILL,
        )
        precip.setncatts({"long_name": "precipitation", "units": "mm/d"})
    with h5py.File(path, "r+") as f:
        f["precipitation"].id.write_direct_chunk((0, 0, 0), chunk)
