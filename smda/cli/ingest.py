"""``smda fetch`` and ``smda status``: fetch and stage inputs, and what is staged where."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from smda.cli.common import JsonOpt, console, emit_json, json_stdout
from smda.cli.common import parse_date as _parse_date
from smda.cli.common import parse_region as _parse_region
from smda.cli.common import settings as _settings
from smda.errors import SmdaError
from smda.geo.grid import BBox

if TYPE_CHECKING:
    from smda.ingest.fetch import IngestReport
    from smda.ops.status import RegionStatus

__all__ = ["fetch", "status"]

FETCH_STATUSES = ("fetched", "replaced", "unchanged", "skipped", "not_available", "failed")

SourcesArg = Annotated[
    str, typer.Argument(help="Source name, comma-separated names, or 'all' (era5, mswep, smap).")
]


def _source_names(text: str) -> list[str]:
    from smda.ingest.sources import OPERATIONAL, SOURCE_NAMES

    names = (
        list(OPERATIONAL) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"unknown source(s) {unknown}; choose from {', '.join(SOURCE_NAMES)} or 'all'"
        )
    return names


def fetch(
    sources: SourcesArg,
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str | None, typer.Option(help="Last day YYYY-MM-DD (default: start).")] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Region 'west,south,east,north' or a region key (default: SMDA_REGION or the "
            "globe)."
        ),
    ] = None,
    ismn: Annotated[
        Path | None, typer.Option(help="ISMN download (folder or zip) for the 'ismn' source.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch and stage sources for a date range (idempotent: only what is new or changed).

    Shows progress, then a summary per source of what was fetched, skipped, not yet available
    and failed (with reasons). Exits 1 if anything failed.
    """
    with json_stdout(as_json) as out:
        _fetch(sources, start, end, region, ismn, out if as_json else None)


def _fetch(
    sources: str,
    start: str,
    end: str | None,
    region: str | None,
    ismn: Path | None,
    out: TextIO | None,
) -> None:
    settings = _settings()
    from rich.progress import Progress

    from smda.ingest.context import make_context
    from smda.ingest.fetch import DayOutcome, fetch_range

    names = _source_names(sources)
    first = _parse_date(start, "--start")
    last = _parse_date(end, "--end") if end else first
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    bbox = _parse_region(region, settings) if region else None
    ctx = make_context(settings, region=bbox, ismn_path=ismn)
    static: dict[str, str | None] = {"path": None, "error": None}
    with ctx.store.writer():  # one fetch per region at a time (RegionBusy names the other)
        total = len(names) * ((last - first).days + 1)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("fetching", total=total)

            def advance(outcome: DayOutcome) -> None:
                bar.update(
                    task, advance=1, description=f"{outcome.source} {outcome.day} {outcome.status}"
                )

            report = fetch_range(names, first, last, ctx, progress=advance)
        if "era5" in names and report.by_status("failed", "era5") == []:
            from smda.ingest.sources.era5 import stage_static

            try:  # the invariants (static fields, land mask), staged once per region
                static["path"] = str(stage_static(ctx))
                console.print(f"static fields: {static['path']}")
            except SmdaError as exc:
                static["error"] = str(exc)
                console.print(f"[red]static fields:[/red] {exc}")
    code = 0 if report.ok and static["error"] is None else 1
    noted = report.by_status("failed") + report.by_status("replaced")
    if out is not None:
        emit_json(
            "fetch",
            code,
            {
                "sources": names,
                "start": first,
                "end": last,
                "today": ctx.today,
                "region": ctx.store.region,
                "counts": {
                    n: {s: c.get(s, 0) for s in FETCH_STATUSES} for n, c in report.counts().items()
                },
                "problems": [
                    {"source": o.source, "day": o.day, "status": o.status, "reason": o.reason}
                    for o in noted
                ],
                "static": static if "era5" in names else None,
            },
            file=out,
        )
    else:
        _print_fetch(report, names, first, last, ctx.today)
        for outcome in noted:
            console.print(f"  {outcome.source} {outcome.day} {outcome.status}: {outcome.reason}")
    if code:
        raise typer.Exit(code)


def _print_fetch(
    report: IngestReport, names: list[str], first: date, last: date, today: date
) -> None:
    table = Table(
        title=f"smda fetch {','.join(names)} {first}..{last} (today at the providers: {today})"
    )
    table.add_column("source")
    for status in FETCH_STATUSES:
        table.add_column(status.replace("_", " "), justify="right")
    for name, counts in report.counts().items():
        table.add_row(name, *(str(counts.get(s, 0)) for s in FETCH_STATUSES))
    Console(width=max(Console().width, 120)).print(table)


