"""``smda fetch`` and ``smda status``: fetch and stage inputs, and what is staged where."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smda.cli.common import console
from smda.cli.common import parse_date as _parse_date
from smda.cli.common import parse_region as _parse_region
from smda.cli.common import settings as _settings
from smda.errors import SmdaError

__all__ = ["fetch", "status"]

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
        typer.Option(help="Region 'west,south,east,north' (default: SMDA_REGION or the globe)."),
    ] = None,
    ismn: Annotated[
        Path | None, typer.Option(help="ISMN download (folder or zip) for the 'ismn' source.")
    ] = None,
) -> None:
    """Fetch and stage sources for a date range (idempotent: only what is new or changed).

    Shows progress, then a summary per source of what was fetched, skipped, not yet available
    and failed (with reasons). Exits 1 if anything failed.
    """
    settings = _settings()
    from rich.progress import Progress

    from smda.ingest.context import make_context
    from smda.ingest.fetch import DayOutcome, fetch_range

    names = _source_names(sources)
    first = _parse_date(start, "--start")
    last = _parse_date(end, "--end") if end else first
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    ctx = make_context(settings, region=_parse_region(region) if region else None, ismn_path=ismn)
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
                console.print(f"static fields: {stage_static(ctx)}")
            except SmdaError as exc:
                console.print(f"[red]static fields:[/red] {exc}")
                raise typer.Exit(1) from exc
    table = Table(
        title=f"smda fetch {','.join(names)} {first}..{last} (today at the providers: {ctx.today})"
    )
    statuses = ("fetched", "replaced", "unchanged", "skipped", "not_available", "failed")
    table.add_column("source")
    for status in statuses:
        table.add_column(status.replace("_", " "), justify="right")
    for name, counts in report.counts().items():
        table.add_row(name, *(str(counts.get(s, 0)) for s in statuses))
    Console(width=max(Console().width, 120)).print(table)
    for outcome in report.by_status("failed") + report.by_status("replaced"):
        console.print(f"  {outcome.source} {outcome.day} {outcome.status}: {outcome.reason}")
    if not report.ok:
        raise typer.Exit(1)


def status(
    sources: Annotated[
        str, typer.Argument(help="Sources to show, comma-separated, or 'all'.")
    ] = "all",
    region: Annotated[
        str | None,
        typer.Option(help="Region 'west,south,east,north' (default: SMDA_REGION or the globe)."),
    ] = None,
    offline: Annotated[bool, typer.Option(help="Do not ask the providers (store only).")] = False,
) -> None:
    """Show, per source, the newest day at the provider, the newest staged day, and gaps."""
    settings = _settings()
    from smda.ingest.context import make_context
    from smda.ingest.fetch import source_status

    names = _source_names(sources)
    ctx = make_context(settings, region=_parse_region(region) if region else None)
    table = Table(
        title=f"smda status (today at the providers: {ctx.today}; data in {settings.data_dir})"
    )
    for col in (
        "source",
        "newest at provider",
        "staged",
        "newest staged",
        "behind",
        "gaps",
        "provisional",
    ):
        table.add_column(col)
    for st in source_status(names, ctx, poll=not offline):
        if st.provider_error:
            provider = f"[red]unreachable: {st.provider_error[:60]}[/red]"
        else:
            provider = str(st.provider_newest) if st.provider_newest else "nothing yet"
        gaps = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in st.gaps[:3]) + (
            " …" if len(st.gaps) > 3 else ""
        )
        table.add_row(
            st.source,
            provider if not offline else "(not asked)",
            str(st.staged_count),
            str(st.staged_last or "—"),
            "" if st.behind is None else f"{st.behind} d",
            gaps or "none",
            str(st.provisional),
        )
    Console(width=max(Console().width, 120)).print(table)
