"""``smda plot``: the map of a day and the time series of a point, as PNG files.

- :func:`plot_day` — the quick-look of a day of the state chain
  (:func:`smda.storage.quicklook.render_quicklook`: fixed colour scale, land only).
- :func:`point_series` — what is known at the land cell nearest to a point over a period
  (:class:`PointSeries`): the analysis and its uncertainty from the state chain, the SMAP L3
  retrievals staged in the store (m3 m-3 as retrieved), and SMAP* — SMAP rescaled to the model
  climatology, as assimilated (forecast + O−F of the state where the cell was nudged).
  :func:`render_point_series` draws it: the analysis with a ±1 σ band, SMAP and SMAP* as dots,
  and the open loop (the model run without nudging) as a dashed line where ``smda evaluate``
  stored one for the region (:func:`smda.ops.evaluate.write_series`:
  ``data/reports/<region>/evaluation_<start>_<end>.nc``) covering days of the period; where
  several cover a day, the newest file wins. Without one the figure says so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from smda.errors import SmdaError
from smda.ops.evaluate import SERIES_GLOB, report_directory
from smda.ops.runtime import Runtime
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND
from smda.storage.inputs import load_series
from smda.storage.iolock import HDF5_IO
from smda.storage.quicklook import DPI, region_label, render_quicklook, save_png

__all__ = [
    "OPEN_LOOP_NOTE",
    "SEARCH_CELLS",
    "PointError",
    "PointSeries",
    "open_loop_label",
    "plot_day",
    "point_figure",
    "point_series",
    "render_point_series",
]

log = logging.getLogger(__name__)

SEARCH_CELLS = 2
"""How far (cells) from a point over sea the nearest land cell is looked for."""
OPEN_LOOP_NOTE = (
    "open loop not shown: no series of `smda evaluate` covers this period in this region "
    "(`smda evaluate` over the period stores one)"
)
_EVALUATED = re.compile(r"evaluation_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})\.nc$")
F64 = npt.NDArray[np.float64]


class PointError(SmdaError, ValueError):
    """The point is outside the region or over the sea: pick a point on land in the region."""


@dataclass(frozen=True)
class PointSeries:
    """The series of one cell over ``days`` (every day of the period, NaN where unknown).

    All values in m3 m-3; each array has one value per day of :attr:`days`.
    """

    point: tuple[float, float]
    """The (lon, lat) asked for."""
    cell: tuple[float, float]
    """The (lon, lat) of the centre of the land cell used."""
    days: list[date]
    analysis: F64
    uncertainty: F64
    """Error standard deviation of the analysis (1 σ)."""
    smap: F64
    """SMAP L3 retrievals staged for the cell (NaN: none that day, or SMAP not staged)."""
    smap_rescaled: F64
    """SMAP* as assimilated (forecast + O−F) on the days the cell was nudged."""
    open_loop: F64
    """The open loop of ``smda evaluate`` (NaN: no stored evaluation covers the day)."""
    open_loop_from: list[tuple[date, date]] = field(default_factory=list)
    """The evaluated periods whose stored series gave :attr:`open_loop` (oldest first)."""
    missing: list[date] = field(default_factory=list)
    """Days of the period with no state in the chain."""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.days)


def plot_day(rt: Runtime, day: date, out: Path | str) -> Path:
    """Write the quick-look of ``day`` of the region's state chain at ``out``.

    Raises
    ------
    smda.storage.chain.StateMissing
        If the chain has no state for ``day`` (the message names the last day).
    """
    state = rt.chain.read(day)
    return render_quicklook(state, out, day=day)


def _period(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _nearest_land(
    rt: Runtime, land: npt.NDArray[np.bool_], lon: float, lat: float
) -> tuple[int, int]:
    """Row and column of the land cell nearest to (lon, lat), within :data:`SEARCH_CELLS`."""
    grid = rt.grid
    rows, cols, ok = grid.locate(np.array([lat]), np.array([lon]))
    if not ok[0]:
        raise PointError(
            f"the point {lon:g},{lat:g} is outside the region {region_label(grid.lats, grid.lons)} "
            f"({rt.region}): pick a point inside it or give --region"
        )
    r0, c0 = int(rows[0]), int(cols[0])
    best: tuple[float, int, int] | None = None
    for r in range(max(r0 - SEARCH_CELLS, 0), min(r0 + SEARCH_CELLS + 1, grid.nrows)):
        for c in range(max(c0 - SEARCH_CELLS, 0), min(c0 + SEARCH_CELLS + 1, grid.ncols)):
            if not land[r, c]:
                continue
            dlon = (grid.lons[c] - lon + 180) % 360 - 180
            dist = (dlon * np.cos(np.radians(lat))) ** 2 + (grid.lats[r] - lat) ** 2
            if best is None or dist < best[0]:
                best = (float(dist), r, c)
    if best is None:
        raise PointError(
            f"the point {lon:g},{lat:g} is over the sea: no land cell within "
            f"{SEARCH_CELLS * grid.res:g}° of it; pick a point on land"
        )
    return best[1], best[2]


def point_series(rt: Runtime, lon: float, lat: float, start: date, end: date) -> PointSeries:
    """The series at the land cell nearest to (``lon``, ``lat``) over ``start … end``.

    Raises
    ------
    SmdaError
        If the chain has no state in the period (the message says what it holds).
    PointError
        If the point is outside the region or has no land cell within :data:`SEARCH_CELLS`.
    smda.errors.MalformedFile
        If a state or staged file is corrupt.
    """
    days = _period(start, end)
    held = set(rt.chain.days())
    have = [d for d in days if d in held]
    if not have:
        chain_days = sorted(held)
        span = f"{chain_days[0]} … {chain_days[-1]}" if chain_days else "no day"
        raise SmdaError(
            f"the state chain of region {rt.region} has no day in {start} … {end} (it holds "
            f"{span}): pick days it holds, or backfill them (`smda backfill --start {start} "
            f"--end {end}`)"
        )
    first = rt.chain.read(have[0])
    land = (np.asarray(first["flags"].values) & FLAG_LAND) > 0
    row, col = _nearest_land(rt, land, lon, lat)
    values = {k: np.full(len(days), np.nan) for k in ("analysis", "uncertainty", "rescaled")}
    for i, day in enumerate(days):
        if day not in held:
            continue
        state = first if day == have[0] else rt.chain.read(day)
        cell = state.isel(lat=row, lon=col)
        values["analysis"][i] = float(cell["analysis"])
        values["uncertainty"][i] = float(cell["uncertainty"])
        if int(cell["flags"]) & FLAG_ASSIMILATED:
            values["rescaled"][i] = float(cell["forecast"]) + float(cell["innovations"])
    smap = load_series(rt.store, "smap", "soil_moisture", start, end)
    open_loop, periods, notes = _open_loop(rt, row, col, days)
    return PointSeries(
        point=(lon, lat),
        cell=(float(rt.grid.lons[col]), float(rt.grid.lats[row])),
        days=days,
        analysis=values["analysis"],
        uncertainty=values["uncertainty"],
        smap=np.asarray(smap.isel(lat=row, lon=col).values, dtype=np.float64),
        smap_rescaled=values["rescaled"],
        open_loop=open_loop,
        open_loop_from=periods,
        missing=[d for d in days if d not in held],
        notes=notes if periods else [*notes, OPEN_LOOP_NOTE],
    )


def _evaluations(folder: Path, start: date, end: date) -> list[tuple[Path, date, date]]:
    """The stored evaluation series overlapping ``start … end``, oldest first (by mtime)."""
    found = []
    for path in folder.glob(SERIES_GLOB):
        match = _EVALUATED.fullmatch(path.name)
        if match is None:
            continue
        first, last = (date.fromisoformat(g) for g in match.groups())
        if first <= end and last >= start:
            found.append((path.stat().st_mtime, path.name, path, first, last))
    return [(path, first, last) for _, _, path, first, last in sorted(found)]


def _cell_series(rt: Runtime, path: Path, row: int, col: int) -> tuple[list[date], F64]:
    """Days and open loop of cell (row, col) in a stored evaluation series."""
    with HDF5_IO, xr.open_dataset(path, engine="netcdf4") as ds:
        lats, lons = ds["lat"].values, ds["lon"].values
        if not (np.allclose(lats, rt.grid.lats) and np.allclose(lons, rt.grid.lons)):
            raise ValueError(f"its grid {len(lats)}×{len(lons)} is not the region's")
        values = np.asarray(ds["open_loop"].isel(lat=row, lon=col).values, dtype=np.float64)
        days = [t.date() for t in pd.DatetimeIndex(ds["time"].values)]
    return days, values


def _open_loop(
    rt: Runtime, row: int, col: int, days: list[date]
) -> tuple[F64, list[tuple[date, date]], list[str]]:
    """The open loop of cell (row, col) over ``days`` from the region's stored evaluations
    (the newest file wins a day), the evaluated periods used, and notes on unreadable files."""
    index = {d: i for i, d in enumerate(days)}
    values = np.full(len(days), np.nan)
    source = np.full(len(days), -1)
    found = _evaluations(report_directory(rt.settings.data_dir, rt.grid), days[0], days[-1])
    notes = []
    for k, (path, _, _) in enumerate(found):
        try:
            held, cell = _cell_series(rt, path, row, col)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("open loop of %s skipped: %s", path, exc)
            notes.append(f"{path.name} skipped (unreadable: {exc})")
            continue
        for day, value in zip(held, cell, strict=True):
            if day in index:
                values[index[day]], source[index[day]] = value, k
    used = sorted({int(k) for k in source if k >= 0})
    return values, [(found[k][1], found[k][2]) for k in used], notes


def open_loop_label(series: PointSeries, *, wrap: bool = False) -> str:
    """The legend of the open loop: ``open loop (from smda evaluate START…END)``, each period
    on a line of its own with ``wrap`` (as the figure's legend shows it)."""
    space, comma = ("\n", ",\n") if wrap else (" ", ", ")
    spans = comma.join(f"{a}…{b}" for a, b in series.open_loop_from)
    return f"open loop (from smda evaluate{space}{spans})"


def _where(series: PointSeries) -> str:
    lon, lat = series.cell
    return f"{abs(lon):g}°{'W' if lon < 0 else 'E'} {abs(lat):g}°{'S' if lat < 0 else 'N'}"


def render_point_series(series: PointSeries, out: Path | str) -> Path:
    """Write the figure of ``series`` (:func:`point_figure`) as a PNG at ``out``; return it."""
    path = save_png(point_figure(series), out)
    log.info("time series at %s written to %s", series.cell, path)
    return path


def point_figure(series: PointSeries) -> Figure:
    """The figure of ``series`` (module docstring)."""
    fig = Figure(figsize=(10, 4.8), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0.08, 0.2, 0.66, 0.66))
    t = np.array(series.days, dtype="datetime64[D]")
    low, high = series.analysis - series.uncertainty, series.analysis + series.uncertainty
    ax.fill_between(t, low, high, color="#9ecae1", alpha=0.6, linewidth=0, label="analysis ± 1 σ")
    ax.plot(t, series.analysis, color="#08519c", linewidth=1.6, label="analysis SM_a")
    if series.open_loop_from:
        label = open_loop_label(series, wrap=True)
        ax.plot(t, series.open_loop, "--", color="#636363", linewidth=1.3, label=label)
    ax.plot(t, series.smap, "o", color="#e6550d", markersize=4, label="SMAP L3 (as retrieved)")
    ax.plot(
        t,
        series.smap_rescaled,
        "o",
        markerfacecolor="none",
        markeredgecolor="#a63603",
        markersize=6,
        label="SMAP* (rescaled, assimilated)",
    )
    ax.set_ylabel("soil moisture (m³ m⁻³)")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlim(t[0] - np.timedelta64(1, "D"), t[-1] + np.timedelta64(1, "D"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    lon, lat = series.point
    fig.suptitle(
        f"smda surface soil moisture (0–5 cm) at {_where(series)} · "
        f"{series.days[0]} … {series.days[-1]}",
        x=0.08,
        ha="left",
        fontsize=12,
        weight="bold",
    )
    lines = [f"land cell nearest to {lon:g},{lat:g}; {_counts(series)}", *series.notes]
    fig.text(0.08, 0.02, "\n".join(lines), fontsize=8, color="#404040", va="bottom")
    return fig


def _counts(series: PointSeries) -> str:
    n = int(np.isfinite(series.analysis).sum())
    text = f"{n} analysed day(s), {int(np.isfinite(series.smap).sum())} with a SMAP retrieval"
    if series.open_loop_from:
        text += f", {int(np.isfinite(series.open_loop).sum())} with the open loop"
    if series.missing:
        text += f", {len(series.missing)} day(s) without a state"
    return text
