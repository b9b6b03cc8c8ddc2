"""smda's command-line interface (``smda --help``).

The CLI is an edge: it loads the settings once, sets up logging, calls library functions and
presents their results. It holds no logic of its own. One module per command group:
:mod:`~smda.cli.ingest` (``fetch``, ``status``), :mod:`~smda.cli.ops` (``run``, ``backfill``),
:mod:`~smda.cli.train`, :mod:`~smda.cli.evaluate`, :mod:`~smda.cli.verify`, :mod:`~smda.cli.export`, :mod:`~smda.cli.plot`, :mod:`~smda.cli.twin` (``twin …``) and
:mod:`~smda.cli.demo`; :mod:`~smda.cli.common` holds what they share.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from smda import __version__
from smda.cli import demo as cli_demo
from smda.cli import evaluate as cli_evaluate
from smda.cli import export as cli_export
from smda.cli import ingest as cli_ingest
from smda.cli import ops as cli_ops
from smda.cli import plot as cli_plot
from smda.cli import train as cli_train
from smda.cli import twin as cli_twin
from smda.cli import verify as cli_verify
from smda.cli.common import console, error_document
from smda.cli.common import settings as _settings
from smda.errors import SmdaError

__all__ = ["app", "run"]

app = typer.Typer(
    help="smda — seamless daily global surface soil moisture (ML-DA: TC labels, LightGBM, SMAP nudging).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_twin.app, name="twin")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """smda command-line interface. Settings come from SMDA_* environment variables (see README)."""


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
app.command("export")(cli_export.export)
app.command("plot")(cli_plot.plot)
app.command("demo")(cli_demo.demo)


def _error(message: str) -> None:
    """``error: <message>`` on stderr as one line, however long (rich would wrap it)."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


def _json_command(argv: list[str]) -> str | None:
    """The command of a command line asking for ``--json`` (None when it does not)."""
    if "--json" not in argv:
        return None
    return next((a for a in argv if not a.startswith("-")), "smda")


def _fail(message: str, code: int, json_command: str | None) -> NoReturn:
    """End in one line ``error: …`` on stderr (and, with ``--json``, the error document on
    stdout) with exit code ``code``."""
    if message:
        _error(message)
    if json_command is not None:
        error_document(json_command, code, message)
    raise SystemExit(code)


def run() -> None:
    """Entry point of the ``smda`` command: an error ends in one line ``error: …`` on stderr,
    without a traceback — exit code 1 for smda errors (:class:`~smda.errors.SmdaError`, e.g. a
    bad ``SMDA_*`` setting), 73 when another process writes the region
    (:data:`smda.storage.locks.EXIT_BUSY`), 2 for a bad option or argument (a ``--region`` or
    date that is not valid), as click's usage errors; a command's own exit code (``typer.Exit``)
    is kept. With ``--json`` an error also prints ``{"command", "exit_code", "error"}`` on
    stdout (a command that ran prints its own document, with its ``exit_code``)."""
    as_json = _json_command(sys.argv[1:])
    try:
        code = app(standalone_mode=False)  # click's errors come here instead of a usage panel
    except SmdaError as exc:
        _fail(str(exc), getattr(exc, "exit_code", 1), as_json)
    except typer.Abort:
        _fail("aborted", 1, as_json)
    except typer.TyperException as exc:  # click's usage errors: typer.BadParameter, missing …
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # empty when the command printed its help (no arguments given)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            message = f"{message}{hint}"
        _fail(message, getattr(exc, "exit_code", 2), as_json if message else None)
    raise SystemExit(code if isinstance(code, int) else 0)
