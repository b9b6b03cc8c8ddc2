"""Skill of gridded daily series against a reference: the twin's truth or in-situ stations.

An evaluation scores several series on one grid — the analysis, the open loop, the products,
climatology — given as the variables of one Dataset ``(time, lat, lon)`` (m3 m-3), and
reports one row per series (the paper's headline table, SCIENCE.md §4–5):

- :func:`score_against_truth`: per cell, :func:`smda.science.metrics.score` of the series against the
  truth along time (pytesmo's definitions, at least ``min_n`` common days); then the median
  over the cells where every metric is defined;
- :func:`score_against_stations`: per station, :func:`smda.science.metrics.match_stations` (the cell
  containing the station); then :func:`smda.science.metrics.summarise` (medians over stations);
- :func:`osse_checks`: the OSSE's claims on a truth table — the nudged analysis beats the open
  loop and every product (median R higher, median ubRMSD lower), the open loop beats
  climatology — each as a :class:`Check` that says whether it holds;
- :func:`render_markdown`: the tables, the protocol in words and the checks as a markdown
  report (written to disk by :func:`smda.ops.evaluate.write_report`).

Bias is series minus reference throughout. Science core: numpy, pandas and xarray only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from smda.science.metrics import METRICS, StationSeries, match_stations, score, summarise

__all__ = [
    "PRODUCTS",
    "SERIES",
    "STATION_COLUMNS",
    "TRUTH_COLUMNS",
    "Check",
    "osse_checks",
    "render_markdown",
    "score_against_stations",
    "score_against_truth",
]

FloatArray = npt.NDArray[np.float64]

SERIES = ("analysis", "open_loop", "forecast", "smap", "era5land", "gldas", "climatology")
"""The series of an evaluation, in the order tables list them."""
PRODUCTS = ("smap", "era5land", "gldas")
"""The single input products the analysis must beat."""
TRUTH_COLUMNS = ("n_cells", "r", "ubrmsd", "bias", "rmsd", "n_days")
"""Columns of :func:`score_against_truth`."""
STATION_COLUMNS = ("n_stations", "r", "ubrmsd", "bias", "rmsd")
"""Columns of :func:`score_against_stations`."""
_COORD_TOLERANCE = 1e-6  # degrees


def _ordered(names: Iterable[str]) -> list[str]:
    """Known series in :data:`SERIES` order, then any others in their given order."""
    names = list(names)
    return [s for s in SERIES if s in names] + [n for n in names if n not in SERIES]


def _gridded(series: xr.Dataset) -> list[str]:
    """The (time, lat, lon) variables of ``series`` (others are ignored)."""
    names = [str(n) for n, v in series.data_vars.items() if set(v.dims) == {"time", "lat", "lon"}]
    if not names:
        raise ValueError(
            f"no (time, lat, lon) variable to score among {list(map(str, series.data_vars))}"
        )
    return _ordered(names)


def _days[T: (xr.Dataset, xr.DataArray)](obj: T) -> T:
    """``obj`` with its times at midnight (UTC days)."""
    return obj.assign_coords(time=pd.DatetimeIndex(obj["time"].values).normalize())


def _truth_on(series: xr.Dataset, truth: xr.DataArray) -> tuple[xr.Dataset, xr.DataArray]:
    """Series and truth on their common days, the truth on the series' cells."""
    series, truth = _days(series), _days(truth)
    days = pd.DatetimeIndex(series["time"].values).intersection(truth["time"].values)
    if days.empty:
        raise ValueError("the series and the truth have no day in common")
    try:
        on_cells = truth.sel(
            lat=series["lat"], lon=series["lon"], method="nearest", tolerance=_COORD_TOLERANCE
        )
    except KeyError as exc:
        raise ValueError(
            "the truth does not cover the series' cells (lat/lon must be the same cell centres)"
        ) from exc
    return series.sel(time=days), on_cells.sel(time=days)


def _last_time(field: xr.DataArray) -> FloatArray:
    """Values ``(lat, lon, time)`` as float64."""
    return np.asarray(field.transpose("lat", "lon", "time").values, dtype=np.float64)


