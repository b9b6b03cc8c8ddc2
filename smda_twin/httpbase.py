"""A small threaded HTTP(S) server for the twin's replicas: routing, request log, faults.

Each replica (CDS, Earthdata, MSWEP) is a :class:`ReplicaServer` with a list of routes.
A route handler receives a :class:`Request` and returns a :class:`Response` (JSON, bytes or
a file on disk served with ``HEAD`` and ``Range`` support). Before routing, the server offers
the request to the provider's :class:`~smda_twin.faults.FaultPlan` for the generic fault
kinds (status codes, slow answers, connection resets); while sending a body it applies the
transfer faults (truncated and corrupt bodies). Every request is recorded in a shared
:class:`RequestLog` so tests can count what a client fetched.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smda_twin.faults import Fault, FaultPlan

__all__ = [
    "LOOPBACK",
    "Network",
    "ReplicaServer",
    "Request",
    "RequestLog",
    "RequestRecord",
    "Response",
    "Route",
]

LOG = logging.getLogger(__name__)

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RequestRecord:
    """One request as the replica saw it."""

    provider: str
    method: str
    path: str
    query: str
    status: int
    sent: int
    time: float
    range: str | None = None


class RequestLog:
    """Thread-safe record of every request the replicas answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def count(
        self,
        provider: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> int:
        """Number of requests matching all given filters (``path`` is a regex searched)."""
        return sum(
            1
            for r in self.records()
            if (provider is None or r.provider == provider)
            and (method is None or r.method == method)
            and (path is None or re.search(path, r.path))
            and (status is None or r.status == status)
        )

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


@dataclass
class Request:
    """What a route handler sees of a request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    match: re.Match[str]
    base_url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except json.JSONDecodeError as exc:
            raise HttpError(400, "invalid JSON body", str(exc)) from exc

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    """A route's answer: ``body`` bytes, or ``file`` (served with HEAD/Range support)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(data).encode(), dict(headers or {}))


class HttpError(Exception):
    """Raised by a handler to answer with a provider-style JSON error."""

    def __init__(
        self, status: int, title: str, detail: str = "", headers: dict[str, str] | None = None
    ):
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler


@dataclass(frozen=True)
class Network:
    """Where the twin's servers listen and the host names their URLs use.

    The default is loopback only. In a container network (the compose profile ``twin``) the
    servers bind every interface and the URLs use the service's names, which the other
    containers resolve.

    Attributes
    ----------
    bind:
        Address every server binds (``127.0.0.1``; ``0.0.0.0`` for a container network).
    host:
        Host name in the URLs of the CDS, CMR, data, MSWEP and control servers.
    login_host:
        Host name of Earthdata Login (HTTPS; its certificate is issued for this name). It must
        differ from ``host`` as the real EDL is another host: earthaccess sends the login's
        credentials to that host only.
    """

    bind: str = "127.0.0.1"
    host: str = "127.0.0.1"
    login_host: str = "localhost"

    def __post_init__(self) -> None:
        if self.login_host == self.host:
            raise ValueError(
                f"the login host must differ from the data host (both {self.host!r}): "
                "Earthdata Login is another host than CMR and the data"
            )
        for name in (self.host, self.login_host):
            if not name or any(c in name for c in "/:@ "):
                raise ValueError(f"not a host name: {name!r}")


LOOPBACK = Network()
"""The twin on loopback: ``127.0.0.1`` for the data hosts, ``localhost`` for the login."""


class ReplicaServer:
    """A loopback HTTP(S) server for one provider replica, run in a background thread.

    Parameters
    ----------
    provider:
        Name used in the request log and fault plan (``"cds"``, ``"earthdata"``, ``"mswep"``).
    routes:
        Routes tried in order; ``pattern`` is a regex matched against the whole path.
    log:
        Shared request log.
    faults:
        The provider's fault plan.
    host:
        Address to bind (``127.0.0.1``); ``url_host`` is the name used in URLs.
    ssl_context:
        Serve HTTPS with this context.
    error_body:
        Builds a provider-style error body from (status, title, detail).
    """

    def __init__(
        self,
        provider: str,
        routes: list[Route],
        *,
        log: RequestLog,
        faults: FaultPlan,
        host: str = "127.0.0.1",
        url_host: str | None = None,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        error_body: Callable[[int, str, str], dict[str, Any]] | None = None,
    ) -> None:
        self.provider = provider
        self.routes = routes
        self.log = log
        self.faults = faults
        self.error_body = error_body or (
            lambda status, title, detail: {"title": title, "detail": detail}
        )
        handler_cls = type(f"{provider}Handler", (_Handler,), {"replica": self})
        self._httpd = _Server((host, port), handler_cls)
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.url_host = url_host or host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.url_host}:{self.port}"

    def start(self) -> ReplicaServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"twin-{self.provider}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    """A client dropping a kept-alive connection is normal: log it, do not print a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            LOG.debug("client %s dropped the connection: %s", client_address, error)
            return
        LOG.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    replica: ReplicaServer
    protocol_version = "HTTP/1.1"
    server_version = "smda-twin"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.replica.provider, format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._status, self._sent, self._recorded = 0, 0, False
        try:
            fault = self.replica.faults.take(method, path, ("status", "slow", "reset"))
            if fault is not None and self._apply_fault(fault):
                return
            response = self._route(method, path, query, body)
        except HttpError as exc:
            response = Response.json(
                self.replica.error_body(exc.status, exc.title, exc.detail), exc.status, exc.headers
            )
        except Exception as exc:  # a bug in a replica must not hang the client
            LOG.exception("replica %s failed on %s %s", self.replica.provider, method, path)
            response = Response.json(self.replica.error_body(500, "internal error", repr(exc)), 500)
        finally:
            pass
        try:
            self._send(method, path, response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self._record(method, path, query)

    def _record(
        self, method: str | None = None, path: str | None = None, query: str | None = None
    ) -> None:
        """Log this request once — before its last bytes go out, so a client that has its
        answer always finds the request in the log."""
        if self._recorded:
            return
        self._recorded = True
        parts = urlsplit(self.path)
        method = method or self.command
        path = parts.path if path is None else path
        query = parts.query if query is None else query
        self.replica.log.add(
            RequestRecord(
                self.replica.provider,
                method,
                path,
                query,
                self._status,
                self._sent,
                time.time(),
                self.headers.get("Range"),
            )
        )

    def _route(self, method: str, path: str, query: str, body: bytes) -> Response:
        allowed = []
        for route in self.replica.routes:
            m = re.fullmatch(route.pattern, path)
            if m is None:
                continue
            if route.method != method and not (route.method == "GET" and method == "HEAD"):
                allowed.append(route.method)
                continue
            request = Request(
                method,
                path,
                parse_qs(query),
                dict(self.headers.items()),
                body,
                m,
                self.replica.base_url,
            )
            return route.handler(request)
        if allowed:
            raise HttpError(405, "method not allowed", f"{method} {path}; allowed: {allowed}")
        raise HttpError(404, "not found", f"no resource at {path}")

    def _apply_fault(self, fault: Fault) -> bool:
        """Apply a generic fault; True if the request is fully handled by it."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self._status = 0
            self._record()
            self.connection.close()
            return True
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        title = (
            HTTPStatus(fault.status).phrase
            if fault.status in HTTPStatus._value2member_map_
            else "error"
        )
        response = Response.json(
            self.replica.error_body(fault.status, title, "injected by the twin"),
            fault.status,
            headers,
        )
        self._send(self.command, urlsplit(self.path).path, response)
        return True

    # -- sending ------------------------------------------------------------------------------
    def _send(self, method: str, path: str, response: Response) -> None:
        if response.file is not None:
            self._send_file(method, path, response)
            return
        body = response.body
        transfer = self.replica.faults.take(method, path, ("truncate", "corrupt")) if body else None
        self._start(response.status, response.content_type, len(body), response.headers)
        if method != "HEAD":
            self._write_body(body, transfer)

    def _send_file(self, method: str, path: str, response: Response) -> None:
        assert response.file is not None
        size = response.file.stat().st_size
        start, end = 0, size - 1
        status = response.status
        headers = dict(response.headers)
        headers["Accept-Ranges"] = "bytes"
        headers.setdefault(
            "Last-Modified", email.utils.formatdate(response.file.stat().st_mtime, usegmt=True)
        )
        spec = self.headers.get("Range")
        if spec and method == "GET":
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", spec.strip())
            if m is None or int(m.group(1)) >= size:
                headers["Content-Range"] = f"bytes */{size}"
                self._start(416, "text/plain", 0, headers)
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        self._start(status, response.content_type, length, headers)
        if method == "HEAD":
            return
        transfer = self.replica.faults.take(method, path, ("truncate", "corrupt"))
        with response.file.open("rb") as fh:
            fh.seek(start)
            self._write_body(fh.read(length), transfer)

    def _start(
        self, status: int, content_type: str, length: int, headers: Mapping[str, str]
    ) -> None:
        self._status = status
        if length == 0 or self.command == "HEAD":
            self._record()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _write_body(self, body: bytes, transfer: Fault | None) -> None:
        if transfer is not None and transfer.kind == "truncate":
            body = body[: len(body) // 2]
            self.close_connection = True
        elif transfer is not None and transfer.kind == "corrupt":
            body = bytes(b ^ 0x5A for b in body[:4096]) + body[4096:]
            body = body[: len(body) // 3] + bytes(len(body) // 3) + body[2 * (len(body) // 3) :]
        self._sent = len(body)
        self._record()
        for i in range(0, len(body), _CHUNK):
            self.wfile.write(body[i : i + _CHUNK])
        if transfer is not None and transfer.kind == "truncate":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
