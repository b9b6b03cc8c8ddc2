"""The providers' real clients, configured for smda (production or the offline twin).

smda always talks to providers through their own clients — ``cdsapi`` for the CDS,
``earthaccess`` for NASA Earthdata, ``requests`` for plain file servers — so that what is
tested against the twin is what runs in production. This module only *configures* them:
explicit timeouts, and, when an :class:`~smda.ingest.endpoints.Endpoints` is given, the twin's
URLs and credentials.

**One retry layer.** Each client tries each request once; :func:`smda.ingest.retry.retry_call`
around the provider call is the only layer that retries. Nested layers multiply (cdsapi's
``retry_max=3`` inside five smda attempts is fifteen POSTs against a failing CDS) and the inner
one ignores ``Retry-After`` (cdsapi sleeps a fixed ``sleep_max``). So: cdsapi/ecmwf-datastores
with ``retry_max=1`` (multiurl's ``maximum_tries``: the first try is the last), ``requests``
sessions with adapters that never retry (:func:`single_attempt`), earthaccess only for login
and search (its ``download`` retries three times on any exception; smda downloads with the
session). fsspec's HTTP filesystem (aiohttp) has no retries of its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from unittest import mock

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from smda.errors import CredentialsError
from smda.ingest.credentials import file_credentials
from smda.ingest.endpoints import Endpoints, client_environment

__all__ = [
    "CLIENT_ATTEMPTS",
    "cds_client",
    "client_env",
    "earthdata_login",
    "file_credentials_env",
    "single_attempt",
]

LOG = logging.getLogger(__name__)

#: Per-request timeout (connect, read) in seconds for every smda HTTP call.
TIMEOUT = (10.0, 120.0)


@contextmanager
def client_env(endpoints: Endpoints | None) -> Iterator[None]:
    """Temporarily export the variables that point the clients' own lookups at ``endpoints``."""
    if endpoints is None:
        yield
        return
    with _exported(client_environment(endpoints)):
        yield


@contextmanager
def file_credentials_env() -> Iterator[dict[str, str]]:
    """Export the providers' credentials given as files (``CDSAPI_KEY_FILE`` …, Docker secrets:
    :func:`smda.ingest.credentials.file_credentials`) for the duration of the block, where the
    providers' own clients look for them; yields them (never log them)."""
    found = file_credentials(os.environ)
    with _exported(found):
        yield found


@contextmanager
def _exported(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` in the process environment for the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: What a client's ``retry_max`` must be for one attempt per call (see the module docstring).
CLIENT_ATTEMPTS = 1


def single_attempt(session: requests.Session) -> requests.Session:
    """Mount adapters on ``session`` that send each request once (urllib3 ``Retry(total=0,
    read=False)``: no retry on connection, read or status errors); returns ``session``.

    requests' default adapter does the same today; mounting it says so, and holds if a library
    handing out the session (earthaccess) ever mounts a retrying one.
    """
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def cds_client(
    endpoints: Endpoints | None = None,
    *,
    timeout: float = 120.0,
    sleep_max: float = 30.0,
    quiet: bool = True,
) -> Any:
    """A ``cdsapi.Client`` that tries each request once (``retry_max=1``), with a timeout.

    Retries are smda's (module docstring). ``sleep_max`` (seconds) only caps the client's own
    job polling, which smda does not use (it polls with a deadline). Credentials come from
    ``endpoints`` (twin) or from cdsapi's own lookup: ``CDSAPI_URL``/``CDSAPI_KEY`` (or
    ``CDSAPI_KEY_FILE``, a Docker secret: :mod:`smda.ingest.credentials`) or ``~/.cdsapirc``.
    The key is never logged.
    """
    import cdsapi

    url = key = None
    if endpoints is not None:
        url, key = endpoints.cds.url, endpoints.cds.key
    try:
        with file_credentials_env() if endpoints is None else nullcontext():
            return cdsapi.Client(
                url=url,
                key=key,
                quiet=quiet,
                progress=False,
                retry_max=CLIENT_ATTEMPTS,
                sleep_max=sleep_max,
                timeout=timeout,
                session=single_attempt(requests.Session()),
            )
    except CredentialsError:
        raise
    except Exception as exc:  # cdsapi raises bare Exception when nothing is configured
        raise CredentialsError(
            "no CDS credentials: set CDSAPI_URL and CDSAPI_KEY (your personal access token from "
            "https://cds.climate.copernicus.eu/profile) or write ~/.cdsapirc, "
            f"or point SMDA_ENDPOINTS at a running twin ({type(exc).__name__})"
        ) from None


def earthdata_login(endpoints: Endpoints | None = None) -> Any:
    """Log in to NASA Earthdata with ``earthaccess`` and return its ``Auth``.

    With ``endpoints`` (twin), earthaccess is pointed at the replica's EDL and CMR through its
    ``System`` and logs in with the twin's token. Otherwise earthaccess's own lookup is used:
    ``EARTHDATA_TOKEN``, ``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD`` (each also as
    ``<NAME>_FILE``, a Docker secret: :mod:`smda.ingest.credentials`) or ``~/.netrc``.
    """
    import earthaccess
    from earthaccess.store import Store
    from earthaccess.system import PROD, System

    system = PROD
    if endpoints is None:
        from earthaccess.exceptions import LoginStrategyUnavailable

        auth = None
        with file_credentials_env():
            # earthaccess's "all" would end by prompting on the terminal: a scheduled run must
            # fail with what to set instead, so only the non-interactive strategies are tried.
            for strategy in ("environment", "netrc"):
                try:
                    auth = earthaccess.login(strategy=strategy, system=system)
                except LoginStrategyUnavailable:
                    continue
                if getattr(auth, "authenticated", False):
                    break
    else:
        ed = endpoints.earthdata
        edl = f"https://{ed.edl_hostname}/"
        system = System(ed.cmr_base_url, edl, edl + "api/v1/statuses", ed.edl_hostname)  # type: ignore[arg-type]
        # The twin is never in AWS us-west-2: skip earthaccess's probe of the EC2 metadata
        # address (169.254.169.254), which would leave the loopback network.
        if getattr(earthaccess._auth, "system", None) != system:
            # earthaccess keeps one login per process; a different set of endpoints (another
            # twin) needs a fresh one, or its cached token is sent to the wrong host.
            from earthaccess.auth import Auth

            earthaccess._auth = Auth()
        with (
            client_env(endpoints),
            mock.patch.object(Store, "_running_in_us_west_2", return_value=False),
        ):
            auth = earthaccess.login(strategy="environment", system=system)
    if auth is None or not getattr(auth, "authenticated", False):
        raise CredentialsError(
            "Earthdata login failed: set EARTHDATA_TOKEN (or EARTHDATA_USERNAME and "
            "EARTHDATA_PASSWORD, or a ~/.netrc entry for urs.earthdata.nasa.gov)"
        )
    return auth