def score_against_truth(
    series: xr.Dataset, truth: xr.DataArray, *, min_n: int = 30
) -> pd.DataFrame:
    """Median skill over cells of each series against the truth.

    Parameters
    ----------
    series:
        Daily series ``(time, lat, lon)`` in m3 m-3, one variable per series (variables with
        other dims are ignored); NaN where missing.
    truth:
        True soil moisture ``(time, lat, lon)`` in m3 m-3 covering the series' cells (e.g.
        :meth:`smda_twin.world.World.truth`); scored over the days both have.
    min_n:
        Fewest common valid days for a cell to be scored.

    Returns
    -------
    pandas.DataFrame
        One row per series (index ``series``, :data:`SERIES` order first) with
        :data:`TRUTH_COLUMNS`: ``n_cells`` (cells with every metric defined), the medians over
        those cells of ``r``, ``ubrmsd``, ``bias`` (series − truth), ``rmsd`` (m3 m-3) and of
        ``n_days`` (common valid days per cell). NaN medians when no cell is scored.

    Raises
    ------
    ValueError
        If no variable is (time, lat, lon), no day is shared, or the grids differ.
    """
    names = _gridded(series)
    series, truth = _truth_on(series, truth)
    reference = _last_time(truth)
    rows = {}
    for name in names:
        result = score(_last_time(series[name]), reference, min_n=min_n)
        metrics = np.stack([getattr(result, m) for m in METRICS], axis=-1).reshape(-1, len(METRICS))
        scored = np.all(np.isfinite(metrics), axis=1)
        medians = (
            np.median(metrics[scored], axis=0) if scored.any() else np.full(len(METRICS), np.nan)
        )
        n_days = np.median(result.n.reshape(-1)[scored]) if scored.any() else np.nan
        rows[name] = {
            "n_cells": float(scored.sum()),
            **dict(zip(METRICS, medians.tolist(), strict=True)),
            "n_days": float(n_days),
        }
    return _table(rows, TRUTH_COLUMNS)


