"""Fixtures for the clients: the real application in a thread and fake agents (tests/client/live.py)."""

from __future__ import annotations

import pytest

from .live import HARDWARE, LiveServer, agent, live, new_agent, server_config

__all__ = ["agent", "live", "new_agent"]  # fixtures, shared with the CLI tests


@pytest.fixture
def key(live) -> str:
    return live.new_key("alice")


@pytest.fixture
def hardware() -> dict:
    return dict(HARDWARE)


@pytest.fixture
def limited_live(tmp_path):
    """A server that allows 2 calls per second per key."""
    server = LiveServer(server_config(tmp_path, db_path=tmp_path / "limited.sqlite", rate_limit="2/second"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    """A clean environment for settings: no MEGAMIND_* variables, the login file under tmp_path."""
    for name in ("MEGAMIND_API_URL", "MEGAMIND_API_KEY", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "conf" / "config.json"
    monkeypatch.setenv("MEGAMIND_CONFIG", str(path))
    return path
