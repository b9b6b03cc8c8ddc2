"""GLDAS Noah 0.25° 3-hourly v2.1 (``GLDAS_NOAH025_3H``) granules as GES DISC serves them.

The layout copies the real granule ``../shared/data/real/gldas/GLDAS_NOAH025_3H.A20160101.0300.021.nc4``
(STRUCTURE.md §4.1):

- NETCDF4; dimensions ``time`` (1, UNLIMITED), ``lat`` 600 (ascending −59.875 … 89.875), ``lon``
  1440 (−179.875 … 179.875), ``bnds`` 2;
- ``time`` float64 in ``' minutes since 2000-01-01 03:00:00'`` (the units string starts with a
  space; the reference is the start of the GLDAS-2.1 run, the same in every granule) with
  ``time_increment``, ``begin_date``, ``begin_time``, ``bounds``; ``time_bnds`` = [time − 180, time];
- ``lat``/``lon`` float32 and every data variable float32 ``(time, lat, lon)``, zlib level 4 with
  shuffle, one chunk per field, attributes ``units``, ``standard_name``, ``long_name``,
  ``cell_methods``, ``scale_factor`` 1, ``add_offset`` 0, ``missing_value`` = ``_FillValue`` =
  −9999, ``vmin``/``vmax`` (the valid range of the field);
- the global attributes of the product, in the producer's order.

The real sample was subset by ``ncks`` (its history and ``NCO`` attributes say so); a delivered
full granule has only the ``created on date:`` history, which is what is written here.
Variable names and units follow the granule's ``.xml`` (``Rainf_f_tavg`` kg m-2 s-1,
``Tair_f_inst`` K, …). ``standard_name`` of the soil-moisture layers is from the real file; the
others are the CF names GLDAS uses (best knowledge, not checked against a real file).

Differences that readers cannot see: netCDF4-python writes ``_FillValue`` first in each
variable's attribute list (the real file has it after ``missing_value``). Output is
byte-identical for identical inputs and library versions (netCDF-C stores no object times).

Writing: netCDF-C writes the file but not the fields; each field's one chunk is shuffled and
deflated here (the stream HDF5's filters make, computed outside the HDF5 lock) and stored with
a direct chunk write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import h5py
import netCDF4
import numpy as np
import numpy.typing as npt

from smda.storage.iolock import serialized
from smda_twin.formats._common import as_utc, atomic_target, shuffled_deflate

__all__ = [
    "LATITUDE",
    "LONGITUDE",
    "SHAPE",
    "VARIABLES",
    "GldasVariable",
    "gldas_filename",
    "write_gldas_noah025_3h",
]

SHAPE = (600, 1440)
LATITUDE: npt.NDArray[np.float64] = -59.875 + 0.25 * np.arange(600, dtype=np.float64)
LONGITUDE: npt.NDArray[np.float64] = -179.875 + 0.25 * np.arange(1440, dtype=np.float64)
_FILL = np.float32(-9999.0)
_LEVEL: Final = 4  # zlib level of every variable
_REFERENCE = datetime(2000, 1, 1, 3)
_STEP_MINUTES = 180


@dataclass(frozen=True)
class GldasVariable:
    """One GLDAS output field: ``units`` and ``long_name`` as in the granule ``.xml``."""

    units: str
    long_name: str
    standard_name: str

    def cell_methods(self, name: str) -> str:
        """``time: point`` for ``_inst``, ``time: mean`` for ``_tavg``, ``time: sum`` for ``_acc``."""
        suffix = name.rsplit("_", 1)[-1]
        return {"inst": "time: point", "tavg": "time: mean", "acc": "time: sum"}[suffix]


_V = GldasVariable
VARIABLES: dict[str, GldasVariable] = {
    "Swnet_tavg": _V(
        "W m-2", "Net short wave radiation flux", "surface_net_downward_shortwave_flux"
    ),
    "Lwnet_tavg": _V("W m-2", "Net long-wave radiation flux", "surface_net_downward_longwave_flux"),
    "Qle_tavg": _V("W m-2", "Latent heat net flux", "surface_upward_latent_heat_flux"),
    "Qh_tavg": _V("W m-2", "Sensible heat net flux", "surface_upward_sensible_heat_flux"),
    "Qg_tavg": _V("W m-2", "Heat flux", "downward_heat_flux_in_soil"),
    "Snowf_tavg": _V("kg m-2 s-1", "Snow precipitation rate", "snowfall_flux"),
    "Rainf_tavg": _V("kg m-2 s-1", "Rain precipitation rate", "rainfall_flux"),
    "Evap_tavg": _V("kg m-2 s-1", "Evapotranspiration", "water_evaporation_flux"),
    "Qs_acc": _V("kg m-2", "Storm surface runoff", "surface_runoff_amount"),
    "Qsb_acc": _V("kg m-2", "Baseflow-groundwater runoff", "subsurface_runoff_amount"),
    "Qsm_acc": _V("kg m-2", "Snow melt", "surface_snow_melt_amount"),
    "AvgSurfT_inst": _V("K", "Average Surface Skin temperature", "surface_temperature"),
    "Albedo_inst": _V("%", "Albedo", "surface_albedo"),
    "SWE_inst": _V("kg m-2", "Snow depth water equivalent", "liquid_water_content_of_surface_snow"),
    "SnowDepth_inst": _V("m", "Snow depth", "surface_snow_thickness"),
    "SoilMoi0_10cm_inst": _V("kg m-2", "Soil moisture", "soil_moisture_content"),
    "SoilMoi10_40cm_inst": _V("kg m-2", "Soil moisture", "soil_moisture_content"),
    "SoilMoi40_100cm_inst": _V("kg m-2", "Soil moisture", "soil_moisture_content"),
    "SoilMoi100_200cm_inst": _V("kg m-2", "Soil moisture", "soil_moisture_content"),
    "SoilTMP0_10cm_inst": _V("K", "Soil temperature", "soil_temperature"),
    "SoilTMP10_40cm_inst": _V("K", "Soil temperature", "soil_temperature"),
    "SoilTMP40_100cm_inst": _V("K", "Soil temperature", "soil_temperature"),
    "SoilTMP100_200cm_inst": _V("K", "Soil temperature", "soil_temperature"),
    "PotEvap_tavg": _V("W m-2", "Potential evaporation rate", "potential_evaporation_flux"),
    "ECanop_tavg": _V("W m-2", "Canopy water evaporation", "evaporation_flux_from_canopy"),
    "Tveg_tavg": _V("W m-2", "Transpiration", "transpiration_flux"),
    "ESoil_tavg": _V("W m-2", "Direct Evaporation from Bare Soil", "evaporation_flux_from_soil"),
    "RootMoist_inst": _V("kg m-2", "Root zone soil moisture", "root_zone_soil_moisture"),
    "CanopInt_inst": _V("kg m-2", "Plant canopy surface water", "surface_canopy_water_amount"),
    "Wind_f_inst": _V("m s-1", "Wind speed", "wind_speed"),
    "Rainf_f_tavg": _V("kg m-2 s-1", "Total precipitation rate", "precipitation_flux"),
    "Tair_f_inst": _V("K", "Temperature", "air_temperature"),
    "Qair_f_inst": _V("kg kg-1", "Specific humidity", "specific_humidity"),
    "Psurf_f_inst": _V("Pa", "Pressure", "surface_air_pressure"),
    "SWdown_f_tavg": _V(
        "W m-2", "Downward short-wave radiation flux", "surface_downwelling_shortwave_flux_in_air"
    ),
    "LWdown_f_tavg": _V(
        "W m-2", "Downward long-wave radiation flux", "surface_downwelling_longwave_flux_in_air"
    ),
}
"""Variable name → metadata, in the order the product stores them."""

_REQUIRED = "SoilMoi0_10cm_inst"


def gldas_filename(time: datetime) -> str:
    """``GLDAS_NOAH025_3H.AYYYYMMDD.HHMM.021.nc4`` for the granule valid at ``time`` (UTC)."""
    return f"GLDAS_NOAH025_3H.A{as_utc(time):%Y%m%d.%H%M}.021.nc4"


def _check(
    time: datetime, fields: Mapping[str, npt.ArrayLike]
) -> dict[str, npt.NDArray[np.float32]]:
    problems = []
    if time.minute or time.second or time.microsecond or time.hour % 3:
        problems.append(
            f"time {time.isoformat()} is not on the 3-hourly GLDAS steps (00, 03, …, 21 UTC)"
        )
    if _REQUIRED not in fields:
        problems.append(f"{_REQUIRED} (kg m-2, 0–10 cm) is required")
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, values in fields.items():
        if name not in VARIABLES:
            problems.append(f"unknown GLDAS variable {name!r} (valid: {sorted(VARIABLES)})")
            continue
        array = np.asarray(values, dtype=np.float32)
        if array.shape == (1, *SHAPE):
            array = array[0]
        if array.shape != SHAPE:
            problems.append(f"{name} has shape {array.shape}, expected (lat, lon) = {SHAPE}")
            continue
        out[name] = np.where(np.isnan(array), _FILL, array)
    if problems:
        raise ValueError("invalid GLDAS input: " + "; ".join(problems))
    return {name: out[name] for name in VARIABLES if name in out}


def _packing_attrs(vmin: float, vmax: float) -> dict[str, np.float32]:
    return {
        "scale_factor": np.float32(1.0),
        "add_offset": np.float32(0.0),
        "missing_value": _FILL,
        "vmin": np.float32(vmin),
        "vmax": np.float32(vmax),
    }


def _global_attrs(created: datetime) -> dict[str, object]:
    stamp = f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}"
    return {
        "missing_value": _FILL,
        "tavg definision:": "past 3-hour average",
        "acc definision:": "past 3-hour accumulation",
        "inst definision:": "instantaneous",
        "title": "GLDAS2.1 LIS land surface model output",
        "institution": "NASA GSFC",
        "source": "Noah_v3.3",
        "history": f"created on date: {stamp}",
        "references": "Rodell_etal_BAMS_2004, Kumar_etal_EMS_2006, Peters-Lidard_etal_ISSE_2007",
        "conventions": "CF-1.6",
        "comment": "website: http://ldas.gsfc.nasa.gov/gldas, http://lis.gsfc.nasa.gov/",
        "MAP_PROJECTION": "EQUIDISTANT CYLINDRICAL",
        "SOUTH_WEST_CORNER_LAT": np.float32(-59.875),
        "SOUTH_WEST_CORNER_LON": np.float32(-179.875),
        "DX": np.float32(0.25),
        "DY": np.float32(0.25),
    }


def _write_axis(
    ds: netCDF4.Dataset, name: str, values: npt.NDArray[np.float64], units: str, long: str
) -> None:
    var = ds.createVariable(
        name, "f4", (name,), zlib=True, complevel=_LEVEL, shuffle=True, fill_value=_FILL
    )
    var.setncatts({"units": units, "standard_name": long, "long_name": long})
    var.setncatts(_packing_attrs(float(values.min()), float(values.max())))
    var.set_auto_maskandscale(False)
    var[:] = values.astype(np.float32)


def _write_time(ds: netCDF4.Dataset, time: datetime) -> None:
    minutes = (time - _REFERENCE) / timedelta(minutes=1)
    var = ds.createVariable("time", "f8", ("time",), chunksizes=(1,))  # as the real granule
    var.setncatts(
        {
            "units": f" minutes since {_REFERENCE:%Y-%m-%d %H:%M:%S}",
            "long_name": "time",
            "time_increment": str(_STEP_MINUTES),
            "begin_date": f"{time:%Y%m%d}",
            "begin_time": f"{time:%H%M%S}",
            "bounds": "time_bnds",
        }
    )
    var[:] = [minutes]
    bounds = ds.createVariable("time_bnds", "f8", ("time", "bnds"), chunksizes=(1, 2))
    bounds[:] = [[minutes - _STEP_MINUTES, minutes]]


def write_gldas_noah025_3h(
    path: str | os.PathLike[str],
    *,
    time: datetime,
    fields: Mapping[str, npt.ArrayLike],
    created: datetime | None = None,
) -> None:
    """Write one GLDAS_NOAH025_3H v2.1 granule atomically.

    Parameters
    ----------
    path
        Target file (GES DISC's name is :func:`gldas_filename`).
    time
        Valid time (UTC, on the 3-hourly steps); ``_inst`` fields are valid then, ``_tavg`` and
        ``_acc`` fields cover the 3 hours ending then.
    fields
        Name (see :data:`VARIABLES`; ``SoilMoi0_10cm_inst`` required) → ``(lat, lon)`` =
        (600, 1440) values in the product's units (soil moisture in kg m-2: 100 × m3 m-3 for the
        0–10 cm layer), rows south to north; NaN or −9999 where there is no land.
    created
        Production time written to ``history`` (default: ``time`` + 45 days, the early product's
        latency).
    """
    moment = as_utc(time)
    arrays = _check(moment, fields)
    made = as_utc(created) if created is not None else moment + timedelta(days=45)
    chunks = {name: shuffled_deflate(values, _LEVEL) for name, values in arrays.items()}
    with atomic_target(path) as tmp:  # the file is synced after the library lock is released
        _write_file(tmp, moment, made, arrays, chunks)


@serialized
def _write_file(
    path: Path,
    moment: datetime,
    made: datetime,
    arrays: Mapping[str, npt.NDArray[np.float32]],
    chunks: Mapping[str, bytes],
) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", SHAPE[0])
        ds.createDimension("lon", SHAPE[1])
        ds.createDimension("bnds", 2)
        ds.setncatts(_global_attrs(made))
        for name, values in arrays.items():
            meta = VARIABLES[name]
            var = ds.createVariable(
                name,
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                complevel=_LEVEL,
                shuffle=True,
                chunksizes=(1, *SHAPE),
                fill_value=_FILL,
            )
            valid = values[values != _FILL]
            low, high = (
                (float(valid.min()), float(valid.max())) if valid.size else (float(_FILL),) * 2
            )
            var.setncatts(
                {
                    "units": meta.units,
                    "standard_name": meta.standard_name,
                    "long_name": meta.long_name,
                    "cell_methods": meta.cell_methods(name),
                }
            )
            var.setncatts(_packing_attrs(low, high))
        _write_axis(ds, "lat", LATITUDE, "degrees_north", "latitude")
        _write_axis(ds, "lon", LONGITUDE, "degrees_east", "longitude")
        _write_time(ds, moment)
    with h5py.File(path, "r+") as f:
        for name, chunk in chunks.items():
            f[name].resize((1, *SHAPE))  # record 0 of the unlimited time, as netCDF-C would
            f[name].id.write_direct_chunk((0, 0, 0), chunk)