def _table(rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> pd.DataFrame:
    table = pd.DataFrame.from_dict(rows, orient="index")[list(columns)].astype(np.float64)
    table.index.name = "series"
    return table


def score_against_stations(
    series: xr.Dataset,
    stations: xr.Dataset | xr.DataArray | Iterable[StationSeries],
    *,
    min_n: int = 30,
) -> pd.DataFrame:
    """Median skill over stations of each series against in-situ stations.

    Parameters
    ----------
    series:
        Daily series ``(time, lat, lon)`` in m3 m-3 on a regular cell-centred grid window
        (:func:`smda.science.metrics.match_stations`), one variable per series.
    stations:
        Daily in-situ soil moisture (m3 m-3) in any form :func:`smda.science.metrics.match_stations`
        takes: ``soil_moisture (time, station)`` with ``lat``/``lon`` coordinates, or
        ``(id, lat, lon, series)`` tuples. Stations outside the grid are not scored.
    min_n:
        Fewest common valid days for a station to be scored.

    Returns
    -------
    pandas.DataFrame
        One row per series (index ``series``) with :data:`STATION_COLUMNS`: ``n_stations``
        (stations with every metric defined) and the medians over them of ``r``, ``ubrmsd``,
        ``bias`` (series − station) and ``rmsd`` (m3 m-3).
    """
    if not isinstance(stations, xr.Dataset | xr.DataArray):
        stations = list(stations)
    rows = {}
    for name in _gridded(series):
        summary = summarise(match_stations(series[name], stations, min_n=min_n))
        rows[name] = {k: float(v) for k, v in summary.items()}
    return _table(rows, STATION_COLUMNS)


@dataclass(frozen=True)
class Check:
    """One claim of the OSSE on a truth table, and whether it holds.

    Attributes
    ----------
    claim:
        The claim in words, e.g. ``"analysis beats smap"``.
    passed:
        True when median R is higher *and* median ubRMSD lower.
    detail:
        The figures compared, e.g. ``"R 0.912 > 0.801; ubRMSD 0.0301 < 0.0412"``.
    required:
        True for the issue's claims; False for informative ones.
    """

    claim: str
    passed: bool
    detail: str
    required: bool = True


def _beats(table: pd.DataFrame, better: str, worse: str, *, required: bool) -> Check:
    r1, r2 = float(table.loc[better, "r"]), float(table.loc[worse, "r"])
    u1, u2 = float(table.loc[better, "ubrmsd"]), float(table.loc[worse, "ubrmsd"])
    passed = bool(r1 > r2 and u1 < u2)
    detail = (
        f"R {r1:.3f} {'>' if r1 > r2 else '≯'} {r2:.3f}; "
        f"ubRMSD {u1:.4f} {'<' if u1 < u2 else '≮'} {u2:.4f}"
    )
    return Check(f"{better} beats {worse}", passed, detail, required)


def osse_checks(table: pd.DataFrame) -> list[Check]:
    """The OSSE's claims (SCIENCE.md §5) on a :func:`score_against_truth` table.

    Required: the analysis beats the open loop and every product of :data:`PRODUCTS`; the open
    loop beats climatology. Informative: the open loop beats every product. "Beats" means a
    higher median R and a lower median ubRMSD. Claims about series missing from the table are
    left out.
    """
    have = set(table.index)
    pairs = [("analysis", "open_loop", True)]
    pairs += [("analysis", p, True) for p in PRODUCTS]
    pairs += [("open_loop", "climatology", True)]
    pairs += [("open_loop", p, False) for p in PRODUCTS]
    return [
        _beats(table, better, worse, required=required)
        for better, worse, required in pairs
        if better in have and worse in have
    ]


# -- the table in words ---------------------------------------------------------------------------
_TITLES = {"truth": "Against the truth (OSSE)", "stations": "Against ISMN stations"}
_HEADERS = {
    "r": "median R",
    "ubrmsd": "median ubRMSD",
    "bias": "median bias",
    "rmsd": "median RMSD",
    "n_cells": "cells",
    "n_days": "days per cell",
    "n_stations": "stations",
}


def _cell(column: str, value: float) -> str:
    if not math.isfinite(value):
        return "–"
    if column.startswith("n_"):
        return f"{value:.0f}"
    return f"{value:.3f}" if column == "r" else f"{value:.4f}"


def _markdown_table(table: pd.DataFrame) -> list[str]:
    columns = [str(c) for c in table.columns]
    lines = [
        "| series | " + " | ".join(_HEADERS.get(c, c) for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(_cell(c, float(row[c])) for c in columns) + " |")
    return lines


def _protocol(meta: Mapping[str, Any]) -> str:
    """The protocol of the evaluation in words, from what ``meta`` records."""
    parts = [
        f"Daily series of {meta.get('start', '?')} … {meta.get('end', '?')}"
        f" on the 0.25° grid of region {meta.get('region', '?')}."
    ]
    if "model_version" in meta:
        parts.append(
            f"Analysis: model {meta['model_version']} stepping forward from yesterday's analysis,"
            f" nudged toward CDF-matched SMAP with gain G = {meta.get('gain', '?')}; open loop:"
            " the same model free-running (G = 0); forecast: SM_f of the analysis chain. Both"
            f" cold-started from the model climatology {meta.get('spinup_days', '?')} days before"
            " the period and spun up over those days (the analysis with nudging)."
            " Products as staged (SMAP L3 mean of AM/PM retrievals, ERA5-Land swvl1, GLDAS Noah"
            " 0–10 cm); climatology: the model's monthly climatology."
        )
    if "series_file" in meta:
        parts.append(f"Series: the (time, lat, lon) variables of {meta['series_file']}.")
    parts.append(
        "Metrics: pytesmo's definitions (Pearson R, ubRMSD, bias = series − reference, RMSD, in"
        f" m3 m-3), per cell or per station over at least {meta.get('min_n', 30)} common days,"
        " then the median over cells or stations."
    )
    for key, label in (("truth", "Truth"), ("stations", "Stations")):
        if key in meta:
            parts.append(f"{label}: {meta[key]}.")
    return " ".join(parts)


def render_markdown(tables: Mapping[str, pd.DataFrame], meta: Mapping[str, Any]) -> str:
    """The report in markdown: title, protocol, each table, and the OSSE checks."""
    lines = [f"# smda evaluation {meta.get('start', '')} … {meta.get('end', '')}", ""]
    lines += [_protocol(meta), ""]
    for name, table in tables.items():
        lines += [f"## {_TITLES.get(name, name)}", "", *_markdown_table(table), ""]
        if name == "truth":
            lines += [
                f"- [{'x' if c.passed else ' '}] {_check_line(c)}" for c in osse_checks(table)
            ]
            lines.append("")
    return "\n".join(lines)


def _check_line(check: Check) -> str:
    kind = "" if check.required else " (informative)"
    return f"{check.claim}{kind}: {check.detail}"
