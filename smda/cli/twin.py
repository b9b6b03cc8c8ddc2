"""``smda twin``: the offline twin — a synthetic world with a known truth behind loopback
replicas of the providers (serve it, write its truth, list its error parameters, export its
stations). With the demo, the only part of smda that imports the twin (:mod:`smda_twin`).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import xarray as xr

from smda.cli.common import DEMO_REGION, RegionOpt, SeedOpt, console
from smda.cli.common import parse_date as _parse_date
from smda.cli.common import parse_region as _parse_region
from smda.cli.common import settings as _settings
from smda.errors import ConfigError
from smda.geo.grid import BBox

if TYPE_CHECKING:  # the twin is imported lazily: the CLI starts fast
    from smda_twin.service import TwinConfig
    from smda_twin.world import WorldSpec

__all__ = ["app", "truth_of"]

app = typer.Typer(
    help="The offline twin: a synthetic world with a known truth behind loopback replicas of the providers.",
    no_args_is_help=True,
)


def _world_spec(region: str, seed: int, epoch: str) -> WorldSpec:
    from smda_twin.world import WorldSpec

    return WorldSpec(seed=seed, region=_parse_region(region), epoch=_parse_date(epoch, "--epoch"))


def _twin_config(region: str, today: str | None, seed: int, epoch: str) -> TwinConfig:
    from smda_twin.service import TwinConfig

    today_d = _parse_date(today, "--today") if today else datetime.now(UTC).date()
    return TwinConfig(world=_world_spec(region, seed, epoch), today=today_d)


def truth_of(seed: int, region: BBox, start: date, end: date, *, epoch: date) -> xr.DataArray:
    """The twin world's true soil moisture ``(time, lat, lon)`` (m3 m-3) over ``region``, to
    score against (``smda evaluate --truth twin``, the demo).

    The world is :class:`smda_twin.world.World` of ``WorldSpec(seed, region, epoch)``: give
    the spec the twin served (``smda twin serve --seed … --epoch …``).

    Raises
    ------
    ConfigError
        If ``start`` is before the world's epoch.
    """
    from smda_twin.world import World, WorldSpec

    if start < epoch:
        raise ConfigError(f"the twin's truth starts at its epoch {epoch}; asked from {start}")
    return World(WorldSpec(seed=seed, region=region, epoch=epoch)).truth(start, end)


@app.command("serve")
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
    bind: Annotated[
        str, typer.Option(help="Address the servers bind (0.0.0.0 in a container network).")
    ] = "127.0.0.1",
    host: Annotated[
        str, typer.Option(help="Host name of the data servers in the endpoints' URLs.")
    ] = "127.0.0.1",
    login_host: Annotated[
        str,
        typer.Option(help="Host name of the Earthdata Login server (another name than --host)."),
    ] = "localhost",
) -> None:
    """Run the offline twin's replicas (CDS, Earthdata, MSWEP) until interrupted.

    Writes the endpoints file; `export SMDA_ENDPOINTS=<file>` points smda at the twin. On
    loopback by default; in a container network give --bind 0.0.0.0 and the names the other
    containers resolve (docker/compose.yaml, profile twin).
    """
    _settings()
    from smda_twin.faults import Fault
    from smda_twin.httpbase import Network
    from smda_twin.scenario import Scenario, ScenarioError
    from smda_twin.service import Twin

    try:
        network = Network(bind=bind, host=host, login_host=login_host)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--host/--login-host") from exc
    config = replace(_twin_config(region, today, seed, epoch), network=network)
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


@app.command("truth")
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
    from smda.storage.atomic import atomic_path
    from smda_twin.world import World

    world = World(_world_spec(region, seed, epoch))
    truth = world.truth(_parse_date(start, "--start"), _parse_date(end, "--end"))
    with atomic_path(out) as tmp:
        truth.to_netcdf(tmp)
    console.print(f"wrote truth {dict(truth.sizes)} to {out}")


@app.command("params")
def twin_params(region: RegionOpt = DEMO_REGION, seed: SeedOpt = 42) -> None:
    """Print the true error parameters of each synthetic product (JSON)."""

    from smda_twin.world import World, WorldSpec

    world = World(WorldSpec(seed=seed, region=_parse_region(region)))
    typer.echo(
        json.dumps({k: asdict(v) for k, v in world.error_params.items()}, indent=2, default=str)
    )


@app.command("ismn")
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
    from smda_twin.formats.ismn import IsmnStation, write_ismn_archive
    from smda_twin.world import World

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
