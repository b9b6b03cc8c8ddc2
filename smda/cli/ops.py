"""``smda run`` and ``smda backfill``: the daily cycle and backfills without a Prefect server.

Same code paths as the Prefect flows (:mod:`smda.ops`), with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smda.cli.common import (
    JsonOpt,
    console,
    emit_json,
    json_stdout,
    parse_date,
    parse_region,
    settings,
)
from smda.config import DASK_SCHEDULER_ENV
from smda.errors import MissingInputs, SmdaError
from smda.ingest.fetch import DayOutcome, IngestReport

if TYPE_CHECKING:  # smda.ops is imported lazily: the CLI starts fast
    from smda.config import Settings
    from smda.geo.grid import BBox
    from smda.ops import DayRun, Runtime
    from smda.ops.outcome import RunOutcome
    from smda.ops.plan import DailyPlan
    from smda.ops.tiles import Tiling

__all__ = ["backfill", "run_daily"]

RegionArg = Annotated[
    str | None,
    typer.Option(
        help="Region 'west,south,east,north' or a region key (default: SMDA_REGION or the globe)."
    ),
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


def _day_json(run: DayRun) -> dict[str, Any]:
    """A day of a run in ``--json`` output (fractions 0–1, O−F in m3 m-3, seconds)."""
    return {
        "day": run.day,
        "status": run.status,
        "model_version": run.model_version,
        "assimilated_fraction": round(run.assimilated_fraction, 4),
        "innovation_mean": run.innovation_mean,
        "innovation_sd": run.innovation_sd,
        "n_obs": run.n_obs,
        "seconds": round(run.seconds, 2),
        "state": run.state,
        "cog": run.cog,
        "item": run.item,
        "invalidated": run.invalidated,
    }


def _region_json(cfg: Settings, bbox: BBox | None) -> dict[str, Any]:
    from smda.ops import RunContext
    from smda.storage.regions import RegionInfo

    info = RegionInfo.of_grid(RunContext.create(cfg, region=bbox).grid).to_json()
    return {"key": info["key"], "bbox": info["bbox"]}


def _counts(report: IngestReport | None) -> dict[str, dict[str, int]] | None:
    return None if report is None else report.counts()


class _Doc(dict[str, Any]):
    """The ``--json`` document of a run, filled as the run goes, and where it is printed."""

    def __init__(self, out: TextIO, **items: Any) -> None:
        super().__init__(**items)
        self.out = out


def _finish(
    command: str,
    rt: Runtime | None,
    outcome: RunOutcome,
    started: float,
    doc: _Doc | None = None,
) -> None:
    """Report how the run ended (metrics, and a line for the operator, or with ``--json`` the
    run's document) and exit with its code (:data:`smda.ops.outcome.EXIT_CODES`: 0 done, 75
    waiting, 1 failed, 73 busy)."""
    from smda.ops import report_metrics

    if rt is not None and outcome.status != "completed":
        report_metrics(rt, f"smda_{JOBS[command]}", [], outcome=outcome, started_at=started)
    if doc is not None:
        advice = "" if outcome.status == "completed" else outcome.advice
        emit_json(
            command,
            outcome.exit_code,
            {"status": outcome.status, "reason": outcome.reason, "advice": advice, **doc},
            file=doc.out,
        )
    elif outcome.status == "waiting":
        console.print(f"[yellow]{outcome.reason}[/yellow]\n{outcome.advice}")
    elif outcome.status != "completed":
        console.print(f"[red]error ({outcome.status}):[/red] {outcome.reason}\n{outcome.advice}")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


JOBS = {"run": "daily", "backfill": "backfill"}
"""The metrics job (``smda_<job>``) of each command."""


def _failed(exc: SmdaError) -> RunOutcome:
    """The outcome of a run stopped by ``exc``: busy when another writer holds the region."""
    from smda.ops.outcome import RunOutcome
    from smda.storage.locks import RegionBusy

    return RunOutcome("busy" if isinstance(exc, RegionBusy) else "failed", str(exc))


def run_daily(region: RegionArg = None, as_json: JsonOpt = False) -> None:
    """Run the daily cycle once: poll, fetch, step every ready day, publish (like the daily flow).

    Exit code 0 when every ready day ran, 75 when waiting for inputs that are not published
    yet (the next run picks them up), 1 when it failed (a provider refused smda, inputs could
    not be fetched, an error), 73 when another process writes the region.
    """
    with json_stdout(as_json) as out:
        _run_daily(region, out if as_json else None)


def _run_daily(region: str | None, out: TextIO | None) -> None:
    from smda.ops import first_day_to_run, open_runtime, plan_daily, report_metrics
    from smda.ops.outcome import daily_outcome

    cfg = settings()  # a bad setting or --region: one line (smda.cli.run), before anything runs
    bbox = parse_region(region, cfg) if region else None
    doc = _Doc(out, region=_region_json(cfg, bbox)) if out is not None else None
    started, rt = time.time(), None
    try:
        rt = open_runtime(cfg, region=bbox)
        plan = plan_daily(rt)
        console.print(plan.describe())
        if doc is not None:
            doc["plan"] = _plan_json(plan)
        outcome = daily_outcome(plan)
        if not plan.ready:
            report_metrics(rt, "smda_daily", [], plan=plan, outcome=outcome, started_at=started)
            _finish("run", None, outcome, started, doc)
            return
        report = _fetch(rt, plan.ready, f"{len(plan.ready)} day(s)")
        first = first_day_to_run(rt, plan)  # after the fetch: it may have revised inputs
        if first < plan.ready[0]:
            console.print(f"inputs changed since {first} was computed: reprocessing from it")
        if doc is not None:
            doc.update(fetch=_counts(report), first_day_run=first)
        runs, missing = _cycle(rt, first, plan.ready[-1])
    except SmdaError as exc:
        _finish("run", rt, _failed(exc), started, doc)
        return
    outcome = daily_outcome(plan, report, missing)
    report_metrics(rt, "smda_daily", runs, plan=plan, outcome=outcome, started_at=started)
    _print_runs([r.as_row() for r in runs])
    console.print(f"products: {rt.publisher.location(rt.publisher.catalog_path)}")
    if doc is not None:
        doc.update(
            days=[_day_json(r) for r in runs],
            catalog=rt.publisher.location(rt.publisher.catalog_path),
        )
    _finish("run", None, outcome, started, doc)


def _plan_json(plan: DailyPlan) -> dict[str, Any]:
    return {
        "last_analysis": plan.last_completed,
        "ready": plan.ready,
        "waiting": plan.waiting,
        "newest": plan.newest,
        "reprocess_from": plan.reprocess_from,
        "errors": {s: {"kind": e.kind, "message": e.message} for s, e in plan.errors.items()},
    }


def _cycle(rt: Runtime, first: date, last: date) -> tuple[list[DayRun], MissingInputs | None]:
    """Step ``first`` … ``last`` in order; stop at the first day whose inputs are not staged
    (as the daily flow does) and return it with the days run."""
    from smda.ops import backfill_days

    runs: list[DayRun] = []
    try:
        backfill_days(rt, first, last, progress=runs.append)
    except MissingInputs as exc:
        console.print(f"[yellow]stopped after {len(runs)} day(s): {exc}")
        return runs, exc
    return runs, None


def backfill(
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD.")],
    region: RegionArg = None,
    force: Annotated[
        bool, typer.Option(help="Recompute days already done (invalidates the later days).")
    ] = False,
    fetch: Annotated[bool, typer.Option(help="Fetch and stage the inputs first.")] = True,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            envvar=DASK_SCHEDULER_ENV,
            help="Step the days in tiles on the Dask scheduler at ADDRESS (tcp://host:8786); "
            "its workers need the data directory.",
        ),
    ] = None,
    tile_cells: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Step in tiles of about N cells (whole grid rows) on Dask: the scheduler's "
            "workers, else a local cluster of one worker per core. Default with a scheduler: "
            "10000.",
        ),
    ] = None,
    block_days: Annotated[
        int, typer.Option(min=1, help="Days a tile advances per Dask task (tiled runs).")
    ] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Backfill a date range: fetch inputs, then step the days in order (resumable).

    With --dask-scheduler (or SMDA_DASK_SCHEDULER) or --tile-cells, the region is cut into
    tiles that advance through the days on Dask workers; the days are assembled into the same
    files, byte for byte, and a re-run recomputes only the tiles not done.

    Exit code 0 when every day is in the chain, 1 when the backfill failed (an input could not
    be fetched or staged, an error), 73 when another process writes the region; a re-run
    resumes at the first day not done.
    """
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    tiles = None
    dask_scheduler = dask_scheduler or settings().dask_scheduler  # the option, else the settings
    if dask_scheduler or tile_cells:
        from smda.ops.tiles import DEFAULT_TILE_CELLS, Tiling

        tiles = Tiling(dask_scheduler or None, tile_cells or DEFAULT_TILE_CELLS, block_days)
    with json_stdout(as_json) as out:
        _backfill(
            first, last, region, force=force, fetch=fetch, out=out if as_json else None, tiles=tiles
        )


