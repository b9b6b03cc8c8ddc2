"""smda's command-line interface (``smda --help``).

The CLI is an edge: it loads the settings once, sets up logging, calls library functions and
presents their results. It holds no logic of its own.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from smda import __version__, cli_evaluate, cli_ops, cli_train
from smda.cli_common import (
    DEMO_REGION,
    RegionOpt,
    SeedOpt,
    console,
)
from smda.cli_common import parse_date as _parse_date
from smda.cli_common import parse_region as _parse_region
from smda.cli_common import settings as _settings
from smda.errors import SmdaError

if TYPE_CHECKING:  # the twin is imported lazily: the CLI starts fast
    from smda.twin.service import TwinConfig
    from smda.twin.world import WorldSpec

app = typer.Typer(
    help="smda — seamless daily global surface soil moisture (ML-DA: TC labels, LightGBM, SMAP nudging).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
twin_app = typer.Typer(
    help="The offline twin: a synthetic world with a known truth behind loopback replicas of the providers.",
    no_args_is_help=True,
)
app.add_typer(twin_app, name="twin")


def _world_spec(region: str, seed: int, epoch: str) -> WorldSpec:
    from smda.twin.world import WorldSpec

    return WorldSpec(seed=seed, region=_parse_region(region), epoch=_parse_date(epoch, "--epoch"))


def _twin_config(region: str, today: str | None, seed: int, epoch: str) -> TwinConfig:
    from smda.twin.service import TwinConfig

    today_d = _parse_date(today, "--today") if today else datetime.now(UTC).date()
    return TwinConfig(world=_world_spec(region, seed, epoch), today=today_d)


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """smda command-line interface. Settings come from SMDA_* environment variables (see README)."""
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
def config() -> None:
    """Show the effective configuration (SMDA_* variables) — no secrets are shown."""
    settings = _settings()
    typer.echo(json.dumps(json.loads(settings.model_dump_json()), indent=2))


@twin_app.command("serve")
def twin_serve(
    region: RegionOpt = DEMO_REGION,
    today: Annotated[
        str | None,
        typer.Option(help="The date the twin believes is today (default: real today, UTC)."),
    ] = None,
    seed: SeedOpt = 42,
    epoch: Annotated[
        str, typer.Option(help="Start of the world's water-balance integration.")
    ] = "2015-01-01",
    endpoints_file: Annotated[
        Path, typer.Option(help="Where to write the endpoints JSON (use it as SMDA_ENDPOINTS).")
    ] = Path("twin-endpoints.json"),
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where replicas keep generated files (default: a temporary folder)."),
    ] = None,
    faults: Annotated[
        Path | None,
        typer.Option(
            help="JSON list of faults [{'provider': 'cds', 'kind': 'status', 'status': 503, ...}]."
        ),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="JSON list of drifts from a date [{'kind': 'smap_bias', 'start': 'YYYY-MM-DD', "
            "'bias': 0.05}, ...] (README: Drift scenarios)."
        ),
    ] = None,
) -> None:
    """Run the offline twin's replicas (CDS, Earthdata, MSWEP) until interrupted.

    Writes the endpoints file; `export SMDA_ENDPOINTS=<file>` points smda at the twin.
    """
    _settings()
    from smda.twin.faults import Fault
    from smda.twin.scenario import Scenario, ScenarioError
    from smda.twin.service import Twin

    config = _twin_config(region, today, seed, epoch)
    if scenario is not None:
        try:
            config = replace(config, scenario=Scenario.read(scenario))
        except ScenarioError as exc:
            raise typer.BadParameter(str(exc), param_hint="--scenario") from exc
    twin = Twin(config, workdir)
    if faults is not None:
        for item in json.loads(faults.read_text()):
            provider = item.pop("provider")
            twin.add_fault(provider, Fault.from_dict(item))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with twin:
        twin.endpoints().write(endpoints_file)
        console.print(
            f"twin serving (today {twin.clock.today}, region {region}, seed {seed}); endpoints in {endpoints_file}"
        )
        console.print(f"  export SMDA_ENDPOINTS={endpoints_file.resolve()}")
        for drift in config.scenario.to_json():
            console.print(f"  scenario: {json.dumps(drift)}", markup=False)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    console.print("twin stopped")


@twin_app.command("truth")
def twin_truth(
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="netCDF file to write the truth to.")],
    region: RegionOpt = DEMO_REGION,
    seed: SeedOpt = 42,
    epoch: str = "2015-01-01",
) -> None:
    """Write the twin world's true surface soil moisture (m3 m-3) for a period to netCDF."""
    _settings()
    from smda.atomic import atomic_path
    from smda.twin.world import World

    world = World(_world_spec(region, seed, epoch))
    truth = world.truth(_parse_date(start, "--start"), _parse_date(end, "--end"))
    with atomic_path(out) as tmp:
        truth.to_netcdf(tmp)
    console.print(f"wrote truth {dict(truth.sizes)} to {out}")


