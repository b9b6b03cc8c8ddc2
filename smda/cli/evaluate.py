"""``smda evaluate``: score the analysis, the open loop and every product against references.

Two modes (:mod:`smda.ops.evaluate` does the work):

- **the model** (default): run the region's current model over ``--start … --end`` from the
  staged inputs — the nudged analysis and the open loop, both cold-started with spin-up — and
  score them beside the staged products and climatology;
- **any gridded series** (``--series FILE``): score the (time, lat, lon) variables of a
  netCDF file.

References: the twin's truth (``--truth twin`` with ``--seed``/``--epoch``, or ``--truth
FILE`` as ``smda twin truth`` writes it) and ISMN stations (staged by ``smda fetch ismn``,
and/or ``--stations`` an ISMN download). The table is printed and written as markdown and JSON
under ``<data_dir>/reports/<region>/``; running the model also stores its cycled series there
(analysis, open loop, forecast: ``evaluation_<start>_<end>.nc``), which ``smda plot --point``
draws the open loop from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from smda.cli.common import (
    JsonOpt,
    SeedOpt,
    console,
    emit_json,
    error_document,
    json_stdout,
    parse_date,
    parse_region,
    settings,
)
from smda.config import Settings
from smda.errors import ConfigError, SmdaError
from smda.geo.grid import BBox, Grid, region_grid
from smda.storage.regions import ensure_region_file

if TYPE_CHECKING:  # imported lazily: the CLI starts fast
    import pandas as pd
    import xarray as xr

__all__ = ["evaluate"]

_FORMATS = {"r": "{:.3f}", "ubrmsd": "{:.4f}", "bias": "{:+.4f}", "rmsd": "{:.4f}"}
_HEADERS = {
    "n_cells": "cells",
    "n_days": "days/cell",
    "n_stations": "stations",
    "r": "median R",
    "ubrmsd": "median ubRMSD",
    "bias": "median bias",
    "rmsd": "median RMSD",
}


@dataclass(frozen=True)
class _Period:
    start: date
    end: date
    bbox: BBox
    grid: Grid


def _period(start: str | None, end: str | None, bbox: BBox | None) -> _Period:
    if start is None or end is None:
        raise typer.BadParameter("give the period: --start and --end", param_hint="--start")
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    if bbox is None:
        raise typer.BadParameter(
            "give the region: --region west,south,east,north (or set SMDA_REGION)",
            param_hint="--region",
        )
    return _Period(first, last, bbox, region_grid(bbox))


def _series_bbox(series: xr.Dataset) -> BBox:
    """The outer edges of a gridded series' cells."""
    lat, lon = series["lat"].values.astype(float), series["lon"].values.astype(float)
    steps = np.abs(np.concatenate([np.diff(np.sort(lat)), np.diff(np.sort(lon))]))
    half = float(np.median(steps)) / 2 if steps.size else 0.125
    return BBox(
        float(lon.min() - half),
        float(lat.min() - half),
        float(lon.max() + half),
        float(lat.max() + half),
    )


def _truth(
    spec: str | None, period: _Period, seed: int, epoch: str
) -> tuple[xr.DataArray | None, str]:
    from smda.cli.twin import truth_of
    from smda.ops.references import read_truth

    if spec is None:
        return None, ""
    if spec == "twin":
        first = parse_date(epoch, "--epoch")
        truth = truth_of(seed, period.bbox, period.start, period.end, epoch=first)
        return truth, f"the offline twin's world (seed {seed}, epoch {first})"
    return read_truth(Path(spec)), f"the truth in {spec}"


def _run_model(
    cfg: Settings, period: _Period, gain: float | None, spinup_days: int, model: str | None
) -> xr.Dataset:
    from smda.ops.evaluate import run_experiments
    from smda.storage.registry import ModelRegistry, models_dir
    from smda.storage.store import Store

    store = Store(cfg.data_dir, period.grid)
    registry = ModelRegistry(models_dir(cfg.data_dir, store.region))
    bundle = registry.load(model) if model else registry.current()
    console.print(
        f"running model {bundle.version} over {period.start}..{period.end} "
        f"(gain {'of the model' if gain is None else f'{gain:g}'}, spin-up {spinup_days} d) "
        f"in region {store.region}"
    )
    return run_experiments(
        store, bundle, period.start, period.end, gain=gain, spinup_days=spinup_days
    )


def _print_table(name: str, table: pd.DataFrame) -> None:
    title = {"truth": "against the truth (OSSE)", "stations": "against ISMN stations"}
    out = Table(title=f"smda evaluate — {title.get(name, name)}")
    out.add_column("series")
    for column in table.columns:
        out.add_column(_HEADERS.get(column, column), justify="right")
    for series, row in table.iterrows():
        cells = [
            "–"
            if not np.isfinite(v)
            else (f"{v:.0f}" if c.startswith("n_") else _FORMATS.get(c, "{:g}").format(v))
            for c, v in row.items()
        ]
        out.add_row(str(series), *cells)
    Console(width=max(Console().width, 110)).print(out)


def _print_checks(table: pd.DataFrame) -> None:
    from smda.science.skill import osse_checks

    for check in osse_checks(table):
        mark = "[green]✓[/green]" if check.passed else "[red]✗[/red]"
        note = "" if check.required else " [dim](informative)[/dim]"
        console.print(f"  {mark} {check.claim}{note}: {check.detail}")


