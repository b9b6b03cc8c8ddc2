"""Drift scenarios: from a given date the twin serves degraded products.

Operators test their monitoring and alerts end to end by making a provider go wrong in a known
way from a known day. A :class:`Scenario` is an ordered list of drifts; a
:class:`ScenarioWorld` wraps a :class:`~smda_twin.world.World` and post-processes what the
replicas *serve* for the days on or after each drift's ``start`` (and up to its optional
``end``). The world itself stays a pure function of its spec (its truth, and scoring such as
:meth:`World.true_skill`, are untouched); the scenario is the running service's state
(``smda twin serve --scenario FILE``, ``POST /_twin/scenario``).

=================  ==========================================  ===================================
kind               fields (besides ``start``, ``end``)         what is served from ``start``
=================  ==========================================  ===================================
``smap_bias``      ``bias`` (m3 m-3) and/or ``drift_per_day``  SMAP L3/L3_E retrievals (not the
                   (m3 m-3 day-1)                               −9999 fill) + bias + drift·(day −
                                                                start), clipped to the product's
                                                                [valid_min, valid_max]
``mswep_bias``     ``factor`` (≥ 0)                            MSWEP (final and NRT) × factor
``mswep_missing``  ``region`` [west, south, east, north]        MSWEP cells whose centres lie in
                                                                the region are missing (the files'
                                                                fill value, −9999)
``era5_shift``     ``variable``, ``offset`` (the variable's     the variable's hourly values +
                   units), ``dataset`` (``era5`` or             offset (ERA5-Land accumulations
                   ``era5land``, default ``era5``)              are running totals: each + offset)
``era5_missing``   ``variable``, ``dataset``                    the variable is left out of the
                                                                CDS results
=================  ==========================================  ===================================

JSON (a file or the body of ``POST /_twin/scenario``): a list of drifts, or ``{"drifts": [...]}``::

    [{"kind": "smap_bias", "start": "2024-07-01", "bias": 0.05},
     {"kind": "mswep_missing", "start": "2024-07-10", "region": [-100, 35, -99.5, 35.5]},
     {"kind": "era5_missing", "start": "2024-07-05", "variable": "ssrd"}]

ERA5 drifts name a time-varying short name (:data:`ERA5_DRIFT_VARIABLES`); an
``era5_missing`` drift removes the variable from a whole result (:meth:`ScenarioWorld.era5_series`
of several days, a CDS request) as soon as one of its days is affected.

Replicas that cache generated files key them by :meth:`ScenarioWorld.variant` (empty when no
drift touches a product on a day, so unaffected files stay shared) and generate each file from a
:meth:`ScenarioWorld.snapshot`, so a scenario change never serves a stale file (:func:`pinned`,
:func:`variant`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.geo.grid import BBox, Grid
from smda_twin.precipitation import MSWEP_GRID
from smda_twin.smap import FLOAT_FILL, SmapDay
from smda_twin.world import ERA5LAND_VARIABLES, World

__all__ = [
    "DRIFT_KINDS",
    "ERA5_DATASETS",
    "ERA5_DRIFT_VARIABLES",
    "Drift",
    "Era5Missing",
    "Era5Shift",
    "MswepBias",
    "MswepMissing",
    "Scenario",
    "ScenarioError",
    "ScenarioWorld",
    "SmapBias",
    "pinned",
    "variant",
]

F32 = npt.NDArray[np.float32]

ERA5_DATASETS = ("era5", "era5land")
"""CDS datasets an ERA5 drift can apply to (the clock's product names)."""
ERA5_DRIFT_VARIABLES: tuple[str, ...] = ERA5LAND_VARIABLES
"""Short names an ERA5 drift may name: the time-varying ones (not the invariants)."""


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``problems`` lists every problem found.

    Raised by :meth:`Scenario.from_json` and :meth:`Scenario.read`; the message names each bad
    drift and field, and the valid kinds or variables.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid scenario: " + "; ".join(self.problems))


# -- drifts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Drift:
    """Common part of the drifts: active from ``start`` to ``end`` (inclusive; None: for ever)."""

    kind: ClassVar[str]
    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")

    @property
    def product(self) -> str:
        """The served product this drift changes (``smap``, ``mswep``, ``era5``, ``era5land``)."""
        return self.kind.split("_")[0]

    def active(self, day: date) -> bool:
        """Whether the drift applies to ``day``."""
        return self.start <= day and (self.end is None or day <= self.end)

    def to_dict(self) -> dict[str, Any]:
        """The drift as JSON (the format :meth:`Scenario.from_json` reads)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "end" and value is None:
                continue
            if isinstance(value, date):
                value = value.isoformat()
            elif isinstance(value, BBox):
                value = [value.west, value.south, value.east, value.north]
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class SmapBias(Drift):
    """SMAP retrievals + ``bias`` + ``drift_per_day``·(day − start), m3 m-3."""

    kind: ClassVar[str] = "smap_bias"
    bias: float = 0.0
    drift_per_day: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bias == 0.0 and self.drift_per_day == 0.0:
            raise ValueError("give a non-zero 'bias' (m3 m-3) and/or 'drift_per_day'")

    def offset(self, day: date) -> float:
        """What is added to the retrievals of ``day`` (m3 m-3; 0 when not active)."""
        if not self.active(day):
            return 0.0
        return self.bias + self.drift_per_day * (day - self.start).days


@dataclass(frozen=True, kw_only=True)
class MswepBias(Drift):
    """MSWEP precipitation × ``factor`` (0.6: 40 % too dry)."""

    kind: ClassVar[str] = "mswep_bias"
    factor: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (np.isfinite(self.factor) and self.factor >= 0.0):
            raise ValueError(f"factor must be a finite number ≥ 0, got {self.factor}")


@dataclass(frozen=True, kw_only=True)
class MswepMissing(Drift):
    """MSWEP cells whose centres lie in ``region`` are missing (fill value in the files)."""

    kind: ClassVar[str] = "mswep_missing"
    region: BBox


@dataclass(frozen=True, kw_only=True)
class Era5Shift(Drift):
    """``variable`` of ``dataset`` + ``offset`` (in the variable's units: K, Pa, J m-2, m …)."""

    kind: ClassVar[str] = "era5_shift"
    variable: str
    offset: float
    dataset: str = "era5"

    @property
    def product(self) -> str:
        return self.dataset


@dataclass(frozen=True, kw_only=True)
class Era5Missing(Drift):
    """``variable`` is left out of the ``dataset`` results."""

    kind: ClassVar[str] = "era5_missing"
    variable: str
    dataset: str = "era5"

    @property
    def product(self) -> str:
        return self.dataset


KINDS: dict[str, type[Drift]] = {
    cls.kind: cls for cls in (SmapBias, MswepBias, MswepMissing, Era5Shift, Era5Missing)
}
DRIFT_KINDS: tuple[str, ...] = tuple(KINDS)
"""The drift kinds (module docstring)."""


# -- parsing --------------------------------------------------------------------------------------


def _date(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    if not np.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _region(value: Any) -> BBox:
    if not (isinstance(value, (list, tuple)) and len(value) == 4):
        raise ValueError(f"{value!r} is not [west, south, east, north] (degrees)")
    return BBox(*(_number(v) for v in value))


def _variable(value: Any) -> str:
    if value not in ERA5_DRIFT_VARIABLES:
        raise ValueError(
            f"unknown variable {value!r}; valid short names: {', '.join(ERA5_DRIFT_VARIABLES)}"
        )
    return str(value)


def _dataset(value: Any) -> str:
    if value not in ERA5_DATASETS:
        raise ValueError(f"unknown dataset {value!r}; choose {' or '.join(ERA5_DATASETS)}")
    return str(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "start": _date,
    "end": _date,
    "bias": _number,
    "drift_per_day": _number,
    "factor": _number,
    "offset": _number,
    "region": _region,
    "variable": _variable,
    "dataset": _dataset,
}


def _drift(item: Any, where: str) -> tuple[Drift | None, list[str]]:
    """One drift from its JSON object, or the problems found (all of them)."""
    if not isinstance(item, dict):
        return None, [f"{where}: a drift is a JSON object with 'kind' and 'start', got {item!r}"]
    kind = item.get("kind")
    cls = KINDS.get(str(kind)) if kind is not None else None
    if cls is None:
        return None, [f"{where}: unknown kind {kind!r}; valid kinds: {', '.join(DRIFT_KINDS)}"]
    where = f"{where} ({kind})"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems = []
    unknown = sorted(set(item) - set(fields) - {"kind"})
    if unknown:
        problems.append(f"{where}: unknown field(s) {unknown}; {kind} has {sorted(fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in item:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required:
                problems.append(f"{where}: '{name}' is required")
            continue
        try:
            values[name] = _CONVERTERS[name](item[name])
        except ValueError as exc:
            problems.append(f"{where}: '{name}': {exc}")
    if problems:
        return None, problems
    try:
        return cls(**values), []
    except ValueError as exc:
        return None, [f"{where}: {exc}"]


@dataclass(frozen=True)
class Scenario:
    """An ordered tuple of drifts (empty: the world as it is)."""

    drifts: tuple[Drift, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> Scenario:
        """Parse a scenario: a list of drift objects, ``{"drifts": [...]}``, or null/[] (none).

        Raises
        ------
        ScenarioError
            Listing every bad drift and field (unknown kind, bad date, unknown variable …).
        """
        if isinstance(data, dict) and set(data) == {"drifts"}:
            data = data["drifts"]
        if data is None:
            return cls()
        if not isinstance(data, list):
            raise ScenarioError(
                [f"a scenario is a JSON list of drifts (or {{'drifts': [...]}}), got {data!r}"]
            )
        drifts, problems = [], []
        for i, item in enumerate(data, start=1):
            drift, found = _drift(item, f"drift {i}")
            problems += found
            if drift is not None:
                drifts.append(drift)
        if problems:
            raise ScenarioError(problems)
        return cls(tuple(drifts))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Scenario:
        """Read a scenario JSON file (:meth:`from_json`); ScenarioError if it cannot be used."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ScenarioError(
                [f"cannot read the scenario file {os.fspath(path)}: {exc}"]
            ) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError([f"{os.fspath(path)} is not valid JSON: {exc}"]) from exc
        return cls.from_json(data)

    def to_json(self) -> list[dict[str, Any]]:
        """The drifts as JSON objects, in order."""
        return [d.to_dict() for d in self.drifts]

    def active(self, product: str, day: date) -> list[Drift]:
        """The drifts that change ``product`` on ``day``, in order."""
        return [d for d in self.drifts if d.product == product and d.active(day)]

    def smap_offset(self, day: date) -> float:
        """Sum of the SMAP biases on ``day`` (m3 m-3)."""
        return sum(d.offset(day) for d in self.drifts if isinstance(d, SmapBias))


# -- the world as served under a scenario ---------------------------------------------------------


def _days(first: date, n_days: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n_days)]


def _inside(region: BBox, grid: Grid) -> npt.NDArray[np.bool_]:
    """(lat, lon) mask of the cells of ``grid`` whose centres lie in ``region``."""
    lat = (grid.lats >= region.south) & (grid.lats <= region.north)
    lon = (grid.lons - region.west) % 360.0 <= region.width
    return np.asarray(lat[:, None] & lon[None, :])


class ScenarioWorld:
    """A :class:`World` whose served products follow a :class:`Scenario`.

    Every attribute is the world's (``spec``, ``grid``, ``truth`` …) except the served
    products, which are post-processed for the days a drift is active: ERA5
    (:meth:`era5_series`, :meth:`era5_hourly`, :meth:`era5land_hourly`), MSWEP
    (:meth:`mswep_series`, :meth:`mswep_daily`, :meth:`mswep_nrt`) and SMAP
    (:meth:`smap_l3e`, :meth:`smap_l3`, :meth:`product_daily`). Arrays are never changed in
    place (the world's caches stay intact). Each call reads the scenario once, so a concurrent
    :meth:`set_scenario` never mixes two scenarios in one answer.

    Parameters
    ----------
    world:
        The world (a pure function of its spec).
    scenario:
        The drifts to apply (default: none).
    """

    def __init__(self, world: World, scenario: Scenario | None = None) -> None:
        self._world = world
        self._scenario = scenario or Scenario()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_world", "_scenario"):
            raise AttributeError(name)
        return getattr(self._world, name)

    def __repr__(self) -> str:
        return f"ScenarioWorld({self._world!r}, {len(self._scenario.drifts)} drift(s))"

    @property
    def world(self) -> World:
        """The wrapped world."""
        return self._world

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Replace the scenario (thread-safe: one reference is swapped)."""
        self._scenario = scenario

    def snapshot(self) -> ScenarioWorld:
        """This world with the current scenario pinned (a later change does not affect it)."""
        return ScenarioWorld(self._world, self._scenario)

    def variant(self, product: str, day: date) -> str:
        """A short tag of the drifts that change ``product`` on ``day``; ``""`` when none
        (for the replicas' file caches)."""
        drifts = self._scenario.active(product, day)
        if not drifts:
            return ""
        text = json.dumps([d.to_dict() for d in drifts], sort_keys=True)
        return "scenario-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    # -- ERA5 -------------------------------------------------------------------------------------
    def era5_series(
        self,
        first: date,
        n_days: int,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        variables: Sequence[str],
    ) -> dict[str, F32]:
        """:meth:`World.era5_series` under the scenario: ``{name: (n_days, 24, lat, lon)}``
        without the variables an ``era5_missing`` drift removes on any of the days."""
        scenario, days = self._scenario, _days(first, n_days)
        kept = _present(scenario, "era5", days, variables)
        fields = self._world.era5_series(first, n_days, lat, lon, kept)
        return _shifted(scenario, "era5", days, fields)

    def era5_hourly(
        self, day: date, lat: npt.ArrayLike, lon: npt.ArrayLike, variables: Sequence[str]
    ) -> dict[str, F32]:
        """:meth:`era5_series` of one day: ``{name: (24, lat, lon)}``."""
        return {k: v[0] for k, v in self.era5_series(day, 1, lat, lon, variables).items()}

    def era5land_hourly(
        self, day: date, lat: npt.ArrayLike, lon: npt.ArrayLike, variables: Sequence[str]
    ) -> dict[str, F32]:
        """:meth:`World.era5land_hourly` under the scenario: ``{name: (24, lat, lon)}``."""
        scenario = self._scenario
        kept = _present(scenario, "era5land", [day], variables)
        fields = self._world.era5land_hourly(day, lat, lon, kept)
        series = _shifted(scenario, "era5land", [day], {k: v[None] for k, v in fields.items()})
        return {k: v[0] for k, v in series.items()}

    # -- MSWEP ------------------------------------------------------------------------------------
    def mswep_series(self, first: date, n_days: int, grid01: Grid = MSWEP_GRID) -> F32:
        """:meth:`World.mswep_series` under the scenario (mm day-1, (n_days, lat, lon); NaN
        where a region is missing)."""
        values = self._world.mswep_series(first, n_days, grid01)
        return _mswep(self._scenario, _days(first, n_days), grid01, values)

    def mswep_daily(self, day: date, grid01: Grid = MSWEP_GRID) -> F32:
        """:meth:`World.mswep_daily` under the scenario (mm day-1, (lat, lon))."""
        values = self._world.mswep_daily(day, grid01)
        out: F32 = _mswep(self._scenario, [day], grid01, values[None])[0]
        return out

    def mswep_nrt(self, day: date, today: date, grid01: Grid = MSWEP_GRID) -> F32:
        """:meth:`World.mswep_nrt` under the scenario (the drifts of ``day``)."""
        values = self._world.mswep_nrt(day, today, grid01)
        out: F32 = _mswep(self._scenario, [day], grid01, values[None])[0]
        return out

    # -- SMAP -------------------------------------------------------------------------------------
    def smap_l3e(self, day: date) -> SmapDay:
        """:meth:`World.smap_l3e` with the day's SMAP bias on the valid retrievals."""
        return self._smap(self._world.smap_l3e(day))

    def smap_l3(self, day: date) -> SmapDay:
        """:meth:`World.smap_l3` with the day's SMAP bias on the valid retrievals."""
        return self._smap(self._world.smap_l3(day))

    def product_daily(self, name: str, start: date, end: date) -> xr.DataArray:
        """:meth:`World.product_daily`; ``smap`` gets each day's bias (the daily cell mean
        + bias, clipped to the retrievals' valid range), the others pass through."""
        daily = self._world.product_daily(name, start, end)
        if name != "smap":
            return daily
        scenario = self._scenario
        offsets = np.array([scenario.smap_offset(d) for d in _days(start, (end - start).days + 1)])
        if not offsets.any():
            return daily
        low, high = self._smap_range()
        values = np.asarray(daily.values, dtype=np.float64) + offsets[:, None, None]
        return daily.copy(data=np.clip(values, low, high).astype(daily.dtype))

    def _smap_range(self) -> tuple[float, float]:
        errors = self._world.spec.smap
        return float(errors.valid_min), float(errors.valid_max)

    def _smap(self, obs: SmapDay) -> SmapDay:
        offset = self._scenario.smap_offset(obs.day)
        if offset == 0.0:
            return obs
        low, high = self._smap_range()

        def biased(fields: Any) -> dict[str, npt.NDArray[np.generic]]:
            sm = np.asarray(fields["soil_moisture"])
            valid = sm != FLOAT_FILL
            shifted = np.clip(sm.astype(np.float64) + offset, low, high)
            return {**fields, "soil_moisture": np.where(valid, shifted, sm).astype(sm.dtype)}

        return dataclasses.replace(obs, am=biased(obs.am), pm=biased(obs.pm))


def _present(
    scenario: Scenario, dataset: str, days: Sequence[date], variables: Sequence[str]
) -> list[str]:
    """``variables`` without those an ``era5_missing`` drift removes on any of ``days``."""
    gone = {
        d.variable
        for d in scenario.drifts
        if isinstance(d, Era5Missing) and d.dataset == dataset and any(map(d.active, days))
    }
    return [v for v in variables if v not in gone]


def _shifted(
    scenario: Scenario, dataset: str, days: Sequence[date], fields: dict[str, F32]
) -> dict[str, F32]:
    """``fields`` ``{name: (day, …)}`` with the ``era5_shift`` offsets of each day."""
    out = dict(fields)
    for d in scenario.drifts:
        if not (isinstance(d, Era5Shift) and d.dataset == dataset and d.variable in out):
            continue
        on = np.array([d.active(day) for day in days])
        if on.any():
            values = np.array(out[d.variable], dtype=np.float32)  # a copy
            values[on] += np.float32(d.offset)
            out[d.variable] = values
    return out


def _mswep(scenario: Scenario, days: Sequence[date], grid01: Grid, values: F32) -> F32:
    """MSWEP (day, lat, lon) on ``grid01`` with the scenario's drifts of each day."""
    out = values
    for d in scenario.drifts:
        if not isinstance(d, (MswepBias, MswepMissing)):
            continue
        on = np.array([d.active(day) for day in days])
        if not on.any():
            continue
        if out is values:
            out = np.array(values, dtype=np.float32)  # a copy: the world's arrays stay intact
        if isinstance(d, MswepBias):
            out[on] *= np.float32(d.factor)
        else:
            out[on[:, None, None] & _inside(d.region, grid01)[None]] = np.float32(np.nan)
    return out


def pinned[W](world: W) -> W:
    """``world`` with its current scenario pinned (:meth:`ScenarioWorld.snapshot`), or
    ``world`` itself when it is not a :class:`ScenarioWorld`."""
    if isinstance(world, ScenarioWorld):
        return world.snapshot()  # type: ignore[return-value]
    return world


def variant(world: object, product: str, day: date) -> str:
    """:meth:`ScenarioWorld.variant` of ``world``; ``""`` for a plain world."""
    return world.variant(product, day) if isinstance(world, ScenarioWorld) else ""
