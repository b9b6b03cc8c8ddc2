"""ISMN in-situ soil-moisture station files in the "header+values" format, as ISMN delivers them.

Layout (STRUCTURE.md §2, real samples under ``../shared/data/real/ismn/``)::

    <Network>/<Station>/<CSE>_<Network>_<Station>_sm_<from:.6f>_<to:.6f>_<sensor>_<start>_<end>.stm
    <Network>/<Station>/<CSE>_<Network>_<Station>_static_variables.csv

- Line 1 of a ``.stm`` file is the fixed-width header of the classic archives
  (``SMOSMANIA  SMOSMANIA       Narbonne          43.15000     2.95670  112.00    0.05    0.05 ThetaProbe-ML2X``):
  CSE (10) · network (15) · station (15) · latitude ``%11.5f`` · longitude ``%12.5f`` ·
  elevation ``%8.2f`` · depth from/to ``%8.2f`` (metres) · sensor.
- Every other line is a record ``YYYY/MM/DD HH:MM value ismn_flag [provider_flag]`` with the value
  in ``%8.4f`` (m3 m-3); a record may lack the provider flag (as 125 records of a real file do).
- ``<start>``/``<end>`` in the file name are the *requested* period (default: the first and last
  record's dates). Sensor names may contain blanks in the header; in the file name blanks and
  ``_`` become ``-``. Network and station names must not contain ``_`` (it separates the parts
  of the file name).
- The static-variables CSV is ``;``-separated with the real header and a trailing ``;``:
  HWSD soil properties for 0–0.3 and 0.3–1 m, ESA CCI land cover (2000/2005/2010) and the
  Köppen–Geiger class — the rows the ``ismn`` package reads.
- Real files use CR, CRLF or LF line endings (sometimes mixed); ``newline`` selects one.

:func:`write_ismn_archive` packs stations like ISMN's download ZIP: network and station
directory entries, the data files, ``Readme.txt`` and ``ISMN_qualityflags_description.txt``
(Latin-1). ISMN's ``Metadata.xml`` (ISO 19139) is optional and not written. Entries carry fixed
times, so identical inputs give byte-identical archives.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from smda_twin.formats._common import atomic_target

__all__ = [
    "IsmnStation",
    "StaticVariables",
    "ismn_archive_filename",
    "ismn_data_filename",
    "write_ismn_archive",
    "write_ismn_station",
]

_CSV_HEADER = (
    "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
    "quantity_source_description;quantity_source_provider;quantity_source_version;"
    "quantity_source_resolution;quantity_source_timerange;quantity_source_url;"
)
_HWSD = (
    'HWSD;Harmonized World Soil Database v1.1  by IIASA;IIASA;v1.1;30";;'
    "http://webarchive.iiasa.ac.at/Research/LUC/External-World-soil-database/HTML/;"
)
_FLAGS_TEXT = """ISMN Quality Flags

For a detailed description of the methodology behind the quality flags we refer to:

Dorigo, W.A., Xaver, A., Vreugdenhil, M., Gruber, A., Hegyiová, A., Sanchis-Dufau, A.D., Zamojski, D., \
Cordes, C., Wagner, W., and Drusch, M. (2013). Global Automated Quality Control of In Situ Soil Moisture data \
from the International Soil Moisture Network. Vadose Zone Journal, 12, 3, doi:10.2136/vzj2012.0097

variable; flag category; flag; flag is set if following condition is met
soil moisture;C - reported value exceeds output format field size;C01;soil moisture < 0.0 m3/m3
soil moisture;C - reported value exceeds output format field size;C02;soil moisture > 0.6 m3/m3
soil moisture;C - reported value exceeds output format field size;C03;soil moisture > saturation point \
(derived from HWSD parameter values)
soil moisture;D - questionable/dubious - geophysical based;D01;in situ soil temperature(*) < 0°C
soil moisture;D - questionable/dubious - geophysical based;D02;in situ air temperature < 0°C
soil moisture;D - questionable/dubious - geophysical based;D03;GLDAS soil temperature(*) < 0°C
soil moisture;D - questionable/dubious - geophysical based;D04;soil moisture shows peaks without \
precipitation event (in situ) in the preceeding 24 hours
soil moisture;D - questionable/dubious - geophysical based;D05;soil moisture shows peaks without \
precipitation event (GLDAS) in the preceeding 24 hours
soil moisture;D - questionable/dubious - spectrum based;D06;a spike is detected in soil moisture spectrum
soil moisture;D - questionable/dubious - spectrum based;D07;a negative jump is detected in soil moisture spectrum
soil moisture;D - questionable/dubious - spectrum based;D08;a positive jump is detected in soil moisture spectrum
soil moisture;D - questionable/dubious - spectrum based;D09;low constant values (for a minimum time of 12 hours) \
occur in soil moisture spectrum
soil moisture;D - questionable/dubious - spectrum based;D10;saturated plateau (for a minimum time length of \
12 hours) occurs in soil moisture spectrum
soil moisture;M;parameter value missing
soil moisture;G;good
(*) at corresponding depth layer
"""
_README = """Variables stored in separate files (Header+values)

