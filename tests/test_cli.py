"""The command-line interface: help for every command, configuration errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smda.cli import app
from smda.config import load_settings
from smda.errors import ConfigError

runner = CliRunner()


def _commands(typer_app: object) -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*prefix, name])
        else:
            paths.append(prefix)

    walk(group, [])
    return paths


def test_every_command_has_help() -> None:
    commands = _commands(app)
    assert ["twin", "serve"] in commands and ["demo"] in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        doc_line = result.output.split("\n")
        assert len([line for line in doc_line if line.strip()]) > 3


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SMDA_DATA_DIR", "/srv/smda")
    monkeypatch.setenv("SMDA_REGION", "-105,30,-95,40")
    s = load_settings()
    assert str(s.data_dir) == "/srv/smda" and s.bbox is not None and s.bbox.north == 40


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_REGION", "somewhere")
    with pytest.raises(ConfigError, match="SMDA_"):
        load_settings()


def test_bad_region_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["twin", "params", "--region", "1,2,3"])
    assert result.exit_code == 2


def test_config_shows_no_credentials_of_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMDA_MSWEP_URL", "https://ana:s3cret-pw@mirror.example/{yyyy}{ddd}.nc")
    monkeypatch.setenv("SMDA_PUSHGATEWAY", "http://gw.example:9091/?token=abc123")

    result = CliRunner().invoke(app, ["config"])

    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output and "abc123" not in result.output
    shown = json.loads(result.output)
    assert shown["mswep_url"] == "https://ana:***@mirror.example/{yyyy}{ddd}.nc"
    assert shown["pushgateway"] == "http://gw.example:9091/?token=***"
