"""The running twin: endpoints file, control API, `smda twin serve` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from smda.ingest.endpoints import Endpoints
from smda_twin.service import Twin


def test_endpoints_describe_every_replica(twin: Twin, tmp_path: Path) -> None:
    ep = twin.endpoints()
    path = tmp_path / "endpoints.json"
    ep.write(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    back = Endpoints.read(path)
    assert back == ep
    assert back.cds.url.endswith("/api") and back.cds.key
    assert back.earthdata.cmr_base_url.endswith("/") and back.earthdata.token
    assert Path(back.earthdata.ca_bundle or "").is_file()
    assert "{yyyy}{ddd}" in back.mswep.url_template
    assert requests.get(back.cds.url + "/catalogue/v1/messages", timeout=5).json() == {
        "messages": []
    }


def test_control_api_moves_clock_and_injects_faults(twin: Twin) -> None:
    control = twin.endpoints().control_url
    assert control
    status = requests.get(control + "/status", timeout=5).json()
    assert status["today"] == "2024-07-20" and status["newest"]["era5"] == "2024-07-15"
    assert requests.post(control + "/clock", json={"advance": 2}, timeout=5).json() == {
        "today": "2024-07-22"
    }
    assert twin.clock.newest("smap").isoformat() == "2024-07-20"
    r = requests.post(
        control + "/faults", json={"provider": "mswep", "kind": "status", "status": 502}, timeout=5
    )
    assert r.status_code == 201
    url = twin.mswep.url_template.format(yyyy="2024", ddd="200")
    assert requests.get(url, timeout=30).status_code == 502
    bad = requests.post(
        control + "/faults", json={"provider": "mswep", "kind": "meteor"}, timeout=5
    )
    assert bad.status_code == 400 and "unknown fault kind" in bad.json()["detail"]
    assert requests.post(control + "/clock", json={"today": "July"}, timeout=5).status_code == 400
    log = requests.get(control + "/requests?provider=mswep", timeout=5).json()["requests"]
    assert [r["status"] for r in log] == [502]


def test_twin_serve_command_writes_endpoints_and_stops_cleanly(tmp_path: Path) -> None:
    endpoints = tmp_path / "ep.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smda",
            "twin",
            "serve",
            "--region",
            "-100,35,-99,36",
            "--today",
            "2024-07-20",
            "--endpoints-file",
            str(endpoints),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SMDA_LOG_LEVEL": "WARNING"},
    )
    try:
        deadline = time.monotonic() + 60
        while not endpoints.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert endpoints.exists(), proc.stderr.read().decode() if proc.stderr else ""
        ep = Endpoints.read(endpoints)
        assert requests.get(ep.control_url + "/status", timeout=5).json()["today"] == "2024-07-20"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"twin stopped" in err
    assert json.loads(endpoints.read_text())["cds"]["url"].startswith("http://127.0.0.1:")


def test_a_twin_on_named_hosts_serves_its_urls_and_a_login_certificate_for_its_name(
    tmp_path: Path,
) -> None:
    """The compose profile's twin: URLs use the names other containers resolve, and the
    Earthdata Login certificate is issued for the login name (here loopback names swapped)."""
    from dataclasses import replace
    from datetime import date
    from urllib.parse import urlsplit

    from smda.geo.grid import BBox
    from smda.ingest.clients import earthdata_login
    from smda_twin.httpbase import Network
    from smda_twin.service import TwinConfig
    from smda_twin.world import WorldSpec

    config = TwinConfig(
        world=WorldSpec(seed=7, region=BBox(-100, 35, -99, 36), epoch=date(2024, 1, 1)),
        today=date(2024, 7, 20),
    )
    config = replace(config, network=Network(host="localhost", login_host="127.0.0.1"))
    with Twin(config, tmp_path / "twin") as twin:
        ep = twin.endpoints()
        assert urlsplit(ep.cds.url).hostname == "localhost"
        assert urlsplit(ep.earthdata.cmr_base_url).hostname == "localhost"
        assert urlsplit(ep.control_url).hostname == "localhost"
        assert urlsplit(ep.mswep.url_template).hostname == "localhost"
        assert ep.earthdata.edl_hostname.startswith("127.0.0.1:")
        assert earthdata_login(ep).authenticated
        login = f"https://{ep.earthdata.edl_hostname}/api/v1/statuses"
        verified = requests.get(login, verify=ep.earthdata.ca_bundle, timeout=10)
        assert verified.status_code == 200


def test_twin_serve_refuses_one_name_for_login_and_data(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smda", "twin", "serve", "--host", "twin", "--login-host", "twin"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "the login host must differ from the data host" in done.stderr
