"""ERA5 and ERA5-Land netCDF files as the new Climate Data Store (2024+) returns them.

The CDS converts its GRIB to netCDF with cfgrib (``history: … GRIB to CDM+CF via cfgrib-0.9.15.1/
ecCodes-2.42.0 …``). The layout written here copies the real files in
``../shared/data/real/era5/cds_2024_netcdf/`` (STRUCTURE.md §3.1):

- NETCDF4; dimensions ``valid_time``, ``latitude`` (decreasing), ``longitude``;
- ``number`` — scalar int64 coordinate (0); ``valid_time`` — int64 ``seconds since 1970-01-01``,
  ``proleptic_gregorian``; ``latitude``/``longitude`` — float64 with ``_FillValue`` NaN (latitude
  also has ``stored_direction: decreasing``); ``expver(valid_time)`` — variable-length strings
  (``"0001"`` final ERA5, ``"0005"`` ERA5T);
- data variables float32 ``(valid_time, latitude, longitude)``, ``_FillValue`` NaN, zlib level 1
  with shuffle, a single chunk, and the ``GRIB_*`` attributes cfgrib writes, in its order;
- global attributes ``GRIB_centre``, ``GRIB_centreDescription``, ``GRIB_subCentre``,
  ``Conventions`` (``CF-1.7``), ``institution``, ``history``.

ERA5 single levels are split by the CDS per stream and stepType (``filter_by_keys`` in the
history); a request that mixes instantaneous and accumulated variables comes back as a ZIP of
``data_stream-oper_stepType-instant.nc`` and ``data_stream-oper_stepType-accum.nc``
(:func:`write_era5_response`). ERA5-Land is not split: every variable is in one file
(``filter_by_keys: {}``), as in the real ERA5-Land sample.

Metadata table (:data:`PARAMS`): names, units and ``standard_name``/``GRIB_cfName`` follow
ecCodes 2.4x for GRIB edition 1 (``unknown`` where ecCodes has no CF name, as for t2m, tp and
swvl1 in the real files). ``GRIB_dataType`` is ``an`` for ERA5 analysed fields and ``fc`` for the
accumulations; in ERA5-Land the real sample has ``fc`` for t2m and ``an`` for swvl1 — the other
ERA5-Land types (d2m, u10, v10, sp: ``fc``) are assumed by analogy.

Determinism: the history timestamp comes from ``created`` (default: the last valid time + 5 days,
ERA5T's latency), the ZIP member times likewise. netCDF-C stores no object times, so the same
inputs give byte-identical files with the same library versions (``_NCProperties`` records them).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np
import numpy.typing as npt

from smda.storage.iolock import serialized
from smda_twin.formats._common import as_utc, atomic_target

__all__ = [
    "DATASETS",
    "MEDIA_NETCDF",
    "MEDIA_ZIP",
    "PARAMS",
    "REQUEST_NAMES",
    "STEP_TYPE",
    "GribParam",
    "era5_params",
    "write_era5_netcdf",
    "write_era5_response",
    "zip_member_name",
]

MEDIA_NETCDF = "application/netcdf"
MEDIA_ZIP = "application/zip"

_ERA5 = "reanalysis-era5-single-levels"
_ERA5_LAND = "reanalysis-era5-land"
_CFGRIB = "cfgrib-0.9.15.1/ecCodes-2.42.0"
_ECMWF = "European Centre for Medium-Range Weather Forecasts"
_GRIB_MISSING = 3.4028234663852886e38
_LEVEL_VALUE = 0.0


@dataclass(frozen=True)
class GribParam:
    """What cfgrib writes about one GRIB parameter.

    ``short_name`` is the netCDF variable name (``GRIB_cfVarName``); ``grib_short_name`` the
    ecCodes short name (``2t`` for t2m); ``cf_name`` doubles as ``standard_name``.
    """

    short_name: str
    grib_short_name: str
    param_id: int
    name: str
    units: str
    cf_name: str
    step_type: str
    data_type: str
    type_of_level: str = "surface"


_P = GribParam
PARAMS: dict[str, GribParam] = {
    p.short_name: p
    for p in (
        _P("t2m", "2t", 167, "2 metre temperature", "K", "unknown", "instant", "an"),
        _P("d2m", "2d", 168, "2 metre dewpoint temperature", "K", "unknown", "instant", "an"),
        _P("u10", "10u", 165, "10 metre U wind component", "m s**-1", "unknown", "instant", "an"),
        _P("v10", "10v", 166, "10 metre V wind component", "m s**-1", "unknown", "instant", "an"),
        _P("sp", "sp", 134, "Surface pressure", "Pa", "surface_air_pressure", "instant", "an"),
        _P(
            "swvl1",
            "swvl1",
            39,
            "Volumetric soil water layer 1",
            "m**3 m**-3",
            "unknown",
            "instant",
            "an",
            "depthBelowLandLayer",
        ),
        _P("z", "z", 129, "Geopotential", "m**2 s**-2", "geopotential", "instant", "an"),
        _P("lsm", "lsm", 172, "Land-sea mask", "(0 - 1)", "land_binary_mask", "instant", "an"),
        _P("slt", "slt", 43, "Soil type", "(Code table 4.213)", "unknown", "instant", "an"),
        _P("cvh", "cvh", 28, "High vegetation cover", "(0 - 1)", "unknown", "instant", "an"),
        _P("cvl", "cvl", 27, "Low vegetation cover", "(0 - 1)", "unknown", "instant", "an"),
        _P(
            "tvh",
            "tvh",
            30,
            "Type of high vegetation",
            "(Code table 4.234)",
            "unknown",
            "instant",
            "an",
        ),
        _P(
            "tvl",
            "tvl",
            29,
            "Type of low vegetation",
            "(Code table 4.234)",
            "unknown",
            "instant",
            "an",
        ),
        _P(
            "ssrd",
            "ssrd",
            169,
            "Surface short-wave (solar) radiation downwards",
            "J m**-2",
            "surface_downwelling_shortwave_flux_in_air",
            "accum",
            "fc",
        ),
        _P("tp", "tp", 228, "Total precipitation", "m", "unknown", "accum", "fc"),
        _P(
            "sshf",
            "sshf",
            146,
            "Time-integrated surface sensible heat net flux",
            "J m**-2",
            "surface_upward_sensible_heat_flux",
            "accum",
            "fc",
        ),
        _P(
            "slhf",
            "slhf",
            147,
            "Time-integrated surface latent heat net flux",
            "J m**-2",
            "surface_upward_latent_heat_flux",
            "accum",
            "fc",
        ),
    )
}

STEP_TYPE: dict[str, str] = {name: p.step_type for name, p in PARAMS.items()}
"""Short name → cfgrib stepType (``instant`` or ``accum``)."""

REQUEST_NAMES: dict[str, str] = {
    "2m_temperature": "t2m",
    "2m_dewpoint_temperature": "d2m",
    "10m_u_component_of_wind": "u10",
    "10m_v_component_of_wind": "v10",
    "surface_pressure": "sp",
    "volumetric_soil_water_layer_1": "swvl1",
    "geopotential": "z",
    "land_sea_mask": "lsm",
    "soil_type": "slt",
    "high_vegetation_cover": "cvh",
    "low_vegetation_cover": "cvl",
    "type_of_high_vegetation": "tvh",
    "type_of_low_vegetation": "tvl",
    "surface_solar_radiation_downwards": "ssrd",
    "total_precipitation": "tp",
    "surface_sensible_heat_flux": "sshf",
    "surface_latent_heat_flux": "slhf",
}
"""CDS request variable name → netCDF short name."""


@dataclass(frozen=True)
class _Dataset:
    resolution: float  # degrees, used for GRIB_*DirectionIncrement when a dimension has one point
    data_types: Mapping[str, str]  # short name → GRIB_dataType; also the variables on offer
    split_by_step_type: bool


DATASETS: dict[str, _Dataset] = {
    _ERA5: _Dataset(0.25, {n: p.data_type for n, p in PARAMS.items()}, True),
    _ERA5_LAND: _Dataset(
        0.1,
        {
            "t2m": "fc",
            "d2m": "fc",
            "u10": "fc",
            "v10": "fc",
            "sp": "fc",
            "swvl1": "an",
            "ssrd": "fc",
            "tp": "fc",
            "sshf": "fc",
            "slhf": "fc",
        },
        False,
    ),
}
"""CDS dataset name → what this module can write for it."""


def era5_params(dataset: str) -> dict[str, GribParam]:
    """The parameters ``dataset`` offers, with that dataset's ``GRIB_dataType``."""
    info = _dataset(dataset)
    return {n: replace(PARAMS[n], data_type=t) for n, t in info.data_types.items()}


