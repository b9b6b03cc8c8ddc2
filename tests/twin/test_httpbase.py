"""The replicas' HTTP layer: file serving with HEAD/Range, the request log, every fault kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smda_twin.faults import Fault, FaultPlan
from smda_twin.httpbase import ReplicaServer, Request, RequestLog, Response, Route

BODY = bytes(range(256)) * 1024  # 256 KiB


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReplicaServer]:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(BODY)

    def file_route(req: Request) -> Response:
        return Response(file=blob, content_type="application/octet-stream")

    def json_route(req: Request) -> Response:
        return Response.json({"hello": req.arg("name", "world")})

    srv = ReplicaServer(
        "test",
        [Route("GET", r"/file", file_route), Route("GET", r"/json", json_route)],
        log=RequestLog(),
        faults=FaultPlan(),
    ).start()
    yield srv
    srv.stop()


def test_head_and_get_agree(server: ReplicaServer) -> None:
    head = requests.head(server.base_url + "/file", timeout=5)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(BODY)
    assert head.headers["Accept-Ranges"] == "bytes"
    assert requests.get(server.base_url + "/file", timeout=5).content == BODY


def test_range_request_resumes(server: ReplicaServer) -> None:
    r = requests.get(server.base_url + "/file", headers={"Range": "bytes=1000-"}, timeout=5)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 1000-{len(BODY) - 1}/{len(BODY)}"
    assert r.content == BODY[1000:]
    bad = requests.get(
        server.base_url + "/file", headers={"Range": f"bytes={len(BODY)}-"}, timeout=5
    )
    assert bad.status_code == 416


def test_unknown_path_and_method(server: ReplicaServer) -> None:
    assert requests.get(server.base_url + "/nope", timeout=5).status_code == 404
    assert requests.post(server.base_url + "/json", timeout=5).status_code == 405


def test_request_log_counts(server: ReplicaServer) -> None:
    for _ in range(3):
        requests.get(server.base_url + "/json?name=x", timeout=5)
    assert server.log.count("test", path="/json", status=200) == 3
    assert server.log.count("test", path="/file") == 0


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_status_fault_then_recovery(server: ReplicaServer, status: int) -> None:
    server.faults.add(Fault("status", path="/json", status=status, retry_after=7, times=2))
    for _ in range(2):
        r = requests.get(server.base_url + "/json", timeout=5)
        assert r.status_code == status
        assert r.headers["Retry-After"] == "7"
        assert "injected" in r.json()["detail"]
    assert requests.get(server.base_url + "/json", timeout=5).status_code == 200


def test_slow_fault_trips_client_timeout(server: ReplicaServer) -> None:
    server.faults.add(Fault("slow", path="/json", delay=1.0))
    t0 = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(server.base_url + "/json", timeout=(2, 0.3))
    assert time.monotonic() - t0 < 1.0
    assert requests.get(server.base_url + "/json", timeout=5).status_code == 200


def test_reset_fault(server: ReplicaServer) -> None:
    server.faults.add(Fault("reset", path="/file"))
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base_url + "/file", timeout=5)
    assert requests.get(server.base_url + "/file", timeout=5).content == BODY


def test_truncate_fault_sends_fewer_bytes_than_announced(server: ReplicaServer) -> None:
    server.faults.add(Fault("truncate", path="/file"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        r = requests.get(server.base_url + "/file", timeout=5, stream=True)
        assert int(r.headers["Content-Length"]) == len(BODY)
        b"".join(r.iter_content(4096))


def test_corrupt_fault_keeps_length_changes_bytes(server: ReplicaServer) -> None:
    server.faults.add(Fault("corrupt", path="/file"))
    r = requests.get(server.base_url + "/file", timeout=5)
    assert len(r.content) == len(BODY) and r.content != BODY
    assert requests.get(server.base_url + "/file", timeout=5).content == BODY


def test_fault_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"kind": "status", "colour": "red"})


def test_fault_forever_and_method_filter(server: ReplicaServer) -> None:
    server.faults.add(Fault("status", path="/json", method="GET", status=500, times=-1))
    assert all(
        requests.get(server.base_url + "/json", timeout=5).status_code == 500 for _ in range(4)
    )
    server.faults.clear()
    assert requests.get(server.base_url + "/json", timeout=5).status_code == 200
