"""Run a command of the compose stack with its secrets read from files (Docker secrets).

    python deployments/with_secrets.py COMMAND [ARG ...]

docker/compose.yaml starts the Prefect server, the worker and the one-shot ``setup`` through
this script (the smda image's ``/opt/smda/deployments``). It changes the environment, then
replaces itself with ``COMMAND`` (``os.execvp``); it prints no secret value.

- ``PREFECT_API_AUTH_PASSWORD_FILE``: the file holding the Prefect API password. Sets
  ``PREFECT_SERVER_API_AUTH_STRING`` (the server's basic authentication) and
  ``PREFECT_API_AUTH_STRING`` (the clients': worker, setup, flow runs) to
  ``<PREFECT_API_AUTH_USER>:<password>`` (user ``smda`` by default). Prometheus scrapes the
  server's metrics with the same user and password file (monitoring/prometheus.yml).
- ``PREFECT_<NAME>_FILE`` (any other): sets ``PREFECT_<NAME>`` to the file's content, e.g.
  ``PREFECT_SERVER_DATABASE_PASSWORD_FILE``. smda reads the providers' ``*_FILE`` variables
  itself (``CDSAPI_KEY_FILE`` …: smda.ingest.credentials).
- ``TWIN_ENDPOINTS_FILE``: the endpoints file of the offline twin (compose profile ``twin``).
  When the file exists and the twin it describes answers, ``SMDA_ENDPOINTS`` is set to it, so
  the worker's flow runs use the twin; otherwise (the stack without the profile) the real
  providers. Decided once, when the command starts. ``SMDA_REGION``, when unset, becomes the
  twin's region.

A file that cannot be read, or is empty, stops the launch (exit status 2, one line).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

AUTH_PASSWORD = "PREFECT_API_AUTH_PASSWORD_FILE"
AUTH_USER = "PREFECT_API_AUTH_USER"
TWIN_ENDPOINTS = "TWIN_ENDPOINTS_FILE"


class LaunchError(Exception):
    """A secret or setting the command needs is not usable (one line, no secret value)."""


def read_secret(variable: str, path: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LaunchError(f"{variable}={path}: cannot read it ({exc.strerror})") from None
    if not value:
        raise LaunchError(f"{variable}={path}: the file is empty")
    return value


def twin_status(endpoints: Path, seconds: float) -> dict[str, Any] | None:
    """The status of the twin ``endpoints`` describes (its control API), if the file exists and
    the twin answers within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            control = json.loads(endpoints.read_text("utf-8")).get("control_url")
            if control:
                with urllib.request.urlopen(f"{control}/status", timeout=5) as reply:
                    status: dict[str, Any] = json.load(reply)
                    return {**status, "control_url": control}
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(1)


def prepare(env: MutableMapping[str, str], *, twin_wait: float = 30.0) -> list[str]:
    """Apply the module docstring's rules to ``env``; what was done (no values)."""
    done = []
    password_file = env.pop(AUTH_PASSWORD, None)
    if password_file:
        auth = f"{env.get(AUTH_USER) or 'smda'}:{read_secret(AUTH_PASSWORD, password_file)}"
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        env["PREFECT_API_AUTH_STRING"] = auth
        done.append("Prefect API authentication from " + password_file)
    for name in [n for n in env if n.startswith("PREFECT_") and n.endswith("_FILE")]:
        path = env.pop(name)
        env[name.removesuffix("_FILE")] = read_secret(name, path)
        done.append(f"{name.removesuffix('_FILE')} from {path}")
    endpoints = env.pop(TWIN_ENDPOINTS, None)
    if endpoints:
        twin = twin_status(Path(endpoints), twin_wait if Path(endpoints).exists() else 0)
        if twin:
            env["SMDA_ENDPOINTS"] = endpoints
            done.append(f"providers: the offline twin at {twin['control_url']} (SMDA_ENDPOINTS)")
            if not env.get("SMDA_REGION"):
                env["SMDA_REGION"] = str(twin["region"])
                done.append(f"SMDA_REGION={twin['region']}: the twin's world")
        else:
            done.append("providers: the real ones (no offline twin answers)")
    return done


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: with_secrets.py COMMAND [ARG ...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    try:
        for line in prepare(env):
            print(f"with_secrets: {line}", file=sys.stderr, flush=True)
    except LaunchError as exc:
        print(f"with_secrets: {exc}", file=sys.stderr)
        return 2
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