def zip_member_name(step_type: str) -> str:
    """Name of the CDS ZIP member holding the ``step_type`` fields."""
    return f"data_stream-oper_stepType-{step_type}.nc"


def _dataset(dataset: str) -> _Dataset:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown CDS dataset {dataset!r}; known: {sorted(DATASETS)}") from None


@dataclass(frozen=True)
class _Coords:
    valid_time: npt.NDArray[np.int64]  # seconds since 1970-01-01
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    expver: tuple[str, ...]
    created: datetime


def _coords(
    valid_time: npt.ArrayLike,
    latitude: npt.ArrayLike,
    longitude: npt.ArrayLike,
    expver: Sequence[str],
    created: datetime | None,
) -> _Coords:
    seconds = np.asarray(valid_time, dtype="datetime64[s]").astype(np.int64).ravel()
    lat = np.asarray(latitude, dtype=np.float64).ravel()
    lon = np.asarray(longitude, dtype=np.float64).ravel()
    problems = []
    if seconds.size == 0:
        problems.append("valid_time is empty")
    if lat.size > 1 and not np.all(np.diff(lat) < 0):
        problems.append(
            "latitude must be strictly decreasing (north to south), as the CDS writes it"
        )
    if lon.size > 1 and not np.all(np.diff(lon) > 0):
        problems.append("longitude must be strictly increasing")
    if len(expver) != seconds.size:
        problems.append(f"expver has {len(expver)} entries for {seconds.size} valid times")
    if problems:
        raise ValueError("invalid ERA5 coordinates: " + "; ".join(problems))
    if created is None:
        last = datetime(1970, 1, 1) + timedelta(seconds=int(seconds.max()))
        created = last + timedelta(days=5)
    return _Coords(seconds, lat, lon, tuple(str(e) for e in expver), as_utc(created))


