"""``smda verify``: check every stored file of a region against its records; repair on request."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smda.cli.common import console, parse_region, settings
from smda.cli.ops import RegionArg

__all__ = ["verify"]


def _table(title: str, rows: list[dict[str, str]]) -> None:
    table = Table(title=title, show_lines=False)
    for key in ("kind", "target", "problem", "repair"):
        table.add_column(key, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    Console(width=max(Console().width, 160)).print(table)


def verify(
    region: RegionArg = None,
    repair: Annotated[
        bool, typer.Option(help="Repair what is found (re-stage, recompute, republish, remove).")
    ] = False,
) -> None:
    """Check staged files, raw cache, state chain (with its D-1 digest links), COGs, STAC items
    and models against what was recorded when they were written.

    Prints what is wrong and what --repair does (or did) about it. Exit code 0 when everything is
    intact (after the repairs with --repair), 1 when something is wrong, 73 when another process
    writes the region.
    """
    from smda.ops import open_runtime
    from smda.ops.verify import verify_region

    cfg = settings()
    rt = open_runtime(cfg, region=parse_region(region, cfg) if region else None)
    report = verify_region(rt, repair=repair, say=console.print)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items()))
    console.print(f"region {report.region}: checked {counts or 'nothing (empty)'}")
    if report.found:
        _table(f"{len(report.found)} problem(s) found", [f.as_row() for f in report.found])
    if repair and report.repaired:
        console.print(f"repaired {len(report.repaired)} problem(s)")
    if report.remaining:
        if repair:
            _table("still wrong after the repairs", [f.as_row() for f in report.remaining])
        else:
            console.print("run `smda verify --repair` to repair them")
        raise typer.Exit(1)
    console.print("[green]everything verified[/green]")
