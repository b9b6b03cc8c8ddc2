"""Where a run's metrics go: a Prometheus pushgateway, or a textfile for node-exporter.

Both follow one rule, *a run replaces the metrics it set and keeps the others*
(:mod:`smda.ops.monitoring`); neither ever fails the run.

A gateway URL may carry credentials (``https://user:password@gateway:9091``): they are sent as
HTTP Basic auth, and every message shows the URL redacted
(:func:`~smda.ingest.endpoints.redact_url`).
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, generate_latest, pushadd_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from smda.ingest.endpoints import redact_text, redact_url
from smda.storage.atomic import atomic_write_bytes

__all__ = ["PUSH_TIMEOUT_SECONDS", "push", "textfile_name", "write_textfile"]

logger = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 10.0
"""Timeout of one push to the pushgateway: monitoring never holds a run up for long."""


def textfile_name(job: str, region: str) -> str:
    """File name for node-exporter's textfile collector: one per job and region, ``.prom``.

    >>> textfile_name("smda_daily", "-105,30,-95,40")
    'smda_daily-_105_30__95_40.prom'
    """

    def safe(text: str) -> str:
        return "".join(c if c.isalnum() or c == "_" else "_" for c in text)

    return f"{safe(job)}-{safe(region)}.prom"


Handler = Callable[[str, str, float | None, list[tuple[str, str]], bytes], Callable[[], None]]


def _gateway(url: str) -> tuple[str, Handler]:
    """The gateway URL without its user info, and the handler that sends that user info as
    Basic auth (urllib would take ``user:password@host`` for a host name)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, default_handler
    username, password = unquote(parts.username), unquote(parts.password or "")
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return bare, handler


def push(
    registry: CollectorRegistry,
    region: str,
    gateway_url: str | None,
    job: str,
    *,
    textfile_dir: Path | str | None = None,
) -> bool:
    """Export the metrics; never raises for an unreachable gateway or an unwritable file.

    Parameters
    ----------
    gateway_url:
        Pushgateway base URL (``http://pushgateway:9091``; ``https://user:password@...`` sends
        Basic auth). The metrics are added to the group ``job=<job>, region=<region>`` (HTTP
        POST: metrics of the same name are replaced, the others kept).
    job:
        Job label, e.g. ``"smda_daily"`` or ``"smda_backfill"``.
    textfile_dir:
        Used when ``gateway_url`` is None: node-exporter's textfile-collector directory;
        the file is :func:`textfile_name` inside it.

    Returns
    -------
    bool
        True when the metrics were delivered; False (with a warning logged) otherwise.
    """
    if gateway_url:
        shown = redact_url(gateway_url)
        url, handler = _gateway(gateway_url)
        try:
            pushadd_to_gateway(
                url,
                job=job,
                registry=registry,
                grouping_key={"region": region},
                timeout=PUSH_TIMEOUT_SECONDS,
                handler=handler,
            )
        # URLError, HTTPError, timeouts, refused connections; a malformed URL (InvalidURL...)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            logger.warning(
                "could not push metrics to the pushgateway %s (job=%s, region=%s): %s; "
                "the run goes on — check that the gateway is up and SMDA_PUSHGATEWAY is right",
                shown,
                job,
                region,
                redact_text(str(exc), gateway_url),
            )
            return False
        logger.debug("pushed metrics to %s (job=%s, region=%s)", shown, job, region)
        return True
    if textfile_dir is not None:
        path = Path(textfile_dir) / textfile_name(job, region)
        try:
            write_textfile(registry, path)
        except OSError as exc:
            logger.warning("could not write the metrics file %s: %s; the run goes on", path, exc)
            return False
        return True
    logger.info("metrics not exported: no pushgateway URL and no textfile directory configured")
    return False


def write_textfile(registry: CollectorRegistry, path: Path | str) -> None:
    """Write the metrics to ``path`` atomically, keeping metrics this run did not set.

    For node-exporter's textfile collector (the name must end in ``.prom``). Families present
    in the existing file but without samples in this run are carried over, so the file
    behaves like a pushgateway group (see the module docstring). An unreadable previous file
    is replaced.
    """
    path = Path(path)
    carried: list[Metric] = []
    if path.exists():
        try:
            carried = list(text_string_to_metric_families(path.read_text("utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("replacing unparsable metrics file %s: %s", path, exc)
    fresh = {m.name for m in registry.collect() if m.samples}
    keep = [m for m in carried if m.name not in fresh and m.samples]
    out = CollectorRegistry(auto_describe=False)
    out.register(_Fixed([*registry.collect(), *keep]))
    atomic_write_bytes(path, generate_latest(out))


class _Fixed(Collector):
    """A collector yielding a fixed list of metric families (for merged exposition)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = [m for m in families if m.samples]

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
