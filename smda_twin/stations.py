"""ISMN-like in-situ stations: a point's own soil moisture plus a sensor's error, hourly.

Stations are placed at seeded random land points of the world's region (alternating between
two networks). Each is a column of its own in the truth's water balance
(:mod:`smda_twin.waterbalance`: its own soil and point rain), so it measures a point, not the
cell mean. Its hourly series (UTC) add the sensor's errors
(:class:`smda_twin.products.ProductErrors` with ``noise_step_hours = 1``)::

    soil_moisture(s, t) = offset + scale·θ_s(day(t)) + static_sd·b_s
                          + noise_sd·E_s(t) + diurnal_amplitude·H(t, lon_s)

with ``θ_s`` the station column's 0–5 cm water content, ``b_s`` a per-station normal
(calibration), ``E_s`` an hourly AR(1) of lag-1 correlation ``noise_phi`` started (stationary)
at the world's epoch, and H the zero-daily-mean diurnal term of
:func:`smda_twin.products.diurnal_term`.

Flags follow the ISMN definitions: ``C03`` where the value exceeds the station soil's porosity
(saturation), else ``D02`` where the hourly 2 m air temperature is below 0 °C, else ``G``.
``soil_moisture_orig_flag`` (the provider's flag) is ``M``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.signal import lfilter

from smda.geo.grid import Grid
from smda_twin.geography import Geography
from smda_twin.noise import BlockChain, hash_normals, hash_uniforms, key
from smda_twin.products import ProductErrors, diurnal_term

__all__ = ["NETWORKS", "Station", "StationNetwork"]

FloatArray = npt.NDArray[np.float64]

NETWORKS = (("TWIN-SCAN", "Hydraprobe-Analog-(2.5-Volt)"), ("TWIN-CRN", "ThetaProbe-ML2X"))
"""The twin's networks and the sensor each uses."""


@dataclass(frozen=True)
class Station:
    """An in-situ station measuring 0.05 m soil moisture (positions in degrees, elevation m)."""

    id: str
    network: str
    name: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    sensor: str
    index: int


class StationNetwork:
    """The stations of a world and their hourly series (see the module docstring)."""

    def __init__(
        self,
        seed: int,
        errors: ProductErrors,
        grid: Grid,
        geography: Geography,
        land: npt.NDArray[np.bool_],
        *,
        count: int,
        epoch: int,
    ) -> None:
        self.seed = seed
        self.errors = errors
        self.grid = grid
        self.geography = geography
        self.epoch = epoch
        self.stations = self._place(land, count)
        n = len(self.stations)
        k = key(seed, "ismn")
        self.bias = hash_normals(k, np.arange(n), 0)
        self._chain: BlockChain[FloatArray] = BlockChain(epoch, 366, self._init, self._step)

    def _place(self, land: npt.NDArray[np.bool_], count: int) -> list[Station]:
        g = self.grid
        bounds = g.bounds
        k = key(self.seed, "ismn_sites")
        sites: list[tuple[float, float]] = []
        width = g.ncols * g.res
        for trial in range(100 * count + 100):
            if len(sites) == count:
                break
            u, v = hash_uniforms(k, trial, np.arange(2))
            lat = round(bounds.south + 0.05 * g.nrows * g.res + 0.9 * g.nrows * g.res * float(u), 4)
            lon = bounds.west + 0.05 * width + 0.9 * width * float(v)
            lon = round((lon + 180.0) % 360.0 - 180.0, 4)
            row, col, ok = g.locate(np.array([lat]), np.array([lon]))
            if ok[0] and land[row[0], col[0]]:
                sites.append((lat, lon))
        if not sites:
            return []
        lats, lons = np.array(sites).T
        elevation = np.diag(self.geography.statics(lats, lons).elevation)
        stations = []
        for i, (lat, lon) in enumerate(sites):
            network, sensor = NETWORKS[i % len(NETWORKS)]
            name = f"Station{i + 1:02d}"
            stations.append(
                Station(
                    id=f"{network}_{name}",
                    network=network,
                    name=name,
                    lat=lat,
                    lon=lon,
                    elevation=round(float(elevation[i]), 1),
                    depth_from=0.05,
                    depth_to=0.05,
                    sensor=sensor,
                    index=i,
                )
            )
        return stations

    # -- hourly AR(1) noise ---------------------------------------------------------------------
    def _white(self, first: int, n_days: int) -> FloatArray:
        k = key(self.seed, "ismn_noise")
        days = np.arange(first, first + n_days)
        z = hash_normals(
            k,
            days[:, None, None],
            np.arange(24)[None, :, None],
            np.arange(len(self.stations))[None, None, :],
        )
        return z.reshape(n_days * 24, len(self.stations))

    def _init(self) -> FloatArray:
        return np.asarray(self._white(self.epoch - 1, 1)[-1])

    def _step(self, first: int, n_days: int, state: FloatArray) -> tuple[FloatArray, FloatArray]:
        phi = self.errors.noise_phi
        z = self._white(first, n_days) * np.sqrt(1.0 - phi**2)
        values, _ = lfilter([1.0], [1.0, -phi], z, axis=0, zi=(phi * state)[None, :])
        values = np.asarray(values)
        return values.reshape(n_days, 24, -1), values[-1]

    # -- series ---------------------------------------------------------------------------------
    def hourly(
        self,
        station: Station,
        start: date,
        end: date,
        column: FloatArray,
        t2m: FloatArray,
        porosity: float,
    ) -> pd.DataFrame:
        """Hourly series of ``station`` for days ``start … end`` (UTC).

        ``column`` is the station column's 0–5 cm water content for those days (n_days,),
        ``t2m`` the hourly 2 m temperature at the station (n_days, 24) in K, ``porosity`` the
        station soil's (m3 m-3). Returns a DataFrame indexed
        by hourly UTC times (tz-naive) with ``soil_moisture`` (m3 m-3), ``soil_moisture_flag``
        and ``soil_moisture_orig_flag``.
        """
        e = self.errors
        first, last = start.toordinal(), end.toordinal()
        noise = self._chain.get(first, last)[:, :, station.index]
        wave = diurnal_term(np.arange(24.0), station.lon)[None, :]
        value = (
            e.offset
            + e.scale * column[:, None]
            + e.static_sd * self.bias[station.index]
            + e.noise_sd * noise
            + e.diurnal_amplitude * wave
        ).ravel()
        saturated = value > porosity
        freezing = t2m.ravel() < 273.15
        flag = np.where(saturated, "C03", np.where(freezing, "D02", "G"))
        index = pd.date_range(
            pd.Timestamp(start), periods=(last - first + 1) * 24, freq="h", name="time"
        )
        return pd.DataFrame(
            {"soil_moisture": value, "soil_moisture_flag": flag, "soil_moisture_orig_flag": "M"},
            index=index,
        )