def _check_fields(
    fields: Mapping[str, npt.ArrayLike],
    coords: _Coords,
    params: Mapping[str, GribParam],
    dataset: str,
) -> dict[str, npt.NDArray[np.float32]]:
    if not fields:
        raise ValueError("no fields to write")
    shape = (coords.valid_time.size, coords.latitude.size, coords.longitude.size)
    out: dict[str, npt.NDArray[np.float32]] = {}
    problems = []
    for name, values in fields.items():
        if name not in params:
            problems.append(f"{name!r} is not offered by {dataset} (valid: {sorted(params)})")
            continue
        array = np.asarray(values, dtype=np.float32)
        if array.shape != shape:
            problems.append(
                f"{name} has shape {array.shape}, expected (valid_time, latitude, longitude) = {shape}"
            )
        out[name] = array
    if problems:
        raise ValueError("invalid ERA5 fields: " + "; ".join(problems))
    return out


def _increment(axis: npt.NDArray[np.float64], default: float) -> float:
    if axis.size < 2:
        return default
    return round(float(abs(axis[1] - axis[0])), 6)


def _grib_attrs(param: GribParam, coords: _Coords, resolution: float) -> dict[str, object]:
    lat, lon = coords.latitude, coords.longitude
    attrs: dict[str, object] = {
        "GRIB_paramId": np.int64(param.param_id),
        "GRIB_dataType": param.data_type,
        "GRIB_numberOfPoints": np.int64(lat.size * lon.size),
        "GRIB_typeOfLevel": param.type_of_level,
        "GRIB_stepUnits": np.int64(1),
        "GRIB_stepType": param.step_type,
        "GRIB_gridType": "regular_ll",
        "GRIB_uvRelativeToGrid": np.int64(0),
        "GRIB_NV": np.int64(0),
        "GRIB_Nx": np.int64(lon.size),
        "GRIB_Ny": np.int64(lat.size),
        "GRIB_cfName": param.cf_name,
        "GRIB_cfVarName": param.short_name,
        "GRIB_gridDefinitionDescription": "Latitude/Longitude Grid",
        "GRIB_iDirectionIncrementInDegrees": np.float64(_increment(lon, resolution)),
        "GRIB_iScansNegatively": np.int64(0),
        "GRIB_jDirectionIncrementInDegrees": np.float64(_increment(lat, resolution)),
        "GRIB_jPointsAreConsecutive": np.int64(0),
        "GRIB_jScansPositively": np.int64(0),
        "GRIB_latitudeOfFirstGridPointInDegrees": np.float64(lat[0]),
        "GRIB_latitudeOfLastGridPointInDegrees": np.float64(lat[-1]),
        "GRIB_longitudeOfFirstGridPointInDegrees": np.float64(lon[0]),
        "GRIB_longitudeOfLastGridPointInDegrees": np.float64(lon[-1]),
        "GRIB_missingValue": np.float64(_GRIB_MISSING),
        "GRIB_name": param.name,
        "GRIB_shortName": param.grib_short_name,
        "GRIB_totalNumber": np.int64(0),
        "GRIB_units": param.units,
        "long_name": param.name,
        "units": param.units,
        "standard_name": param.cf_name,
        f"GRIB_{param.type_of_level}": np.float64(_LEVEL_VALUE),
        "coordinates": "number valid_time latitude longitude expver",
    }
    return attrs