@twin_app.command("params")
def twin_params(region: RegionOpt = DEMO_REGION, seed: SeedOpt = 42) -> None:
    """Print the true error parameters of each synthetic product (JSON)."""
    from dataclasses import asdict

    from smda.twin.world import World, WorldSpec

    world = World(WorldSpec(seed=seed, region=_parse_region(region)))
    typer.echo(
        json.dumps({k: asdict(v) for k, v in world.error_params.items()}, indent=2, default=str)
    )


@twin_app.command("ismn")
def twin_ismn(
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD.")],
    out: Annotated[
        Path, typer.Option(help="Zip file to write (an ISMN download, header+values format).")
    ],
    region: RegionOpt = DEMO_REGION,
    seed: SeedOpt = 42,
    epoch: str = "2015-01-01",
) -> None:
    """Write the twin world's in-situ stations as an ISMN download (zip) for `smda fetch ismn`."""
    _settings()
    from smda.twin.formats.ismn import IsmnStation, write_ismn_archive
    from smda.twin.world import World

    world = World(_world_spec(region, seed, epoch))
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    stations = []
    for st in world.stations():
        frame = world.station_hourly(st, first, last)
        stations.append(
            IsmnStation(
                network=st.network,
                station=st.name,
                lat=st.lat,
                lon=st.lon,
                elevation=st.elevation,
                depth_from=st.depth_from,
                depth_to=st.depth_to,
                sensor=st.sensor,
                times=frame.index.values,
                values=frame["soil_moisture"].values,
                flags=list(frame["soil_moisture_flag"]),
                provider_flags=list(frame["soil_moisture_orig_flag"]),
            )
        )
    write_ismn_archive(out, stations)
    console.print(f"wrote {len(stations)} stations {first}..{last} to {out}")


@app.command()
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where the twin keeps its files (default: <data_dir>/twin-demo)."),
    ] = None,
    seed: SeedOpt = 42,
) -> None:
    """The whole system on the offline twin: train, backfill, daily runs, COG/STAC, OSSE table."""
    from smda.demo import DemoConfig, run_demo

    settings = _settings()
    cfg = DemoConfig(seed=seed)
    report = run_demo(
        settings,
        workdir or settings.data_dir / "twin-demo",
        cfg,
        say=lambda line: console.print(f"[bold]demo[/bold] {line}"),
    )
    out = Console(width=max(Console().width, 120))
    if report.osse is not None:
        table = Table(title="OSSE: skill against the twin's truth (median over cells)")
        table.add_column("series")
        for col in report.osse.columns:
            table.add_column(str(col), justify="right")
        for name, row in report.osse.iterrows():
            table.add_row(str(name), *(_cell(v) for v in row.to_numpy()))
        out.print(table)
    done = sum(r.status != "skipped" for r in report.runs)
    out.print(
        f"model {report.model_version} ({'trained' if report.trained else 'reused'}); "
        f"{done} day(s) computed, {len(report.runs) - done} already done"
    )
    for name, path in report.paths.items():
        out.print(f"  {name:8} {path}")
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items())
    out.print(f"timings: {timing}")


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) >= 0.1 else f"{value:.4f}"
    return str(value)


SourcesArg = Annotated[
    str, typer.Argument(help="Source name, comma-separated names, or 'all' (era5, mswep, smap).")
]


def _source_names(text: str) -> list[str]:
    from smda.sources import OPERATIONAL, SOURCE_NAMES

    names = (
        list(OPERATIONAL) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"unknown source(s) {unknown}; choose from {', '.join(SOURCE_NAMES)} or 'all'"
        )
    return names


@app.command()
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

    from smda.ingest import DayOutcome, fetch_range
    from smda.runtime import make_context

    names = _source_names(sources)
    first = _parse_date(start, "--start")
    last = _parse_date(end, "--end") if end else first
    if last < first:
        raise typer.BadParameter(f"--end {last} is before --start {first}", param_hint="--end")
    ctx = make_context(settings, region=_parse_region(region) if region else None, ismn_path=ismn)
    total = len(names) * ((last - first).days + 1)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("fetching", total=total)

        def advance(outcome: DayOutcome) -> None:
            bar.update(
                task, advance=1, description=f"{outcome.source} {outcome.day} {outcome.status}"
            )

        report = fetch_range(names, first, last, ctx, progress=advance)
    if "era5" in names and report.by_status("failed", "era5") == []:
        from smda.sources.era5 import stage_static

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


@app.command()
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
    from smda.ingest import source_status
    from smda.runtime import make_context

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


app.command("train")(cli_train.train)
app.command("evaluate")(cli_evaluate.evaluate)
app.command("run")(cli_ops.run_daily)
app.command("backfill")(cli_ops.backfill)


def run() -> None:
    """Entry point that turns smda errors into a one-line message and exit code 1."""
    try:
        app()
    except SmdaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
