"""``smda plot``: the map of a day, or the time series of a point, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smda.cli.common import console, parse_date, parse_region, settings
from smda.cli.ops import RegionArg

__all__ = ["parse_point", "plot"]


def parse_point(text: str) -> tuple[float, float]:
    """``LON,LAT`` in degrees (east, north) as two floats."""
    parts = text.split(",")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not LON,LAT in degrees (e.g. --point=-100.1,35.2)", param_hint="--point"
        ) from None
    if not (-180 <= lon <= 360 and -90 <= lat <= 90):
        raise typer.BadParameter(
            f"{text!r}: longitude must be in -180…360 and latitude in -90…90", param_hint="--point"
        )
    return lon, lat


def plot(
    day: Annotated[
        str | None, typer.Argument(help="Day YYYY-MM-DD to map (not with --point).")
    ] = None,
    point: Annotated[
        str | None,
        typer.Option(help="LON,LAT: plot the time series of the nearest land cell instead."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day YYYY-MM-DD (with --point).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day YYYY-MM-DD (with --point).")] = None,
    region: RegionArg = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="PNG to write (default: smda_sm_YYYYMMDD.png or "
            "smda_point_LON_LAT_START_END.png in the current folder).",
        ),
    ] = None,
) -> None:
    """Write a PNG: the quick-look map of DAY (fixed colour scale 0–0.5 m3 m-3, land only), or
    with --point LON,LAT --start --end the analysis at the nearest land cell with its ±1 σ band,
    the SMAP retrievals and, where `smda evaluate` stored one covering the period, the open loop.
    Use --point=-100.1,35.2 (with '=') for a negative longitude."""
    from smda.ops import open_runtime
    from smda.ops.plot import open_loop_label, plot_day, point_series, render_point_series

    if (day is None) == (point is None):
        raise typer.BadParameter("give either DAY (a map) or --point LON,LAT (a time series)")
    if point is None:
        assert day is not None
        if start is not None or end is not None:
            raise typer.BadParameter("--start/--end go with --point, not with DAY")
        when = parse_date(day, "DAY")
        cfg = settings()
        rt = open_runtime(cfg, region=parse_region(region, cfg) if region else None)
        path = plot_day(rt, when, out or Path(f"smda_sm_{when:%Y%m%d}.png"))
    else:
        if start is None or end is None:
            raise typer.BadParameter("--point needs --start and --end", param_hint="--point")
        lon, lat = parse_point(point)
        first, last = parse_date(start, "--start"), parse_date(end, "--end")
        if last < first:
            raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
        cfg = settings()
        rt = open_runtime(cfg, region=parse_region(region, cfg) if region else None)
        series = point_series(rt, lon, lat, first, last)
        name = f"smda_point_{lon:g}_{lat:g}_{first:%Y%m%d}_{last:%Y%m%d}.png"
        path = render_point_series(series, out or Path(name))
        if series.open_loop_from:
            console.print(f"drawn: {open_loop_label(series)}", soft_wrap=True, highlight=False)
        for note in series.notes:
            console.print(f"note: {note}", soft_wrap=True, highlight=False)
    typer.echo(str(path.resolve()))
