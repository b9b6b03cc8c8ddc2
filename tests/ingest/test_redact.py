"""URLs as they may be stored, logged or shown: no credentials, no query values."""

from __future__ import annotations

import pytest

from smda.ingest.endpoints import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ana:pw@host/a/{yyyy}.nc", "https://ana:***@host/a/{yyyy}.nc"),
        ("https://TOKEN@host/a.nc", "https://***@host/a.nc"),
        ("https://host/a.nc?token=abc&v=2", "https://host/a.nc?token=***&v=***"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("/mnt/mswep/{yyyy}{ddd}.nc", "/mnt/mswep/{yyyy}{ddd}.nc"),
        ("http://127.0.0.1:9091", "http://127.0.0.1:9091"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