def _step(
    rt: Runtime,
    first: date,
    last: date,
    *,
    force: bool,
    progress: Callable[[DayRun], None],
    tiles: Tiling | None,
) -> list[DayRun]:
    """Step the days in one process, or in tiles on Dask."""
    from smda.ops import backfill_days

    if tiles is None:
        return backfill_days(rt, first, last, force=force, progress=progress)
    from smda.ops.cluster import dask_client
    from smda.ops.tiles import tiled_backfill

    with dask_client(tiles.scheduler) as client:
        done = tiled_backfill(
            rt,
            first,
            last,
            client,
            tile_cells=tiles.tile_cells,
            block_days=tiles.block_days,
            force=force,
            progress=progress,
        )
    console.print(f"tiles: {done.computed} block(s) computed, {done.reused} reused")
    return done.runs


def _backfill(
    first: date,
    last: date,
    region: str | None,
    *,
    force: bool,
    fetch: bool,
    out: TextIO | None,
    tiles: Tiling | None = None,
) -> None:
    from smda.ops import open_runtime, report_metrics
    from smda.ops.outcome import RunOutcome

    cfg = settings()
    bbox = parse_region(region, cfg) if region else None
    doc = None if out is None else _Doc(out, region=_region_json(cfg, bbox), start=first, end=last)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    started, rt = time.time(), None
    try:
        rt = open_runtime(cfg, region=bbox)
        if fetch:
            report = _fetch(rt, days, f"{len(days)} day(s)")
            if doc is not None:
                doc["fetch"] = _counts(report)
        with _progress() as bar:
            task = bar.add_task("cycle", total=len(days))

            def advance(run: DayRun) -> None:
                bar.update(task, advance=1, description=f"cycle {run.day} {run.status}")

            runs = _step(rt, first, last, force=force, progress=advance, tiles=tiles)
    except SmdaError as exc:
        _finish("backfill", rt, _failed(exc), started, doc)
        return
    report_metrics(rt, "smda_backfill", runs, started_at=started)
    done = sum(r.status != "skipped" for r in runs)
    console.print(
        f"{done} day(s) computed, {len(runs) - done} already done; products: {rt.publisher.location(rt.publisher.catalog_path)}"
    )
    if doc is not None:
        doc.update(
            days_computed=done,
            days_skipped=len(runs) - done,
            days=[_day_json(r) for r in runs],
            catalog=rt.publisher.location(rt.publisher.catalog_path),
        )
        _finish("backfill", None, RunOutcome("completed"), started, doc)
