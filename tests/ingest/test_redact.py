"""URLs as they may be stored, logged or shown: no credentials, no query values."""

from __future__ import annotations

import pytest

from smda.ingest.endpoints import redact_text, redact_url


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


@pytest.mark.parametrize(
    ("url", "text", "shown"),
    [
        (
            "https://ana:pw@host/a.nc?token=abc&v=2",
            "HTTP 404 for https://ana:pw@host/a.nc?token=abc&v=2 (v=2 is fine)",
            "HTTP 404 for https://ana:***@host/a.nc?token=***&v=*** (v=2 is fine)",
        ),
        (
            "https://TOKEN@host/a.nc",
            "cannot reach https://TOKEN@host/a.nc",
            "cannot reach https://***@host/a.nc",
        ),
        (
            "https://host/a.nc?token=abc",
            "url='https://host/a.nc?token=a%2Fbc'",
            "url='https://host/a.nc?token=***'",
        ),
        (
            "/mnt/mswep/2024001.nc",
            "no such file /mnt/mswep/2024001.nc",
            "no such file /mnt/mswep/2024001.nc",
        ),
    ],
)
def test_redact_text(url: str, text: str, shown: str) -> None:
    assert redact_text(text, url) == shown