Folder structure

\tNetworkname
\t\tStationname

Dataset Filename

\tCSE_Network_Station_Variablename_depthfrom_depthto_sensor_startdate_enddate.ext

Header

\tCSE Identifier - Continental Scale Experiment (CSE) acronym, if not applicable use Networkname
\tNetwork\t- Network abbreviation
\tStation\t- Station name
\tLatitude - Decimal degrees. South is negative.
\tLongitude - Decimal degrees. West is negative.
\tElevation - Meters above sea level
\tDepth from - Depth in the ground in which the variable was observed (upper boundary)
\tDepth to - Depth in the ground in which the variable was observed (lower boundary)

Record

\tUTC Actual Date and Time
\tyyyy/mm/dd HH:MM
\tVariable Value
\tISMN Quality Flag
\tData Provider Quality Flag, if existing
"""
_NEWLINES = ("\n", "\r\n", "\r")


@dataclass(frozen=True)
class StaticVariables:
    """Site properties written to ``*_static_variables.csv`` (HWSD soil, CCI land cover, climate)."""

    saturation: float = 0.46  # m3 m-3
    clay_fraction: float = 23.0  # % weight
    sand_fraction: float = 36.0
    silt_fraction: float = 41.0
    organic_carbon: float = 1.27
    landcover_code: int = 130
    landcover: str = "Grassland"
    climate_code: str = "Cfa"
    climate: str = "Temperate - Without dry season - Hot Summer"

    def rows(self) -> list[str]:
        """The CSV rows after the header."""
        lines = []
        for top, bottom in ((0.0, 0.3), (0.3, 1.0)):
            for quantity, unit, value in (
                ("saturation", "m^3*m^-3", self.saturation),
                ("clay fraction", "% weight", self.clay_fraction),
                ("organic carbon", "% weight", self.organic_carbon),
                ("sand fraction", "% weight", self.sand_fraction),
                ("silt fraction", "% weight", self.silt_fraction),
            ):
                lines.append(f"{quantity};{unit};{top:.2f};{bottom:.2f};{value:.2f};;{_HWSD}")
        for year, years in (("2000", "1998-2002"), ("2005", "2003-2007"), ("2010", "2008-2012")):
            lines.append(
                f"land cover classification;;;;{self.landcover_code};{self.landcover};CCI_landcover_{year};"
                f"ESA CCI Land Cover;ESA;{year}-v1.6.1;300m;{years};http://www.esa-landcover-cci.org/;"
            )
        lines.append(
            f"climate classification;;;;{self.climate_code};{self.climate};koeppen_geiger_2007;"
            "Koeppen-Geiger Climate Classification;;Peel2007;0.1°;;"
            "http://www.hydrol-earth-syst-sci.net/11/1633/2007/;"
        )
        return lines


@dataclass(frozen=True, eq=False)
class IsmnStation:
    """One sensor's series at one station, with the station's header facts.

    ``times`` are UTC (``datetime64`` or anything numpy converts), increasing; ``values`` m3 m-3
    (finite); ``flags`` ISMN flags (``G``, ``D05``, ``C01,D10``, …); ``provider_flags`` the
    provider's flag per record — ``""`` leaves the column out of that record, as in some real
    files, but not of all records (the ``ismn`` package needs the fifth column somewhere);
    ``None`` writes ``M`` everywhere, as the SMOSMANIA and COSMOS samples have where the provider
    gives no flags. ``lat``/``lon`` degrees,
    ``elevation`` metres, depths metres below the surface.
    """

    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    sensor: str
    times: npt.ArrayLike
    values: npt.ArrayLike
    flags: Sequence[str]
    provider_flags: Sequence[str] | None = None
    cse: str | None = None
    period: tuple[date, date] | None = None
    static: StaticVariables = field(default_factory=StaticVariables)


def ismn_data_filename(station: IsmnStation) -> str:
    """The ``.stm`` file name ISMN gives ``station``'s series."""
    start, end = _period(station, _minutes(station.times))
    sensor = re.sub(r"[\s_]+", "-", station.sensor.strip())
    cse = station.cse or station.network
    return (
        f"{cse}_{station.network}_{station.station}_sm_{station.depth_from:.6f}_{station.depth_to:.6f}_"
        f"{sensor}_{start:%Y%m%d}_{end:%Y%m%d}.stm"
    )


