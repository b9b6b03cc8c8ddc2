"""Hourly near-surface weather of the synthetic world (ERA5-like), at any points.

The weather is a climatology plus smooth random anomalies. The anomalies are
unit-variance lattice fields (:mod:`smda_twin.noise`) made temporally correlated by short
weighted sums of daily white fields (:data:`ANOMALIES`). Slowly varying quantities form a
*state* at 00 UTC of every day; hourly values interpolate linearly between consecutive
states and add diurnal cycles that follow local solar time ``LST = UTC + lon/15``.

State at 00 UTC of day d (φ latitude, h elevation m, lsm land fraction, A aridity, P the
precipitation climatology, N_x the anomalies of :data:`ANOMALIES`):

- base temperature ``Tb = 302 − 40 sin²φ − 22·max(0, −sin φ)⁴ − 0.0065 h
  + (1 + 24|sin φ|^1.5)(1 − 0.35·max(0, −sin φ)²)(0.3 + 0.7 lsm)·sign(φ)·cos(2π(doy − 200)/365.25)
  + (1.5 + 6 sin²φ)(0.5 + 0.5 lsm)·N_temperature − 1.0·lsm·N_wetness`` (K);
- cloud fraction ``c = logistic(1.4(0.8 N_wetness + 0.6 N_cloud) + 0.6 ln(P/1.5))``;
- diurnal temperature range ``DTR = lsm(8 + 10A)(1 − 0.45c) + 0.8(1 − lsm)`` (K);
- dew-point depression at dawn ``dd = 0.8 + lsm(1 + 9A)(1 − 0.5c)`` (K);
- wind ``u = (U(φ) + 3.8 N_u)(1 − 0.35 lsm)``, ``v = 3.8 N_v (1 − 0.35 lsm)`` (m s-1), with
  trade easterlies and mid-latitude westerlies in ``U``;
- surface pressure ``sp = p_msl·exp(−h / (29.27 (Tb + 0.00325 h)))`` with
  ``p_msl = 101325 + 500 e^{−((|φ|−30)/10)²} − 800 e^{−((|φ|−60)/10)²} + (300 + 1200 sin²φ) N_pressure
  − 250 N_wetness`` (Pa).

Hourly, with S(LST) ∈ [−1, 1] the diurnal shape (minimum at 06, maximum at 15 LST):
``t2m = Tb + DTR/2·S``; ``d2m = t2m − dd − DTR/4·(S + 1)`` (so d2m < t2m);
``u10, v10 = (u, v)·(1 + 0.25 lsm S)``; ``sp`` as the state.
Accumulations over the hour ending at the valid time (J m-2): ``ssrd = TOA·(0.78 − 0.55c)``
where TOA is the top-of-atmosphere irradiance integrated over the hour (four sub-steps of
solar geometry: Cooper's declination, no equation of time); net radiation
``Rn = 0.75 ssrd − 180000 (1 − 0.6c)``, evaporative fraction ``EF = lsm(0.15 + 0.6(1 − A)) +
0.8(1 − lsm)``, ``slhf = −EF·max(Rn, 0)``, ``sshf = −(Rn − EF·max(Rn, 0))`` (ECMWF sign:
downward positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from smda_twin.geography import Geography, Statics, precip_climatology
from smda_twin.noise import Band, Lattice, Memo, interpolate, moving_sum

__all__ = [
    "ACCUMULATED",
    "ANOMALIES",
    "INSTANT",
    "Anomaly",
    "States",
    "Weather",
    "diurnal_shape",
    "local_solar_time",
]

FloatArray = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

INSTANT = ("t2m", "d2m", "u10", "v10", "sp")
"""Instantaneous hourly variables this module makes."""
ACCUMULATED = ("ssrd", "sshf", "slhf")
"""Hourly accumulations (J m-2 over the hour ending at the valid time) this module makes."""

_TWO_PI = 2.0 * np.pi
_YEAR = 365.25
_SOLAR = 1361.0  # W m-2
_SUBSTEPS = 4


@dataclass(frozen=True)
class Anomaly:
    """A unit-variance weather anomaly: a lattice field summed over the last few days.

    ``weights[j]`` multiplies the daily white field of ``j`` days ago (normalised to unit
    sum of squares, see :func:`smda_twin.noise.moving_sum`).
    """

    lattice: Lattice
    weights: tuple[float, ...]


ANOMALIES: dict[str, Anomaly] = {
    "temperature": Anomaly(Lattice("tano", 5.0), (1.0, 0.75, 0.56, 0.42, 0.32, 0.24)),
    "wetness": Anomaly(Lattice("wet", 2.5), (1.0, 0.6, 0.3)),
    "cloud": Anomaly(Lattice("cloud", 2.5), (1.0, 0.5)),
    "u": Anomaly(Lattice("u10", 5.0), (1.0, 0.7, 0.4)),
    "v": Anomaly(Lattice("v10", 5.0), (1.0, 0.7, 0.4)),
    "pressure": Anomaly(Lattice("msl", 7.5), (1.0, 0.7, 0.5, 0.35, 0.25)),
}


_UNIX_ORDINAL = date(1970, 1, 1).toordinal()


def day_of_year(days: npt.ArrayLike) -> FloatArray:
    """Day of year (1…366) of ordinal day numbers (``date.toordinal()``), same shape."""
    d = (np.asarray(days, dtype=np.int64) - _UNIX_ORDINAL).astype("datetime64[D]")
    start = d.astype("datetime64[Y]").astype("datetime64[D]")
    return np.asarray((d - start).astype(np.int64) + 1, dtype=np.float64)


def local_solar_time(utc_hours: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """Local solar time (h, 0–24) from UTC hours and longitude (degrees); broadcasts."""
    return np.asarray((np.asarray(utc_hours, dtype=np.float64) + np.asarray(lon) / 15.0) % 24.0)


def diurnal_shape(lst: npt.ArrayLike) -> FloatArray:
    """Diurnal temperature shape S(LST) ∈ [−1, 1]: −1 at 06, +1 at 15 LST, smooth.

    Rises as ``−cos(π(t − 6)/9)`` from 06 to 15 and falls as ``cos(π(t − 15)/15)`` to 06.
    """
    t = np.asarray(lst, dtype=np.float64) % 24.0
    rising = (t >= 6.0) & (t < 15.0)
    fall = np.where(t >= 15.0, t - 15.0, t + 9.0)
    return np.asarray(
        np.where(rising, -np.cos(np.pi * (t - 6.0) / 9.0), np.cos(np.pi * fall / 15.0))
    )


def _declination(doy: FloatArray) -> FloatArray:
    return np.asarray(np.deg2rad(23.44) * np.sin(_TWO_PI * (284.0 + doy) / 365.0))


_FIELDS = ("tbase", "dtr", "cloud", "dd", "u", "v", "sp")


class States:
    """Weather states at 00 UTC of days ``first … first + n_days − 1`` at outer-product points.

    Fields (``tbase``, ``dtr``, ``dd`` K; ``cloud`` 0–1; ``u``, ``v`` m s-1; ``sp`` Pa) are
    computed on first use, each float32 (n_days, lat, lon).
    """

    def __init__(self, weather: Weather, first: int, n_days: int, st: Statics) -> None:
        self.weather = weather
        self.first = first
        self.n_days = n_days
        self.st = st
        self._fields: dict[str, F32] = {}
        self._anomalies: dict[str, F32] = {}
        self._diffs: dict[tuple[str, int], F32] = {}
        self._lsm = st.lsm.astype(np.float32)[None]
        self._sin = np.sin(np.deg2rad(st.lat)).astype(np.float32)[None]  # (1, n, 1)
        self._doy = day_of_year(np.arange(first, first + n_days))[:, None, None]

    def anomaly(self, name: str) -> F32:
        if name not in self._anomalies:
            st = self.st
            self._anomalies[name] = self.weather.anomaly(
                name, self.first, self.n_days, st.lat[:, 0], st.lon[0, :]
            )
        return self._anomalies[name]

    def __getitem__(self, name: str) -> F32:
        if name not in self._fields:
            self._fields[name] = np.asarray(getattr(self, "_make_" + name)(), dtype=np.float32)
        return self._fields[name]

    def _make_tbase(self) -> npt.NDArray[np.floating]:
        st, sin, lsm = self.st, self._sin, self._lsm
        seasonal = (1.0 + 24.0 * np.abs(sin) ** 1.5) * (1.0 - 0.35 * np.maximum(0.0, -sin) ** 2)
        seasonal = seasonal * np.sign(sin) * (0.3 + 0.7 * lsm)
        tclim = (302.0 - 40.0 * sin**2 - 22.0 * np.maximum(0.0, -sin) ** 4) - (
            0.0065 * st.elevation
        ).astype(np.float32)
        cycle = np.cos(_TWO_PI * (self._doy - 200.0) / _YEAR).astype(np.float32)
        out = tclim + seasonal * cycle
        out += (1.5 + 6.0 * sin**2) * (0.5 + 0.5 * lsm) * self.anomaly("temperature")
        out -= lsm * self.anomaly("wetness")
        return out

    def _make_cloud(self) -> npt.NDArray[np.floating]:
        st = self.st
        pclim = precip_climatology(st.lat, st.lsm, st.precip_multiplier, self._doy).astype(
            np.float32
        )
        latent = 1.4 * (0.8 * self.anomaly("wetness") + 0.6 * self.anomaly("cloud"))
        latent += 0.6 * np.log(np.maximum(pclim, np.float32(0.05)) / np.float32(1.5))
        return 1.0 / (1.0 + np.exp(-latent))

    def _make_dtr(self) -> npt.NDArray[np.floating]:
        lsm = self._lsm
        arid = self.st.aridity.astype(np.float32)[None]
        return np.asarray(
            lsm * (8.0 + 10.0 * arid) * (1.0 - 0.45 * self["cloud"]) + 0.8 * (1.0 - lsm)
        )

    def _make_dd(self) -> npt.NDArray[np.floating]:
        lsm = self._lsm
        arid = self.st.aridity.astype(np.float32)[None]
        return np.asarray(0.8 + lsm * (1.0 + 9.0 * arid) * (1.0 - 0.5 * self["cloud"]))

    def _make_u(self) -> npt.NDArray[np.floating]:
        lat = self.st.lat.astype(np.float32)[None]
        alat = np.abs(lat)
        u_clim = -6.0 * np.exp(-((lat / 16.0) ** 2)) + 7.0 * np.exp(-(((alat - 47.0) / 12.0) ** 2))
        return np.asarray((u_clim + 3.8 * self.anomaly("u")) * (1.0 - 0.35 * self._lsm))

    def _make_v(self) -> npt.NDArray[np.floating]:
        return 3.8 * self.anomaly("v") * (1.0 - 0.35 * self._lsm)

    def _make_sp(self) -> npt.NDArray[np.floating]:
        sin = self._sin
        alat = np.abs(self.st.lat.astype(np.float32))[None]
        pmsl = (
            101325.0
            + 500.0 * np.exp(-(((alat - 30.0) / 10.0) ** 2))
            - 800.0 * np.exp(-(((alat - 60.0) / 10.0) ** 2))
            + (300.0 + 1200.0 * sin**2) * self.anomaly("pressure")
            - 250.0 * self.anomaly("wetness")
        )
        h = self.st.elevation.astype(np.float32)[None]
        return np.asarray(pmsl * np.exp(-h / (29.27 * (self["tbase"] + 0.00325 * h))))

    def at(
        self,
        name: str,
        index: int | npt.NDArray[np.intp],
        w: npt.NDArray[np.float32],
        out: F32 | None = None,
    ) -> F32:
        """Linear interpolation between the states ``index`` and ``index + 1`` with weight
        ``w`` (broadcasting in front of (lat, lon)), optionally written into ``out``."""
        f = self[name]
        a = f[index]
        if isinstance(index, int):
            if (name, index) not in self._diffs:
                self._diffs[(name, index)] = f[index + 1] - a
            d = self._diffs[(name, index)]
        else:
            d = f[np.asarray(index) + 1] - a
        res = np.multiply(w, d, out=out)
        res += a
        return res


class Weather:
    """The synthetic weather of a seeded world (see the module docstring)."""

    def __init__(self, seed: int, geography: Geography) -> None:
        self.seed = seed
        self.geography = geography
        self._bands: Memo[tuple[Band, Band]] = Memo(64)
        self._moments: Memo[dict[int, tuple[F32, F32]]] = Memo(4)

    # -- anomalies ------------------------------------------------------------------------------
    def anomaly(self, name: str, first: int, n_days: int, lat: FloatArray, lon: FloatArray) -> F32:
        """Anomaly ``name`` (unit variance) for days ``first … first + n_days − 1`` at
        outer-product points: (n_days, lat, lon) float32."""
        spec = ANOMALIES[name]
        lattice = spec.lattice
        la = np.ascontiguousarray(lat, dtype=np.float64)
        lo = np.ascontiguousarray(lon, dtype=np.float64)
        bands = self._bands.get(
            (lattice.spacing, la.tobytes(), lo.tobytes()), lambda: lattice.weights(la, lo)
        )
        m = len(spec.weights)
        days = np.arange(first - m + 1, first + n_days)
        nodes = moving_sum(lattice.nodes(self.seed, days, bands), np.asarray(spec.weights))
        return interpolate(nodes, bands)

    def states(self, first: int, n_days: int, lat: npt.ArrayLike, lon: npt.ArrayLike) -> States:
        """Lazily computed 00 UTC states of days ``first … first + n_days − 1``."""
        return States(self, first, n_days, self.geography.statics(lat, lon))

    # -- hourly fields --------------------------------------------------------------------------
    def hourly(
        self,
        first: int,
        n_days: int,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        variables: Sequence[str],
    ) -> dict[str, F32]:
        """Hourly fields for days ``first … first + n_days − 1`` at valid times 00…23 UTC.

        Parameters
        ----------
        first:
            Ordinal of the first day (``date.toordinal()``).
        lat, lon:
            1-D point coordinates (degrees); fields are on their outer product.
        variables:
            Names from :data:`INSTANT` and :data:`ACCUMULATED`.

        Returns
        -------
        ``{name: float32 (n_days, 24, lat, lon)}``; t2m, d2m K; u10, v10 m s-1; sp Pa;
        ssrd, sshf, slhf J m-2 accumulated over the hour ending at the valid time.
        """
        unknown = [v for v in variables if v not in INSTANT + ACCUMULATED]
        if unknown:
            raise ValueError(
                f"unknown weather variable(s) {unknown}; valid: {INSTANT + ACCUMULATED}"
            )
        s = self.states(first - 1, n_days + 2, lat, lon)
        n, m = s.st.lsm.shape
        out = {v: np.empty((n_days, 24, n, m), dtype=np.float32) for v in variables}
        for i in range(n_days):
            self._instant_day(i + 1, s, variables, out, i)
            if any(v in ACCUMULATED for v in variables):
                self._accum_day(i + 1, s, variables, out, i)
        return out

    @staticmethod
    def _hour_chunks(n_points: int) -> list[range]:
        """Hours 0…23 in chunks of about 256k values (cache-friendly temporaries)."""
        size = max(1, min(24, 262_144 // max(1, n_points)))
        return [range(h, min(24, h + size)) for h in range(0, 24, size)]

    def _instant_day(
        self, j: int, s: States, variables: Sequence[str], out: dict[str, F32], i: int
    ) -> None:
        """Instantaneous fields at 00…23 UTC of the day whose state is ``s[j]``."""
        lon = s.st.lon[0]
        for chunk in self._hour_chunks(s.st.lsm.size):
            hours = np.arange(chunk.start, chunk.stop, dtype=np.float64)
            sl = slice(chunk.start, chunk.stop)
            w = (hours / 24.0).astype(np.float32)[:, None, None]
            shape = diurnal_shape(local_solar_time(hours[:, None], lon[None, :])).astype(
                np.float32
            )[:, None, :]
            if "t2m" in variables or "d2m" in variables:
                half = s.at("dtr", j, w)
                half *= 0.5
                t2m = s.at("tbase", j, w, out=out["t2m"][i, sl] if "t2m" in variables else None)
                t2m += half * shape
                if "d2m" in variables:
                    d2m = out["d2m"][i, sl]
                    np.subtract(t2m, s.at("dd", j, w), out=d2m)
                    half *= 0.5 * (shape + 1.0)
                    d2m -= half
            if "u10" in variables or "v10" in variables:
                gust = 1.0 + 0.25 * s._lsm * shape
                for name, key in (("u10", "u"), ("v10", "v")):
                    if name in variables:
                        s.at(key, j, w, out=out[name][i, sl])
                        out[name][i, sl] *= gust
            if "sp" in variables:
                s.at("sp", j, w, out=out["sp"][i, sl])

    def _accum_day(
        self, j: int, s: States, variables: Sequence[str], out: dict[str, F32], i: int
    ) -> None:
        """Accumulations over the hours ending at 00…23 UTC of the day of state ``s[j]``:
        the hour ending 00 UTC is bin 24 of the previous day."""
        day = s.first + j
        st = s.st
        ef = (st.lsm * (0.15 + 0.6 * (1.0 - st.aridity)) + 0.8 * (1.0 - st.lsm)).astype(np.float32)
        for chunk in self._hour_chunks(st.lsm.size):
            hours = np.arange(chunk.start, chunk.stop)
            sl = slice(chunk.start, chunk.stop)
            bins = np.where(hours == 0, 24, hours)
            days = np.where(hours == 0, day - 1, day)
            index = np.where(hours == 0, j - 1, j).astype(np.intp)
            ssrd, cloud = self.solar_bins(days, bins, index, s)
            if "ssrd" in variables:
                out["ssrd"][i, sl] = ssrd
            if "sshf" in variables or "slhf" in variables:
                rn = 0.75 * ssrd - 180000.0 * (1.0 - 0.6 * cloud)
                le = ef * np.maximum(rn, np.float32(0.0))
                if "slhf" in variables:
                    out["slhf"][i, sl] = -le
                if "sshf" in variables:
                    out["sshf"][i, sl] = le - rn

    def solar_bins(
        self,
        days: npt.NDArray[np.int64],
        bins: npt.NDArray[np.int64],
        index: npt.NDArray[np.intp],
        s: States,
    ) -> tuple[F32, F32]:
        """Surface solar radiation (J m-2) over hours ``bins`` (1…24: [k−1, k] UTC) of
        ``days``, whose 00 UTC states are ``s[index]``; and the hours' mean cloud fraction.
        Both (len(bins), lat, lon)."""
        w = ((bins - 0.5) / 24.0).astype(np.float32)[:, None, None]
        cloud = s.at("cloud", index, w)
        toa = self.toa_bins(days, bins, s.st.lat, s.st.lon)
        toa *= 0.78 - 0.55 * cloud
        return toa, cloud

    @staticmethod
    def toa_bins(
        days: npt.NDArray[np.int64], bins: npt.NDArray[np.int64], lat: FloatArray, lon: FloatArray
    ) -> F32:
        """Top-of-atmosphere irradiation (J m-2) over hours [k−1, k] UTC (k = ``bins``) of
        ``days`` at outer-product points (``lat`` (n, 1), ``lon`` (1, m)): (len(bins), n, m)."""
        doy = day_of_year(days)
        dec = _declination(doy)[:, None, None]
        phi = np.deg2rad(lat)[None]
        a = (np.sin(phi) * np.sin(dec)).astype(np.float32)
        b = (np.cos(phi) * np.cos(dec)).astype(np.float32)
        total = np.zeros((len(bins), lat.shape[0], lon.shape[-1]), dtype=np.float32)
        for j in range(_SUBSTEPS):
            t = np.asarray(bins, dtype=np.float64)[:, None, None] - 1.0 + (j + 0.5) / _SUBSTEPS
            cos_h = np.cos(np.deg2rad(15.0 * (local_solar_time(t, lon[None]) - 12.0))).astype(
                np.float32
            )
            total += np.maximum(a + b * cos_h, np.float32(0.0))
        s0 = _SOLAR * (1.0 + 0.033 * np.cos(_TWO_PI * doy / 365.0)) * 3600.0 / _SUBSTEPS
        total *= s0.astype(np.float32)[:, None, None]
        return total

    # -- daily aggregates -----------------------------------------------------------------------
    def _toa_moments(self, doys: FloatArray, lat: FloatArray, lon: FloatArray) -> tuple[F32, F32]:
        """Daily moments of the hourly TOA irradiation bins k = 1…24 of days of year ``doys``:
        ``S0 = Σ_k TOA_k`` and ``S1 = Σ_k TOA_k (k − 0.5)/24`` (J m-2), each (len(doys), n, m).
        They depend on the day of year only, so they are memoised per point set."""
        table = self._moments.get((lat.tobytes(), lon.tobytes()), dict)
        missing = sorted({int(d) for d in doys} - set(table))
        bins = np.arange(1, 25)
        u = ((bins - 0.5) / 24.0).astype(np.float32)[:, None, None]
        for doy in missing:
            # any year: only the day of year matters (2001 is not a leap year; doy 366 → 2004)
            ordinal = date(2004 if doy == 366 else 2001, 1, 1).toordinal() + doy - 1
            toa = self.toa_bins(np.full(24, ordinal), bins, lat, lon)
            table[doy] = (toa.sum(axis=0), (toa * u).sum(axis=0))
        s0 = np.stack([table[int(d)][0] for d in doys])
        s1 = np.stack([table[int(d)][1] for d in doys])
        return s0, s1

    def daily(
        self, first: int, n_days: int, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> dict[str, F32]:
        """Daily aggregates over the UTC day for the water balance, each (n_days, lat, lon):
        ``t2m_mean`` (K, mean of the 24 hourly values 00…23 UTC) and ``ssrd`` (J m-2, the
        sum of the hours ending 01…24 UTC, as :meth:`hourly` makes them)."""
        s = self.states(first, n_days + 1, lat, lon)
        hours = np.arange(24.0)
        w = hours / 24.0
        shape = diurnal_shape(local_solar_time(hours[:, None], s.st.lon[0][None, :]))  # (24, m)
        mean_w = np.float32(w.mean())
        mean_s = shape.mean(axis=0).astype(np.float32)[None, None, :]
        mean_ws = (w[:, None] * shape).mean(axis=0).astype(np.float32)[None, None, :]
        tb, dtr = s["tbase"], s["dtr"]
        t_mean = tb[:-1] + mean_w * (tb[1:] - tb[:-1])
        t_mean += 0.5 * (dtr[:-1] * mean_s + (dtr[1:] - dtr[:-1]) * mean_ws)
        s0, s1 = self._toa_moments(
            day_of_year(np.arange(first, first + n_days)), s.st.lat, s.st.lon
        )
        cloud = s["cloud"]
        ssrd = 0.78 * s0 - 0.55 * (cloud[:-1] * s0 + (cloud[1:] - cloud[:-1]) * s1)
        return {
            "t2m_mean": np.asarray(t_mean, dtype=np.float32),
            "ssrd": np.asarray(ssrd, dtype=np.float32),
        }