def _history(created: datetime, filter_by_keys: Mapping[str, list[str]]) -> str:
    options = json.dumps(
        {
            "source": "data.grib",
            "filter_by_keys": dict(filter_by_keys),
            "encode_cf": ["parameter", "time", "geography", "vertical"],
        }
    )
    return f"{created:%Y-%m-%dT%H:%M} GRIB to CDM+CF via {_CFGRIB} with {options}"


def _write_coordinates(ds: netCDF4.Dataset, coords: _Coords) -> None:
    ds.createDimension("valid_time", coords.valid_time.size)
    ds.createDimension("latitude", coords.latitude.size)
    ds.createDimension("longitude", coords.longitude.size)
    number = ds.createVariable("number", "i8", ())
    number.setncatts(
        {"long_name": "ensemble member numerical id", "units": "1", "standard_name": "realization"}
    )
    number.assignValue(0)
    time = ds.createVariable("valid_time", "i8", ("valid_time",))
    time.setncatts(
        {
            "long_name": "time",
            "standard_name": "time",
            "units": "seconds since 1970-01-01",
            "calendar": "proleptic_gregorian",
        }
    )
    time[:] = coords.valid_time
    for name, axis, units in (
        ("latitude", coords.latitude, "degrees_north"),
        ("longitude", coords.longitude, "degrees_east"),
    ):
        var = ds.createVariable(name, "f8", (name,), fill_value=np.float64(np.nan))
        var.setncatts({"units": units, "standard_name": name, "long_name": name})
        if name == "latitude":
            var.setncattr("stored_direction", "decreasing")
        var[:] = axis
    expver = ds.createVariable("expver", str, ("valid_time",))
    expver[:] = np.array(coords.expver, dtype=object)


def _write_file(
    target: Path,
    fields: Mapping[str, npt.NDArray[np.float32]],
    coords: _Coords,
    params: Mapping[str, GribParam],
    resolution: float,
    filter_by_keys: Mapping[str, list[str]],
) -> None:
    chunks = (coords.valid_time.size, coords.latitude.size, coords.longitude.size)
    with netCDF4.Dataset(target, "w", format="NETCDF4") as ds:
        ds.setncatts(
            {
                "GRIB_centre": "ecmf",
                "GRIB_centreDescription": _ECMWF,
                "GRIB_subCentre": np.int64(0),
                "Conventions": "CF-1.7",
                "institution": _ECMWF,
                "history": _history(coords.created, filter_by_keys),
            }
        )
        _write_coordinates(ds, coords)
        for name, values in fields.items():
            var = ds.createVariable(
                name,
                "f4",
                ("valid_time", "latitude", "longitude"),
                zlib=True,
                complevel=1,
                shuffle=True,
                chunksizes=chunks,
                fill_value=np.float32(np.nan),
            )
            var.setncatts(_grib_attrs(params[name], coords, resolution))
            var.set_auto_maskandscale(False)
            var[:] = values