def status(
    sources: Annotated[
        str, typer.Argument(help="Sources to show, comma-separated, or 'all'.")
    ] = "all",
    region: Annotated[
        str | None,
        typer.Option(
            help="Region 'west,south,east,north' or a region key (default: SMDA_REGION, else "
            "every region of the data directory)."
        ),
    ] = None,
    offline: Annotated[bool, typer.Option(help="Do not ask the providers (store only).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show per region the analysis chain (first and last day, gaps, provisional days), the
    current model and the last run; per source the newest day at the provider, the newest
    staged day and gaps."""
    with json_stdout(as_json) as out:
        _status(sources, region, offline, out if as_json else None)


def _status(sources: str, region: str | None, offline: bool, out: TextIO | None) -> None:
    cfg = _settings()
    from smda.ingest.fetch import source_status
    from smda.ops import open_runtime
    from smda.ops.status import known_regions, region_status

    names = _source_names(sources)
    if region:
        boxes: list[BBox | None] = [_parse_region(region, cfg)]
    elif cfg.bbox is not None:
        boxes = [cfg.bbox]
    else:  # every region smda has made folders for; none yet: the globe, as the other commands
        boxes = [info.bbox for info in known_regions(cfg).values()] or [None]
    found = []
    for box in boxes:
        rt = open_runtime(cfg, region=box)
        found.append(region_status(rt, source_status(names, rt.ctx, poll=not offline)))
    today = found[0].today
    if out is not None:
        emit_json(
            "status",
            0,
            {
                "today": today,
                "data_dir": str(cfg.data_dir),
                "providers_asked": not offline,
                "regions": [st.to_json() for st in found],
            },
            file=out,
        )
        return
    shown = Console(width=max(Console().width, 120))
    shown.print(f"smda status (today at the providers: {today}; data in {cfg.data_dir})")
    for st in found:
        _print_region(shown, st, offline=offline)


def _ranges(ranges: list[list[str]], limit: int = 3) -> str:
    shown = [a if a == b else f"{a}..{b}" for a, b in ranges[:limit]]
    return ", ".join(shown) + (f" … ({len(ranges)} in all)" if len(ranges) > limit else "")


def _print_region(out: Console, st: RegionStatus, *, offline: bool) -> None:
    """The human view of a region's status: a few lines, then the sources' table."""
    doc = st.to_json()
    box = doc["bbox"]
    out.print(
        f"\n[bold]region {doc['key']}[/bold]  west {box['west']:g} south {box['south']:g} "
        f"east {box['east']:g} north {box['north']:g}  ({doc['grid_shape']['lat']}×"
        f"{doc['grid_shape']['lon']} cells of {doc['resolution_deg']:g}°)"
    )
    chain = doc["chain"]
    if chain["error"]:
        out.print(f"  chain     [red]unreadable: {escape(chain['error'])}[/red]")
    elif chain["days"] == 0:
        out.print("  chain     empty (run `smda backfill` or `smda run`)")
    else:
        lag = "" if chain["lag_days"] is None else f", {chain['lag_days']} d behind today"
        gaps = _ranges(chain["gaps"]) or "none"
        prov = chain["provisional"]
        inputs = ", ".join(f"{k} {v}" for k, v in prov["by_input"].items())
        out.print(
            f"  chain     {chain['first_day']} … {chain['last_day']}: {chain['days']} day(s){lag}"
        )
        out.print(f"            gaps: {gaps}")
        out.print(
            f"            provisional: {prov['days']} day(s)"
            + (f" ({inputs}): {_ranges(prov['ranges'])}" if prov["days"] else "")
        )
        if chain["unreadable_days"]:
            out.print(
                f"            [red]unreadable: {', '.join(chain['unreadable_days'][:5])}[/red]"
            )
    model = doc["model"]
    if model["error"]:
        out.print(f"  model     [red]{escape(model['error'])}[/red]")
    elif model["version"] is None:
        out.print("  model     none (run `smda train`)")
    else:
        period = model["training_period"]
        trained = f", trained on {period['start']} … {period['end']}" if period else ""
        out.print(
            f"  model     {model['version']} (registered {model['registered_at']}, promoted "
            f"{model['promoted_at']}{trained})"
        )
    run = doc["last_run"]
    if run is None:
        out.print("  last run  none recorded")
    else:
        days = f", days {run['first_day']} … {run['last_day']}" if run["days_run"] else ""
        colour = "green" if run["status"] == "completed" else "yellow"
        reason = f": {escape(run['reason'])}" if run["reason"] else ""
        out.print(
            f"  last run  {run['job']} finished {run['finished_at']} "
            f"[{colour}]{run['status']}[/{colour}] (exit {run['exit_code']}, "
            f"{run['days_run']} day(s) run{days}){reason}"
        )
    table = Table(title=f"inputs of {doc['key']}")
    columns = ("source", "newest at provider", "staged", "newest staged", "behind", "gaps")
    for col in (*columns, "provisional"):
        table.add_column(col)
    for src in st.sources:
        if src.provider_error:
            provider = f"[red]unreachable: {escape(src.provider_error[:60])}[/red]"
        else:
            provider = str(src.provider_newest) if src.provider_newest else "nothing yet"
        table.add_row(
            src.source,
            provider if not offline else "(not asked)",
            str(src.staged_count),
            str(src.staged_last or "—"),
            "" if src.behind is None else f"{src.behind} d",
            _ranges([[str(a), str(b)] for a, b in src.gaps]) or "none",
            str(src.provisional),
        )
    out.print(table)