def ismn_archive_filename(start: date, end: date, *, created: date, user_id: str = "twin") -> str:
    """``Data_separate_files_header_<start>_<end>_<user>_<token>_<created>.zip``, as ISMN names downloads.

    The token (random at ISMN) is derived from the other parts, so the name is reproducible.
    """
    token = hashlib.sha1(f"{start}{end}{user_id}{created}".encode()).hexdigest()[:5]
    return f"Data_separate_files_header_{start:%Y%m%d}_{end:%Y%m%d}_{user_id}_{token}_{created:%Y%m%d}.zip"


def _minutes(times: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    return np.asarray(times, dtype="datetime64[m]").ravel()


def _period(station: IsmnStation, minutes: npt.NDArray[np.datetime64]) -> tuple[date, date]:
    if station.period is not None:
        return station.period
    days = minutes.astype("datetime64[D]").astype(object)
    return days[0], days[-1]


def _validate(
    station: IsmnStation,
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64], list[str]]:
    minutes = _minutes(station.times)
    values = np.asarray(station.values, dtype=np.float64).ravel()
    flags = list(station.flags)
    provider = (
        list(station.provider_flags) if station.provider_flags is not None else ["M"] * len(flags)
    )
    problems = []
    for name, text in (
        ("network", station.network),
        ("station", station.station),
        ("cse", station.cse or "x"),
    ):
        if not text or "_" in text or re.search(r"\s", text):
            problems.append(f"{name} {text!r} must be non-empty without '_' or blanks")
    if not station.sensor.strip():
        problems.append("sensor is empty")
    n = minutes.size
    if n == 0:
        problems.append("no records")
    if not (values.size == len(flags) == len(provider) == n):
        problems.append(
            f"times ({n}), values ({values.size}), flags ({len(flags)}) and provider_flags ({len(provider)}) differ in length"
        )
    elif n:
        if np.any(np.diff(minutes.astype(np.int64)) <= 0):
            problems.append("times must be strictly increasing")
        if not np.all(np.isfinite(values)):
            problems.append(
                "values must be finite (ISMN files hold no missing values: drop the record)"
            )
        if any(not f or re.search(r"\s", f) for f in flags):
            problems.append("every ISMN flag must be a non-empty token without blanks")
        if any(re.search(r"\s", p) for p in provider):
            problems.append("provider flags must not contain blanks")
        if not any(provider):
            problems.append(
                "at least one record needs a provider flag (the ismn package reads 5 columns)"
            )
    if problems:
        raise ValueError(
            f"invalid ISMN station {station.network}/{station.station}: " + "; ".join(problems)
        )
    records = []
    stamps = np.datetime_as_string(minutes, unit="m")
    for stamp, value, flag, extra in zip(stamps, values, flags, provider, strict=True):
        day = f"{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]} {stamp[11:16]}"
        records.append(f"{day} {value:8.4f} {flag} {extra}".rstrip())
    return minutes, values, records


def _header(station: IsmnStation) -> str:
    cse = station.cse or station.network
    return (
        f"{cse:<10} {station.network:<15} {station.station:<15}{station.lat:11.5f}{station.lon:12.5f}"
        f"{station.elevation:8.2f}{station.depth_from:8.2f}{station.depth_to:8.2f} {station.sensor.strip()}"
    )


def _write_text(path: Path, lines: Iterable[str], newline: str, encoding: str = "ascii") -> None:
    if newline not in _NEWLINES:
        raise ValueError(f"newline must be one of {_NEWLINES!r}, got {newline!r}")
    with atomic_target(path) as tmp:
        tmp.write_bytes("".join(line + newline for line in lines).encode(encoding))


