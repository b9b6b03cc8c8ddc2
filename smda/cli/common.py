"""What every ``smda`` command shares: the console, settings and logging, option types, parsers.

Command modules (``smda/cli/*.py``) import from here; :mod:`smda.cli` assembles them.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

import typer
from rich.console import Console

from smda.config import Settings, load_settings
from smda.geo.grid import BBox

__all__ = [
    "DEMO_REGION",
    "RegionOpt",
    "SeedOpt",
    "console",
    "parse_date",
    "parse_region",
    "settings",
]

console = Console(stderr=True)
DEMO_REGION = "-105,30,-95,40"

RegionOpt = Annotated[
    str,
    typer.Option(
        help="Region 'west,south,east,north' in degrees (west > east crosses the antimeridian)."
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the synthetic world (same seed → same world).")]


NOISY_LOGGERS = ("multiurl", "earthaccess", "cdsapi", "ecmwf", "datapi", "urllib3", "fsspec")
"""Third-party loggers that log every request at INFO: shown only with SMDA_LOG_LEVEL=DEBUG."""


def settings() -> Settings:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":  # the clients' per-request chatter
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    return settings


def parse_region(text: str) -> BBox:
    try:
        return BBox.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region") from exc


def parse_date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=name) from None
