"""Where the client finds the API and its key, and the login file."""

import json
import os
import stat
from pathlib import Path

import pytest

from megamind.client.config import (
    DEFAULT_API_URL,
    ConfigError,
    config_path,
    load_settings,
    remove_config,
    save_config,
)


def test_the_default_path_is_under_the_users_config_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path({}) == tmp_path / ".config" / "megamind" / "config.json"
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/megamind/config.json")
    assert str(config_path({"MEGAMIND_CONFIG": "/etc/m.json", "XDG_CONFIG_HOME": "/x"})) == "/etc/m.json"


def test_nothing_configured_is_the_local_default_without_a_key(settings_env):
    settings = load_settings()
    assert (settings.api_url, settings.api_key, settings.url_source) == (DEFAULT_API_URL, None, "default")


def test_the_login_file_is_written_mode_600_and_read_back(settings_env):
    old_umask = os.umask(0o000)  # the mode must not depend on a strict umask
    try:
        save_config(settings_env, "http://api:8080", "mk_secret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(settings_env.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings_env.parent.stat().st_mode) == 0o700
    assert json.loads(settings_env.read_text()) == {"api_url": "http://api:8080", "api_key": "mk_secret"}
    settings = load_settings()
    assert (settings.api_url, settings.api_key) == ("http://api:8080", "mk_secret")
    assert settings.key_source == str(settings_env)
    assert [p.name for p in settings_env.parent.iterdir()] == ["config.json"]  # no temporary left


def test_an_existing_wider_file_is_replaced_by_a_private_one(settings_env):
    settings_env.parent.mkdir(parents=True)
    settings_env.write_text("{}")
    settings_env.chmod(0o644)
    save_config(settings_env, "http://a", "mk_k")
    assert stat.S_IMODE(settings_env.stat().st_mode) == 0o600


def test_the_environment_wins_over_the_file(settings_env, monkeypatch):
    save_config(settings_env, "http://file:1", "mk_file")
    monkeypatch.setenv("MEGAMIND_API_KEY", "mk_env")
    settings = load_settings()
    assert (settings.api_url, settings.api_key, settings.key_source) == ("http://file:1", "mk_env", "environment")
    monkeypatch.setenv("MEGAMIND_API_URL", "http://env:2")
    assert load_settings().api_url == "http://env:2"


def test_a_broken_file_is_a_config_error(settings_env):
    settings_env.parent.mkdir(parents=True)
    settings_env.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings()
    settings_env.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_settings()


def test_remove(settings_env):
    assert remove_config(settings_env) is False
    save_config(settings_env, "http://a", "mk_k")
    assert remove_config(settings_env) is True
    assert not settings_env.exists()