@serialized
def write_era5_netcdf(
    path: str | os.PathLike[str],
    *,
    fields: Mapping[str, npt.ArrayLike],
    valid_time: npt.ArrayLike,
    latitude: npt.ArrayLike,
    longitude: npt.ArrayLike,
    expver: Sequence[str],
    dataset: str = _ERA5,
    created: datetime | None = None,
) -> None:
    """Write one CDS netCDF file (one stream/stepType file for ERA5 single levels).

    Parameters
    ----------
    path
        Target file; written atomically.
    fields
        Short name (``t2m``, ``tp``, … see :data:`PARAMS`) → values ``(valid_time, latitude,
        longitude)`` in the GRIB units (K, m, J m-2, Pa, m3 m-3, …). NaN marks missing values
        (ERA5-Land's sea points). Written in the mapping's order.
    valid_time
        ``datetime64`` valid times (for accumulations, the end of the accumulation period).
    latitude, longitude
        Degrees; latitude strictly decreasing, longitude increasing (any convention).
    expver
        One ``"0001"`` (final) or ``"0005"`` (ERA5T) per valid time.
    dataset
        ``reanalysis-era5-single-levels`` or ``reanalysis-era5-land``.
    created
        Conversion time recorded in ``history`` (default: last valid time + 5 days).

    Raises
    ------
    ValueError
        Unknown dataset or variable, mismatched shapes, wrong latitude direction, or (ERA5 single
        levels) instantaneous and accumulated fields mixed in one file — the CDS never does that;
        use :func:`write_era5_response`.
    """
    info = _dataset(dataset)
    params = era5_params(dataset)
    coords = _coords(valid_time, latitude, longitude, expver, created)
    arrays = _check_fields(fields, coords, params, dataset)
    kinds = sorted({params[n].step_type for n in arrays})
    if info.split_by_step_type:
        if len(kinds) > 1:
            raise ValueError(
                f"{dataset} files hold one stepType; got {kinds} for {sorted(arrays)}: "
                "use write_era5_response to write the CDS ZIP"
            )
        filter_by_keys: dict[str, list[str]] = {"stream": ["oper"], "stepType": kinds}
    else:
        filter_by_keys = {}
    with atomic_target(path) as tmp:
        _write_file(tmp, arrays, coords, params, info.resolution, filter_by_keys)


@serialized
def write_era5_response(
    path: str | os.PathLike[str],
    *,
    fields: Mapping[str, npt.ArrayLike],
    valid_time: npt.ArrayLike,
    latitude: npt.ArrayLike,
    longitude: npt.ArrayLike,
    expver: Sequence[str],
    dataset: str = _ERA5,
    created: datetime | None = None,
) -> str:
    """Write what the CDS returns for a request of ``fields`` and return its media type.

    ERA5 single levels: one netCDF when every field has the same stepType, otherwise a ZIP with
    :func:`zip_member_name` members (``instant`` first, then ``accum``), even though the request
    asked for ``download_format: unarchived``. ERA5-Land: always one netCDF. Parameters as for
    :func:`write_era5_netcdf`.

    Returns
    -------
    str
        ``application/netcdf`` or ``application/zip``.
    """
    info = _dataset(dataset)
    params = era5_params(dataset)
    coords = _coords(valid_time, latitude, longitude, expver, created)
    arrays = _check_fields(fields, coords, params, dataset)
    groups: dict[str, dict[str, npt.NDArray[np.float32]]] = {}
    for name, values in arrays.items():
        groups.setdefault(params[name].step_type, {})[name] = values
    if not info.split_by_step_type or len(groups) == 1:
        keys: dict[str, list[str]] = (
            {"stream": ["oper"], "stepType": list(groups)} if info.split_by_step_type else {}
        )
        with atomic_target(path) as tmp:
            _write_file(tmp, arrays, coords, params, info.resolution, keys)
        return MEDIA_NETCDF
    stamp = max(coords.created, datetime(1980, 1, 1))
    with atomic_target(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for kind in ("instant", "accum"):
            if kind not in groups:
                continue
            member = tmp.with_name(tmp.name + f".{kind}.nc")
            try:
                keys = {"stream": ["oper"], "stepType": [kind]}
                _write_file(member, groups[kind], coords, params, info.resolution, keys)
                entry = zipfile.ZipInfo(zip_member_name(kind), date_time=stamp.timetuple()[:6])
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_STORED
                with member.open("rb") as src, archive.open(entry, "w") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            finally:
                member.unlink(missing_ok=True)
    return MEDIA_ZIP
