"""docker/README.md's "Try it with the offline twin", followed natively (no Docker engine here).

The test reads the README's first ``bash`` block of that section and runs each line, failing on
a line it does not know how to follow:

- ``bash make-secrets.sh``: the script itself, into a temporary secrets folder;
- ``docker compose --profile twin up -d``: the processes docker/compose.yaml defines for
  ``prefect-server``, ``twin``, ``setup`` (then its rerun: idempotent), ``worker``, ``products``
  and ``pushgateway``, with their commands and environments read from the compose file, the
  container paths mapped to temporary folders (``/data``, ``/run/secrets``; ``/opt/smda`` is
  the repository), the container names and ports to loopback and free ports. The one
  difference: the Prefect server uses SQLite instead of the ``postgres`` service. Checks: the
  API answers 401 without the password, setup created the ``smda-chain`` queue with limit 1
  (Prefect's client), the worker's launcher chose the twin;
- ``docker compose logs setup``: the setup's report;
- ``docker compose run --rm prefect …``: that service's command (the ``prefect`` CLI through
  ``deployments/with_secrets.py``) with the line's arguments as written (train, then daily),
  each flow run Completed;
- ``curl …``: the URL from the products server (the STAC catalog, a COG).

Then the daily run's metrics are on the Pushgateway. Slow (about 5 minutes on 2 cores: the
twin's global SMAP and MSWEP files dominate).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from uuid import UUID

import pytest
import requests
import yaml
from monitoring_stack import free_port, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
README = ROOT / "docker" / "README.md"
SECTION = "## Try it with the offline twin"
PROVIDER_VARIABLES = ("CDSAPI_", "EARTHDATA_", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def readme_steps() -> list[list[str]]:
    """The commands of the section's first ``bash`` block (comments dropped), as argv lists."""
    text = README.read_text("utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, f"{README}: no bash block under {SECTION!r}"
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME}`` with the given variables (nested defaults)."""
    pattern = re.compile(r"\$\{(\w+)(?::-((?:[^${}]|\$\{[^}]*\})*))?\}")
    while (match := pattern.search(value)) is not None:
        name, default = match.group(1), match.group(2)
        replacement = variables.get(name, default if default is not None else "")
        value = value[: match.start()] + interpolate(replacement, variables) + value[match.end() :]
    return value


class NativeStack:
    """The compose services as local processes (see the module docstring)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]
        self.data = tmp / "data"
        self.secrets = tmp / "secrets"
        self.ports = {4200: free_port(), 8000: free_port(), 8080: free_port(), 9091: free_port()}
        self.hosts = {
            "prefect-server": "127.0.0.1",
            "pushgateway": "127.0.0.1",
            "twin": "127.0.0.1",
            "twin-login": "localhost",
            "0.0.0.0": "127.0.0.1",
        }
        self.variables = {"SMDA_PRODUCTS_PUBLIC_URL": f"http://127.0.0.1:{self.ports[8000]}"}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.api = f"http://127.0.0.1:{self.ports[4200]}/api"
        home = tmp / "prefect-home"
        home.mkdir()
        self.base = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("PREFECT_", "SMDA_", *PROVIDER_VARIABLES))
            },
            "PYTHONPATH": str(ROOT),
            # the image's PATH starts with its virtualenv: prefect, smda
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }

    # -- the compose file, mapped to this machine ------------------------------------------------
    def value(self, text: Any) -> str:
        """A compose string with variables resolved and container names, paths, ports mapped."""
        out = interpolate(str(text), self.variables)
        if out.startswith("/run/secrets/"):
            return str(self.secrets / out.removeprefix("/run/secrets/"))
        if out == "/data" or out.startswith("/data/"):
            return str(self.data) + out.removeprefix("/data")
        if out.startswith("/opt/smda/"):
            return str(ROOT / out.removeprefix("/opt/smda/"))
        if out.isdigit() and int(out) in self.ports:
            return str(self.ports[int(out)])
        url = re.fullmatch(r"(https?://)([\w.-]+):(\d+)(.*)", out)
        if url and url.group(2) in self.hosts:
            port = self.ports.get(int(url.group(3)), int(url.group(3)))
            return f"{url.group(1)}{self.hosts[url.group(2)]}:{port}{url.group(4)}"
        return out

    def argv(self, service: str, extra: list[str] | None = None) -> list[str]:
        spec = self.services[service]
        raw = list(spec.get("entrypoint") or [])
        raw += extra if extra is not None else list(spec.get("command") or [])
        words = []
        for before, word in zip(["", *raw], raw, strict=False):
            if before in ("--host", "--login-host", "--bind"):  # a host name or address
                words.append(self.hosts[str(word)])
            else:
                words.append(word if extra is not None and word in extra else self.value(word))
        if not spec.get("entrypoint"):  # the image's ENTRYPOINT ["smda"]
            words = [sys.executable, "-m", "smda", *words]
        return [sys.executable if w == "python" else w for w in words]

    def env(self, service: str) -> dict[str, str]:
        spec = self.services[service].get("environment") or {}
        items: list[tuple[str, Any]] = (
            [(k, v if sep else None) for k, sep, v in (e.partition("=") for e in spec)]
            if isinstance(spec, list)
            else list(spec.items())
        )
        env = dict(self.base)
        for key, raw in items:
            if key.startswith("PREFECT_SERVER_DATABASE_"):
                continue  # Postgres: SQLite here (module docstring)
            if raw is None:
                continue  # a bare name: from the shell, unset here
            env[key] = self.value(raw)
        if service == "prefect-server":
            db = self.tmp / "prefect.db"
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{db}"
        return env

    # -- processes ------------------------------------------------------------------------------
    def start(self, service: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{service}.log").open("wb")
        proc = subprocess.Popen(
            self.argv(service),
            env=self.env(service),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, service: str, extra: list[str] | None = None, timeout: float = 600) -> str:
        done = subprocess.run(
            self.argv(service, extra),
            env=self.env(service),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        (self.tmp / f"{service}.log").open("a").write(output)
        assert done.returncode == 0, f"{service} {extra or ''}:\n{output[-4000:]}"
        return output

    def log(self, service: str) -> str:
        path = self.tmp / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait(self, what: str, proc: subprocess.Popen[bytes], ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{what} exited:\n{self.log(what)[-4000:]}"
            try:
                if ready():
                    return
            except (requests.RequestException, OSError, ValueError):
                pass
            time.sleep(1)
        pytest.fail(f"{what} not ready in {timeout} s:\n{self.log(what)[-4000:]}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)

    # -- the README's steps ---------------------------------------------------------------------
    def up(self) -> None:
        """``docker compose --profile twin up -d``, in the order of the services' depends_on."""
        push = self.services["pushgateway"]
        args = [a.replace("/pushgateway/", f"{self.tmp}/") for a in push["command"]]
        web = f"--web.listen-address=127.0.0.1:{self.ports[9091]}"
        gateway = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        assert gateway, "the Pushgateway binary (Debian: prometheus-pushgateway) is needed"
        log = (self.tmp / "pushgateway.log").open("wb")
        self.procs.append(
            subprocess.Popen([gateway, *args, web], stdout=log, stderr=log, start_new_session=True)
        )

        server = self.start("prefect-server")
        self.wait("prefect-server", server, lambda: requests.get(f"{self.api}/health").ok, 180)
        flows = requests.post(f"{self.api}/flows/filter", json={}, timeout=10)
        assert flows.status_code == 401, "the API must refuse a client without the password"
        password = (self.secrets / "prefect_api_password").read_text().strip()
        authed = requests.post(f"{self.api}/flows/filter", json={}, auth=("smda", password))
        assert authed.status_code == 200, authed.text

        self.data.mkdir()
        twin = self.start("twin")
        endpoints = self.data / "twin" / "endpoints.json"
        self.wait(
            "twin",
            twin,
            lambda: requests.get(json.loads(endpoints.read_text())["control_url"] + "/status").ok,
            120,
        )

        self.run("setup")
        rerun = self.run("setup")  # idempotent
        assert "work pool smda-process: exists" in rerun
        assert "work queue smda-process/smda-chain: exists (limit 1)" in rerun
        assert chain_queue_limit(self.api, f"smda:{password}") == 1

        worker = self.start("worker")
        health = f"http://127.0.0.1:{self.ports[8080]}/health"
        self.wait("worker", worker, lambda: requests.get(health, timeout=2).ok, 120)
        assert "providers: the offline twin" in self.log("worker")
        products = self.start("products")
        port = self.ports[8000]
        root = f"http://127.0.0.1:{port}/"
        self.wait("products", products, lambda: requests.get(root).status_code > 0, 30)


def chain_queue_limit(api: str, auth: str) -> int | None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}),
        get_client(sync_client=True) as client,
    ):
        queue = client.read_work_queue_by_name("smda-chain", work_pool_name="smda-process")
        limit: int | None = queue.concurrency_limit
        return limit


def flow_run_state(api: str, auth: str, output: str) -> Any:
    """The state of the flow run ``prefect deployment run`` reported creating (its UUID)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, f"no flow run in the output:\n{output}"
    with (
        temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: auth}),
        get_client(sync_client=True) as client,
    ):
        return client.read_flow_run(UUID(match.group(1))).state


def on_this_machine(stack: NativeStack, url: str) -> str:
    """A products URL of the README on this machine's products server."""
    return url.replace("http://localhost:8000", f"http://127.0.0.1:{stack.ports[8000]}")


def link(url: str, rel: str) -> str:
    """The absolute URL of the first link ``rel`` of the STAC document at ``url``."""
    document = requests.get(url, timeout=30).json()
    href = next(entry["href"] for entry in document["links"] if entry["rel"] == rel)
    return urljoin(url, href)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[NativeStack]:
    running = NativeStack(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_the_readme_steps_run_natively(stack: NativeStack) -> None:
    steps = readme_steps()
    password = ""
    fetched: dict[str, requests.Response] = {}
    ran: list[str] = []
    for step in steps:
        match step:
            case ["cd", "docker"]:
                pass
            case ["bash", "make-secrets.sh"]:
                script = ROOT / "docker" / "make-secrets.sh"
                subprocess.run(["bash", str(script), str(stack.secrets)], check=True, timeout=60)
                password = (stack.secrets / "prefect_api_password").read_text().strip()
            case ["docker", "compose", "--profile", "twin", "up", "-d", *rest]:
                assert set(rest) <= {"--build"}, step
                stack.up()
            case ["docker", "compose", "logs", "setup"]:
                report = stack.log("setup")
                assert "queue smda-process/smda-chain: created (limit 1)" in report, report
                assert "smda-daily/daily" in report and "smda-train/train" in report
            case ["docker", "compose", "run", "--rm", "prefect", *args]:
                assert args[:2] == ["deployment", "run"] and "--watch" in args, step
                out = stack.run("prefect", args, timeout=420)
                deployment = args[2]
                state = flow_run_state(stack.api, f"smda:{password}", out)
                worker = stack.log("worker")[-6000:]
                assert state.is_completed(), f"{deployment}: {state.message}\n{out}\n{worker}"
                ran.append(deployment)
            case ["curl", "-s", *args]:
                fetched[args[-1]] = requests.get(on_this_machine(stack, args[-1]), timeout=30)
            case _:
                pytest.fail(f"docker/README.md step not followed by this test: {shlex.join(step)}")
    assert ran == ["smda-train/train", "smda-daily/daily"]

    catalog_url, cog_url = list(fetched)
    catalog = fetched[catalog_url]
    assert catalog.status_code == 200, catalog_url
    assert catalog.json()["type"] == "Catalog"
    cog = fetched[cog_url]
    assert cog.status_code == 200, cog_url
    assert cog.content[:4] in (b"II*\x00", b"II+\x00"), "not a (little-endian) TIFF"
    assert (stack.data / "products" / cog_url.split(":8000/", 1)[1]).read_bytes() == cog.content
    # the catalog is browsable over HTTP: catalog → collection → item → the COG asset
    collection = link(on_this_machine(stack, catalog_url), "child")
    item_url = link(collection, "item")
    item = requests.get(item_url, timeout=30).json()
    asset = requests.get(urljoin(item_url, item["assets"]["data"]["href"]), timeout=30)
    assert asset.status_code == 200 and asset.content == cog.content
    # read-only: the products server refuses writes
    put = requests.put(f"http://127.0.0.1:{stack.ports[8000]}/x", data=b"x", timeout=10)
    assert put.status_code == 501

    metrics = requests.get(f"http://127.0.0.1:{stack.ports[9091]}/metrics", timeout=10).text
    daily = r'^smda_last_run_status\{[^}]*job="[^"]*daily[^"]*"[^}]*status="completed"'
    assert re.search(daily, metrics, re.M), metrics[-3000:]