def evaluate(
    start: Annotated[
        str | None, typer.Option(help="First day YYYY-MM-DD (default with --series: its first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day YYYY-MM-DD (default with --series: its last).")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Region 'west,south,east,north' (default: SMDA_REGION)."),
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            help="Truth to score against: 'twin' (the offline twin's world of --seed/--epoch) "
            "or a netCDF file (`smda twin truth`)."
        ),
    ] = None,
    seed: SeedOpt = 42,
    epoch: Annotated[str, typer.Option(help="Epoch of the twin's world.")] = "2015-01-01",
    stations: Annotated[
        Path | None,
        typer.Option(
            help="ISMN download (folder or zip) to score against, beside any ISMN staged in "
            "the store (`smda fetch ismn`)."
        ),
    ] = None,
    series: Annotated[
        Path | None,
        typer.Option(
            help="Score the (time, lat, lon) variables of this netCDF file instead of "
            "running the model."
        ),
    ] = None,
    gain: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Fixed nudging gain G (default: SMDA_GAIN, else the model's own gain).",
        ),
    ] = None,
    spinup_days: Annotated[
        int | None,
        typer.Option(
            min=0, help="Cold-start spin-up days before --start (default: SMDA_SPINUP_DAYS)."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model version (default: the region's current model).")
    ] = None,
    min_days: Annotated[
        int, typer.Option(min=2, help="Fewest common days for a cell or station to be scored.")
    ] = 30,
    max_depth: Annotated[
        float, typer.Option(help="Deepest ISMN sensor (m) read from --stations.")
    ] = 0.05,
    as_json: JsonOpt = False,
) -> None:
    """Score the analysis, the open loop and each product (or any gridded series) against the
    twin's truth and ISMN stations; print the table and write the report, and running the model
    its cycled series (analysis, open loop, forecast) for `smda plot --point` (with ``--json``:
    the report's JSON on stdout, with where it was written)."""
    with json_stdout(as_json) as out:
        try:
            cfg = settings()
            _evaluate(
                cfg,
                start=start,
                end=end,
                region=region,
                truth=truth,
                seed=seed,
                epoch=epoch,
                stations=stations,
                series=series,
                gain=cfg.gain if gain is None else gain,
                spinup_days=cfg.spinup_days if spinup_days is None else spinup_days,
                model=model,
                min_days=min_days,
                max_depth=max_depth,
                out=out if as_json else None,
            )
        except SmdaError as exc:
            console.print(f"[red]error:[/red] {exc}")
            if as_json:
                error_document("evaluate", 1, str(exc), file=out)
            raise typer.Exit(1) from None


def _series_period(
    path: Path, start: str | None, end: str | None, bbox: BBox | None
) -> tuple[xr.Dataset, _Period]:
    import pandas as pd

    from smda.ops.references import read_series

    data = read_series(path)
    days = pd.DatetimeIndex(data["time"].values)
    first = parse_date(start, "--start") if start else days.min().date()
    last = parse_date(end, "--end") if end else days.max().date()
    data = data.sel(time=(days >= pd.Timestamp(first)) & (days <= pd.Timestamp(last)))
    if data.sizes["time"] == 0:
        raise ConfigError(f"{path} has no day in {first}..{last}")
    box = bbox or _series_bbox(data)
    return data, _Period(first, last, box, region_grid(box))


def _evaluate(
    cfg: Settings,
    *,
    start: str | None,
    end: str | None,
    region: str | None,
    truth: str | None,
    seed: int,
    epoch: str,
    stations: Path | None,
    series: Path | None,
    gain: float | None,
    spinup_days: int,
    model: str | None,
    min_days: int,
    max_depth: float,
    out: TextIO | None = None,
) -> None:
    from smda.ops.evaluate import report_directory, score_tables, write_report, write_series
    from smda.ops.references import collect_stations
    from smda.storage.store import Store

    t0 = time.perf_counter()
    bbox = parse_region(region, cfg) if region else cfg.bbox
    meta: dict[str, Any] = {"min_n": min_days}
    if series is not None:
        data, period = _series_period(series, start, end, bbox)
        meta["series_file"] = str(series)
    else:
        period = _period(start, end, bbox)
        data = _run_model(cfg, period, gain, spinup_days, model)
        meta.update({k: data.attrs[k] for k in ("gain", "spinup_days", "model_version")})
    store = Store(cfg.data_dir, period.grid)
    reference, truth_text = _truth(truth, period, seed, epoch)
    found, stations_text = collect_stations(
        store, period.start, period.end, stations, max_depth=max_depth
    )
    tables = score_tables(data, truth=reference, stations=found, min_n=min_days)
    seconds = round(time.perf_counter() - t0, 1)
    meta.update(
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        region=str(period.bbox),
        seconds=seconds,
    )
    meta.update({k: v for k, v in (("truth", truth_text), ("stations", stations_text)) if v})
    for name, table in tables.items():
        if out is None:
            _print_table(name, table)
        if name == "truth":
            _print_checks(table)
    folder = report_directory(cfg.data_dir, period.grid)
    path = write_report(tables, folder, meta=meta)
    cycled = None if series is not None else write_series(data, folder)
    ensure_region_file(folder, period.grid)
    stored = f"; series: {cycled}" if cycled else ""
    console.print(f"report: {path} (and {path.with_suffix('.json').name}){stored}; {seconds} s")
    if out is not None:
        written = json.loads(path.with_suffix(".json").read_text("utf-8"))
        report = {"markdown": str(path), "json": str(path.with_suffix(".json"))}
        if cycled is not None:
            report["series"] = str(cycled)
        emit_json("evaluate", 0, {"report": report, **written}, file=out)
