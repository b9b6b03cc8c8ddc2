"""What every ``smda`` command shares: the console, settings and logging, option types, parsers.

Command modules (``smda/cli/*.py``) import from here; :mod:`smda.cli` assembles them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console

from smda.config import Settings, load_settings
from smda.geo.grid import BBox

__all__ = [
    "DEMO_REGION",
    "JsonOpt",
    "RegionOpt",
    "SeedOpt",
    "console",
    "emit_json",
    "error_document",
    "json_stdout",
    "parse_date",
    "parse_region",
    "settings",
]

console = Console(stderr=True)
DEMO_REGION = "-105,30,-95,40"

RegionOpt = Annotated[
    str,
    typer.Option(
        help="Region 'west,south,east,north' in degrees (west > east crosses the antimeridian), "
        "or the key of a region folder (e.g. r0.25_200_300_40x40)."
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (logs and progress stay on stderr); same exit "
        "codes. Shapes in the README.",
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


def parse_region(text: str, cfg: Settings | None = None) -> BBox:
    """A ``--region``: a box ``west,south,east,north``, or the key of a region folder of the
    data directory (``cfg``'s, loaded when not given), which gives back exactly its grid
    (:func:`smda.storage.regions.key_bbox`).

    Raises
    ------
    typer.BadParameter
        One line: what is wrong with the box, or the key is unknown (listing the known ones).
    """
    if "," in text:
        try:
            return BBox.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--region") from exc
    return _region_of_key(text.strip(), cfg or load_settings())


def _region_of_key(key: str, cfg: Settings) -> BBox:
    from smda.ops.status import known_regions
    from smda.storage.regions import KEY_FORM, grid_of_key

    known = known_regions(cfg)
    if key in known:
        return known[key].bbox
    try:
        grid_of_key(key)
        what = f"unknown region key {key!r}"
    except ValueError:
        what = f"{key!r} is neither a region 'west,south,east,north' nor a region key ({KEY_FORM})"
    listing = "; ".join(f"{k} = {info.bbox}" for k, info in known.items()) or "none yet"
    raise typer.BadParameter(
        f"{what}; known regions in {cfg.data_dir}: {listing}", param_hint="--region"
    )


def _plain(value: Any) -> Any:
    """``value`` as JSON: dates ISO, paths as text, numpy scalars as numbers, NaN as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[TextIO]:
    """Yield stdout; when ``enabled`` (``--json``), whatever else writes to ``sys.stdout`` in
    the block (a library's own progress, e.g. tl2cgen's compiler log) goes to stderr, so that
    the JSON document printed on the yielded stream is all stdout holds."""
    out = sys.stdout
    if not enabled:
        yield out
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield out


def emit_json(
    command: str, exit_code: int, document: Mapping[str, Any], *, file: TextIO | None = None
) -> None:
    """Print the one JSON document of a ``--json`` command on ``file`` (default stdout):
    ``command`` and ``exit_code`` first, then ``document``'s keys."""
    body = {"command": command, "exit_code": exit_code, **document}
    typer.echo(json.dumps(_plain(body), indent=2, allow_nan=False), file=file)


def error_document(
    command: str, exit_code: int, message: str, *, file: TextIO | None = None
) -> None:
    """The JSON document of a ``--json`` command that ended in an error (README)."""
    emit_json(command, exit_code, {"error": message}, file=file)


def parse_date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=name) from None
