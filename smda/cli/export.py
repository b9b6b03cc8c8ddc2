"""``smda export``: a period of the state chain as one CF cube (netCDF or Zarr)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from smda.cli.common import console, parse_date, parse_region, settings
from smda.cli.ops import RegionArg

__all__ = ["export"]


def export(
    out: Annotated[Path, typer.Argument(help="Output file (.nc) or Zarr folder.")],
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD.")],
    region: RegionArg = None,
    format: Annotated[
        Literal["netcdf", "zarr"], typer.Option("--format", help="netcdf (one file) or zarr.")
    ] = "netcdf",
) -> None:
    """Export the analysis of a period as one chunked, CF-compliant cube: analysis,
    uncertainty, flags, obs_count on (time, lat, lon), and each day's provenance.

    Open it with `xarray.open_dataset(OUT)` (or `xarray.open_zarr(OUT)`).
    """
    from smda.ops import open_runtime
    from smda.ops.export import describe, export_cube

    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    cfg = settings()
    rt = open_runtime(cfg, region=parse_region(region, cfg) if region else None)
    result = export_cube(rt, first, last, out, fmt=format)
    console.print(f"exported {describe(result)}")
