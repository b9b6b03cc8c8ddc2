"""``smda run`` and ``smda backfill``: the daily cycle and backfills without a Prefect server.

Same code paths as the Prefect flows (:mod:`smda.ops`), with a progress bar.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smda.cli.common import console, parse_date, settings
from smda.errors import SmdaError
from smda.ingest.fetch import DayOutcome, IngestReport

if TYPE_CHECKING:  # smda.ops is imported lazily: the CLI starts fast
    from smda.ops import Runtime

__all__ = ["backfill", "run_daily"]

RegionArg = Annotated[
    str | None,
    typer.Option(help="Region 'west,south,east,north' (default: SMDA_REGION or the globe)."),
]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _fetch(rt: Runtime, days: list[date], what: str) -> IngestReport:
    from smda.ops import fetch_days

    with _progress() as bar:
        task = bar.add_task(f"fetch {what}", total=None)

        def advance(outcome: DayOutcome) -> None:
            bar.update(task, advance=1, description=f"fetch {outcome.source} {outcome.day}")

        report = fetch_days(rt, days, progress=advance)
    failed = report.by_status("failed")
    for outcome in failed[:10]:
        console.print(f"[red]{outcome.source} {outcome.day}: {outcome.reason}")
    return report


def _print_runs(rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    table = Table(title="days")
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def run_daily(region: RegionArg = None) -> None:
    """Run the daily cycle once: poll, fetch, step every ready day, publish (like the daily flow)."""
    from smda.ops import backfill_days, open_runtime, plan_daily, report_metrics

    try:
        rt = open_runtime(settings(), region=region)
        plan = plan_daily(rt)
        console.print(plan.describe())
        if not plan.ready:
            report_metrics(rt, "smda_daily", [], plan=plan)
            console.print("[yellow]waiting: nothing to run yet; the next run picks it up")
            return
        _fetch(rt, plan.ready, f"{len(plan.ready)} day(s)")
        first = min(plan.ready[0], plan.reprocess_from or plan.ready[0])
        if first < plan.ready[0]:
            console.print(f"inputs changed since {first} was computed: reprocessing from it")
        runs = backfill_days(rt, first, plan.ready[-1])
    except SmdaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    report_metrics(rt, "smda_daily", runs, plan=plan)
    _print_runs([r.as_row() for r in runs])
    console.print(f"products: {rt.publisher.catalog_path}")


def backfill(
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD.")],
    region: RegionArg = None,
    force: Annotated[
        bool, typer.Option(help="Recompute days already done (invalidates the later days).")
    ] = False,
    fetch: Annotated[bool, typer.Option(help="Fetch and stage the inputs first.")] = True,
) -> None:
    """Backfill a date range: fetch inputs, then step the days in order (resumable)."""
    from smda.ops import DayRun, backfill_days, open_runtime

    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    try:
        rt = open_runtime(settings(), region=region)
        if fetch:
            _fetch(rt, days, f"{len(days)} day(s)")
        with _progress() as bar:
            task = bar.add_task("cycle", total=len(days))

            def advance(run: DayRun) -> None:
                bar.update(task, advance=1, description=f"cycle {run.day} {run.status}")

            runs = backfill_days(rt, first, last, force=force, progress=advance)
    except SmdaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    done = sum(r.status != "skipped" for r in runs)
    console.print(
        f"{done} day(s) computed, {len(runs) - done} already done; products: {rt.publisher.catalog_path}"
    )
