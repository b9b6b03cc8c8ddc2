"""Provider credentials as files (``CDSAPI_KEY_FILE``, ``EARTHDATA_TOKEN_FILE`` …: Docker
secrets), read by :mod:`smda.ingest.credentials` where the providers' clients are made."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from smda.errors import CredentialsError
from smda.ingest.clients import cds_client, earthdata_login
from smda.ingest.credentials import CREDENTIAL_VARIABLES, file_credentials

#: A CDS URL on loopback where nothing listens: the client's construction probe fails at once.
CLOSED_CDS = "http://127.0.0.1:9/api"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_gives_the_value_without_surrounding_whitespace(tmp_path: Path) -> None:
    env = {
        "CDSAPI_KEY_FILE": secret(tmp_path, "cds", "  abcd-1234\n"),
        "EARTHDATA_PASSWORD_FILE": secret(tmp_path, "pw", "p4ss word\n"),
        "EARTHDATA_USERNAME": "ana",
    }
    assert file_credentials(env) == {"CDSAPI_KEY": "abcd-1234", "EARTHDATA_PASSWORD": "p4ss word"}


def test_an_empty_file_counts_as_unset(tmp_path: Path) -> None:
    env = {"EARTHDATA_TOKEN_FILE": secret(tmp_path, "token", "\n")}
    assert file_credentials(env) == {}


def test_a_variable_and_its_file_together_are_refused(tmp_path: Path) -> None:
    env = {"CDSAPI_KEY": "plain", "CDSAPI_KEY_FILE": secret(tmp_path, "cds", "from-file")}
    with pytest.raises(CredentialsError, match="both CDSAPI_KEY and CDSAPI_KEY_FILE"):
        file_credentials(env)


def test_an_unreadable_file_is_named_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CredentialsError) as err:
        file_credentials({"EARTHDATA_TOKEN_FILE": str(missing)})
    message = str(err.value)
    assert f"EARTHDATA_TOKEN_FILE={missing}" in message and "\n" not in message


def test_cds_client_reads_the_key_file_and_restores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDSAPI_URL", CLOSED_CDS)
    monkeypatch.setenv("CDSAPI_KEY_FILE", secret(tmp_path, "cds", "0000-secret-key\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns that its message probe failed
        client = cds_client()
    assert client.key == "0000-secret-key"
    assert "CDSAPI_KEY" not in os.environ


def test_cds_client_without_credentials_still_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cdsapirc
    monkeypatch.setenv("CDSAPI_KEY_FILE", secret(tmp_path, "cds", ""))
    with pytest.raises(CredentialsError, match="CDSAPI_KEY"):
        cds_client()


def test_earthdata_login_sees_the_token_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import earthaccess

    seen: dict[str, Any] = {}

    class Auth:
        authenticated = True

    def login(strategy: str, system: Any) -> Auth:
        seen["strategy"] = strategy
        seen["token"] = os.environ.get("EARTHDATA_TOKEN")
        return Auth()

    monkeypatch.setattr(earthaccess, "login", login)
    monkeypatch.setenv("EARTHDATA_TOKEN_FILE", secret(tmp_path, "token", "eyJ.token.sig\n"))
    earthdata_login()
    assert seen == {"strategy": "environment", "token": "eyJ.token.sig"}
    assert "EARTHDATA_TOKEN" not in os.environ


def test_earthdata_login_refuses_a_token_given_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARTHDATA_TOKEN", "a")
    monkeypatch.setenv("EARTHDATA_TOKEN_FILE", secret(tmp_path, "token", "b"))
    with pytest.raises(CredentialsError, match="EARTHDATA_TOKEN_FILE"):
        earthdata_login()


def test_earthdata_login_without_credentials_says_what_to_set_and_never_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """earthaccess's last resort is a terminal prompt; a scheduled run gets the error instead."""
    import builtins
    import getpass

    import earthaccess
    from earthaccess.auth import Auth

    def prompt(*_: Any, **__: Any) -> str:
        raise AssertionError("prompted for Earthdata credentials")

    monkeypatch.setattr(builtins, "input", prompt)
    monkeypatch.setattr(getpass, "getpass", prompt)
    monkeypatch.setattr(earthaccess, "_auth", Auth())
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    with pytest.raises(CredentialsError, match="EARTHDATA_TOKEN"):
        earthdata_login()
