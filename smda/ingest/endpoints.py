"""Where the providers are: frozen endpoint descriptions and the endpoints file.

In production the providers' clients use their real URLs and their own credential lookup.
With the offline twin, ``smda twin serve`` writes an *endpoints file* (JSON) describing its
loopback replicas; setting ``SMDA_ENDPOINTS`` to that file points every client at the twin.
The file holds loopback URLs and throw-away twin credentials only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from smda.errors import ConfigError
from smda.storage.atomic import atomic_write_bytes

__all__ = [
    "CdsEndpoint",
    "EarthdataEndpoint",
    "Endpoints",
    "MswepEndpoint",
    "redact_text",
    "redact_url",
]


@dataclass(frozen=True)
class CdsEndpoint:
    """Copernicus CDS retrieve API (``url`` ends with ``/api``)."""

    url: str
    key: str | None = None


@dataclass(frozen=True)
class EarthdataEndpoint:
    """NASA Earthdata: Earthdata Login host, CMR search base URL and credentials."""

    edl_hostname: str
    cmr_base_url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_bundle: str | None = None


@dataclass(frozen=True)
class MswepEndpoint:
    """MSWEP daily files: URL template with ``{yyyy}`` and ``{ddd}`` (fsspec URL)."""

    url_template: str


@dataclass(frozen=True)
class Endpoints:
    """All provider endpoints of one deployment (or of one running twin)."""

    cds: CdsEndpoint
    earthdata: EarthdataEndpoint
    mswep: MswepEndpoint
    control_url: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def write(self, path: Path) -> None:
        """Write the endpoints file atomically, readable only by its owner (it holds keys)."""
        atomic_write_bytes(path, self.to_json().encode(), mode=0o600)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoints:
        try:
            return cls(
                cds=CdsEndpoint(**data["cds"]),
                earthdata=EarthdataEndpoint(**data["earthdata"]),
                mswep=MswepEndpoint(**data["mswep"]),
                control_url=data.get("control_url"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"endpoints file is missing or has an unknown entry: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> Endpoints:
        """Read an endpoints file written by ``smda twin serve``."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"endpoints file {path} does not exist: start the twin with "
                "`smda twin serve --endpoints-file PATH` or unset SMDA_ENDPOINTS"
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"endpoints file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def client_environment(endpoints: Endpoints) -> dict[str, str]:
    """Environment variables that point the providers' own clients at ``endpoints``."""
    env = {"CDSAPI_URL": endpoints.cds.url}
    if endpoints.cds.key:
        env["CDSAPI_KEY"] = endpoints.cds.key
    if endpoints.earthdata.token:
        env["EARTHDATA_TOKEN"] = endpoints.earthdata.token
    if endpoints.earthdata.ca_bundle:
        env["REQUESTS_CA_BUNDLE"] = endpoints.earthdata.ca_bundle
        env["SSL_CERT_FILE"] = endpoints.earthdata.ca_bundle
    return env


def redact_url(url: str) -> str:
    """``url`` as it may be stored, logged or shown: the password of its user info and every
    query value replaced by ``***`` (a user info without a password, often a token, entirely).

    >>> redact_url("https://ana:s3cret@mirror.example/NRT/{yyyy}{ddd}.nc?token=abc&v=2")
    'https://ana:***@mirror.example/NRT/{yyyy}{ddd}.nc?token=***&v=***'
    >>> redact_url("/mnt/mswep/{yyyy}{ddd}.nc")
    '/mnt/mswep/{yyyy}{ddd}.nc'
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with the secrets of ``url`` replaced by ``***``
    wherever it quotes them: the value of each of its query keys (``?key=…``, ``&key=…``, also
    when re-encoded by a client) and the password or token of its user info.

    For messages built by clients that quote the URL they were given (``FileNotFoundError(url)``,
    ``InvalidURL``); text that does not quote ``url`` comes back unchanged.

    >>> url = "https://ana:pw@h/a.nc?token=abc&v=2"
    >>> redact_text(f"HTTP 404 for {url}", url)
    'HTTP 404 for https://ana:***@h/a.nc?token=***&v=***'
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return text
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            text = text.replace(f"{userinfo}@", f"{user}:***@")
        elif userinfo:
            text = text.replace(f"{userinfo}@", "***@")
    for key in {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}:
        text = re.sub(rf"([?&]{re.escape(key)}=)[^&#\s'\"]*", r"\1***", text)
    return text