def _station_dir(directory: Path, station: IsmnStation) -> Path:
    return directory / station.network / station.station


def _write_one(directory: Path, station: IsmnStation, newline: str) -> Path:
    _, _, records = _validate(station)
    folder = _station_dir(directory, station)
    target = folder / ismn_data_filename(station)
    _write_text(target, [_header(station), *records], newline)
    cse = station.cse or station.network
    static = folder / f"{cse}_{station.network}_{station.station}_static_variables.csv"
    _write_text(static, [_CSV_HEADER, *station.static.rows()], newline, encoding="utf-8")
    return target


def write_ismn_station(
    directory: str | os.PathLike[str],
    *,
    network: str,
    station: str,
    lat: float,
    lon: float,
    elevation: float,
    depth_from: float,
    depth_to: float,
    sensor: str,
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    flags: Sequence[str],
    provider_flags: Sequence[str] | None = None,
    cse: str | None = None,
    period: tuple[date, date] | None = None,
    static: StaticVariables | None = None,
    newline: str = "\n",
) -> Path:
    """Write one sensor's header+values file (and the station's static-variables CSV).

    Files go to ``directory/<network>/<station>/``, each written atomically. Fields are those of
    :class:`IsmnStation`; ``newline`` is ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.

    Returns
    -------
    Path
        The ``.stm`` file.
    """
    item = IsmnStation(
        network=network,
        station=station,
        lat=lat,
        lon=lon,
        elevation=elevation,
        depth_from=depth_from,
        depth_to=depth_to,
        sensor=sensor,
        times=times,
        values=values,
        flags=flags,
        provider_flags=provider_flags,
        cse=cse,
        period=period,
        static=static or StaticVariables(),
    )
    return _write_one(Path(directory), item, newline)


def _zip_entry(
    name: str, stamp: tuple[int, int, int, int, int, int], directory: bool = False
) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=stamp)
    entry.external_attr = ((0o40755 if directory else 0o100644) << 16) | (0x10 if directory else 0)
    entry.compress_type = zipfile.ZIP_STORED if directory else zipfile.ZIP_DEFLATED
    return entry


def write_ismn_archive(
    zip_path: str | os.PathLike[str],
    stations: Iterable[IsmnStation],
    *,
    created: datetime | None = None,
    newline: str = "\n",
) -> Path:
    """Write an ISMN-style download ZIP holding ``stations`` (one entry per sensor series).

    ``created`` sets the entry times (default: the day after the last record). The archive has
    ``Readme.txt``, ``ISMN_qualityflags_description.txt`` and, per network and station, the
    directory entries, the ``.stm`` files and the static-variables CSV.
    """
    items = list(stations)
    if not items:
        raise ValueError("an ISMN archive needs at least one station")
    if created is None:
        last = max(_minutes(s.times)[-1] for s in items)
        created = datetime.fromisoformat(str(last.astype("datetime64[D]") + np.timedelta64(1, "D")))
    stamp = (created.year, created.month, created.day, created.hour, created.minute, created.second)
    Path(zip_path).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ismn-", dir=Path(zip_path).parent) as scratch:
        root = Path(scratch)
        for item in items:
            _write_one(root, item, newline)
        _write_text(root / "Readme.txt", _README.splitlines(), newline)
        _write_text(
            root / "ISMN_qualityflags_description.txt", _FLAGS_TEXT.splitlines(), newline, "latin-1"
        )
        with atomic_target(zip_path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for name in ("Readme.txt", "ISMN_qualityflags_description.txt"):
                archive.writestr(_zip_entry(name, stamp), (root / name).read_bytes())
            for network in sorted(p for p in root.iterdir() if p.is_dir()):
                archive.writestr(_zip_entry(f"{network.name}/", stamp, directory=True), b"")
                for station in sorted(p for p in network.iterdir() if p.is_dir()):
                    archive.writestr(
                        _zip_entry(f"{network.name}/{station.name}/", stamp, directory=True), b""
                    )
                    for file in sorted(station.iterdir()):
                        name = f"{network.name}/{station.name}/{file.name}"
                        archive.writestr(_zip_entry(name, stamp), file.read_bytes())
    return Path(zip_path)
