"""smda's command-line interface (``smda --help``).

The CLI is an edge: it loads the settings once, sets up logging, calls library functions and
presents their results. It holds no logic of its own. One module per command group:
:mod:`~smda.cli.ingest` (``fetch``, ``status``), :mod:`~smda.cli.ops` (``run``, ``backfill``),
:mod:`~smda.cli.train`, :mod:`~smda.cli.evaluate`, :mod:`~smda.cli.verify`, :mod:`~smda.cli.twin` (``twin …``) and
:mod:`~smda.cli.demo`; :mod:`~smda.cli.common` holds what they share.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from smda import __version__
from smda.cli import demo as cli_demo
from smda.cli import evaluate as cli_evaluate
from smda.cli import ingest as cli_ingest
from smda.cli import ops as cli_ops
from smda.cli import train as cli_train
from smda.cli import twin as cli_twin
from smda.cli import verify as cli_verify
from smda.cli.common import console
from smda.cli.common import settings as _settings
from smda.errors import SmdaError

__all__ = ["app", "run"]

app = typer.Typer(
    help="smda — seamless daily global surface soil moisture (ML-DA: TC labels, LightGBM, SMAP nudging).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_twin.app, name="twin")


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
    """Show the effective configuration (SMDA_* variables) — no secrets are shown: credentials
    and query values in URLs are replaced by ``***``."""
    from smda.ingest.endpoints import redact_url

    settings = json.loads(_settings().model_dump_json())
    shown = {k: redact_url(v) if isinstance(v, str) else v for k, v in settings.items()}
    typer.echo(json.dumps(shown, indent=2))


app.command("fetch")(cli_ingest.fetch)
app.command("status")(cli_ingest.status)
app.command("train")(cli_train.train)
app.command("evaluate")(cli_evaluate.evaluate)
app.command("run")(cli_ops.run_daily)
app.command("backfill")(cli_ops.backfill)
app.command("verify")(cli_verify.verify)
app.command("demo")(cli_demo.demo)


def run() -> None:
    """Entry point that turns smda errors into a one-line message and exit code 1 (73 when
    another process writes the region: :data:`smda.storage.locks.EXIT_BUSY`)."""
    try:
        app()
    except SmdaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(getattr(exc, "exit_code", 1)) from None
