"""The compose stack's scripts: deployments/with_secrets.py (secrets from files, the twin's
choice) and the parts of deployments/setup.py that need no server (tests/flows/test_stack.py
runs both against real processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deployments"))

from setup import SetupError, work_queues  # noqa: E402
from with_secrets import LaunchError, prepare  # noqa: E402


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_auth_password_gives_the_server_and_client_auth_strings(tmp_path: Path) -> None:
    env = {"PREFECT_API_AUTH_PASSWORD_FILE": secret(tmp_path, "pw", "hunter2\n")}
    done = prepare(env)
    assert env == {
        "PREFECT_SERVER_API_AUTH_STRING": "smda:hunter2",
        "PREFECT_API_AUTH_STRING": "smda:hunter2",
    }
    assert not any("hunter2" in line for line in done), "the launcher must not print secrets"


def test_another_user_and_other_prefect_files(tmp_path: Path) -> None:
    env = {
        "PREFECT_API_AUTH_PASSWORD_FILE": secret(tmp_path, "pw", "pw"),
        "PREFECT_API_AUTH_USER": "ops",
        "PREFECT_SERVER_DATABASE_PASSWORD_FILE": secret(tmp_path, "db", "pg-pass\n"),
        "CDSAPI_KEY_FILE": "/run/secrets/cdsapi_key",  # smda's own: left as it is
    }
    prepare(env)
    assert env["PREFECT_API_AUTH_STRING"] == "ops:pw"
    assert env["PREFECT_SERVER_DATABASE_PASSWORD"] == "pg-pass"
    assert "PREFECT_SERVER_DATABASE_PASSWORD_FILE" not in env
    assert env["CDSAPI_KEY_FILE"] == "/run/secrets/cdsapi_key"


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_a_missing_or_empty_secret_stops_the_launch(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LaunchError, match=f"PREFECT_API_AUTH_PASSWORD_FILE={path}"):
        prepare({"PREFECT_API_AUTH_PASSWORD_FILE": str(path)})


def test_the_launcher_exits_2_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deployments" / "with_secrets.py"), "true"],
        env={"PREFECT_API_AUTH_PASSWORD_FILE": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot read it" in done.stderr


def test_the_launcher_runs_the_command_with_the_settings(tmp_path: Path) -> None:
    probe = "import os; print(os.environ['PREFECT_API_AUTH_STRING'])"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deployments" / "with_secrets.py"),
            sys.executable,
            "-c",
            probe,
        ],
        env={"PREFECT_API_AUTH_PASSWORD_FILE": secret(tmp_path, "pw", "pw1")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "smda:pw1"


def test_no_answering_twin_means_the_real_providers(tmp_path: Path) -> None:
    env = {"TWIN_ENDPOINTS_FILE": str(tmp_path / "endpoints.json")}
    assert prepare(env, twin_wait=0) == ["providers: the real ones (no offline twin answers)"]
    assert env == {}
    # a file left by a twin that is gone: still the real providers
    stale = tmp_path / "endpoints.json"
    stale.write_text('{"control_url": "http://127.0.0.1:9/_twin"}')
    env = {"TWIN_ENDPOINTS_FILE": str(stale)}
    prepare(env, twin_wait=0)
    assert "SMDA_ENDPOINTS" not in env


def test_an_answering_twin_sets_the_endpoints_and_its_region(twin: object, tmp_path: Path) -> None:
    from smda_twin.service import Twin

    assert isinstance(twin, Twin)
    endpoints = tmp_path / "endpoints.json"
    twin.endpoints().write(endpoints)
    env = {"TWIN_ENDPOINTS_FILE": str(endpoints)}
    prepare(env, twin_wait=5)
    assert env == {"SMDA_ENDPOINTS": str(endpoints), "SMDA_REGION": "-100,35,-99,36"}
    env = {"TWIN_ENDPOINTS_FILE": str(endpoints), "SMDA_REGION": "-100,35,-99.5,35.5"}
    prepare(env, twin_wait=5)
    assert env["SMDA_REGION"] == "-100,35,-99.5,35.5", "a region that is set is kept"


def test_setup_reads_the_pool_and_queues_of_prefect_yaml(tmp_path: Path) -> None:
    pool, queues = work_queues(ROOT / "deployments" / "prefect.yaml")
    assert pool == "smda-process"
    assert set(queues) == {"smda-chain", "default"}
    two = tmp_path / "prefect.yaml"
    two.write_text(
        "deployments:\n"
        "  - {name: a, work_pool: {name: p1}}\n"
        "  - {name: b, work_pool: {name: p2, work_queue_name: q}}\n"
    )
    with pytest.raises(SetupError, match="expected one work pool"):
        work_queues(two)
