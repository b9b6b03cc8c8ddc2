"""The provenance as published: what made a day, without secrets.

Keys naming passwords, tokens, keys or credentials are dropped and the user:password parts and
secret-looking query parameters of URLs removed, at any depth, before a provenance goes into a
COG's tags, a STAC item or an export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from smda.storage.chain import canonical_provenance

__all__ = ["is_provisional", "public_provenance"]

_SECRET = re.compile(
    r"(^|[_\W])(password|passwd|pwd|secret|token|credentials?|api_?key|auth(orization)?|cookie"
    r"|session|sig(nature)?)($|[_\W])",
    re.I,
)
"""Names of keys (and URL query parameters) whose values are never published."""


def _public_url(url: str) -> str:
    """``url`` without user:password and without secret-looking query parameters."""
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _SECRET.search(k)
    ]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def public_provenance(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance without secrets: keys naming passwords, tokens, keys or credentials are
    dropped and user:password parts of URLs removed, at any depth."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items() if not _SECRET.search(str(k))}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, str) and "://" in value:
            return _public_url(value)
        return value

    cleaned: dict[str, Any] = json.loads(canonical_provenance(clean(provenance)))
    return cleaned


def is_provisional(provenance: Mapping[str, Any]) -> bool:
    """Whether a day was made from provisional inputs (ERA5T, MSWEP NRT: it will be recomputed
    when the final data arrive): an input of ``provenance["inputs"]`` (the ledger records of
    :func:`smda.storage.inputs.input_versions`) is ``provisional`` or has ``provisional_days``."""
    inputs = provenance.get("inputs")
    if not isinstance(inputs, Mapping):
        return False
    return any(
        isinstance(record, Mapping)
        and (bool(record.get("provisional")) or bool(record.get("provisional_days")))
        for record in inputs.values()
    )
