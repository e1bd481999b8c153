"""Where the client finds the API and its key: the environment, then the login file.

``MEGAMIND_API_URL`` and ``MEGAMIND_API_KEY`` win over the file that ``megamind login``
writes (``~/.config/megamind/config.json``, or ``$MEGAMIND_CONFIG``), which is readable
by its owner only: it holds a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_URL = "http://127.0.0.1:8080"
ENV_API_URL = "MEGAMIND_API_URL"
ENV_API_KEY = "MEGAMIND_API_KEY"
ENV_CONFIG = "MEGAMIND_CONFIG"


class ConfigError(Exception):
    """The login file exists but cannot be used."""


@dataclass(frozen=True)
class Settings:
    api_url: str
    api_key: str | None
    # Where each value came from, for messages: "environment", a file path, or "default".
    url_source: str = "default"
    key_source: str | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "megamind" / "config.json"


def read_config(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = config_path(env)
    stored = read_config(path)
    url, url_source = DEFAULT_API_URL, "default"
    if env.get(ENV_API_URL):
        url, url_source = env[ENV_API_URL], "environment"
    elif stored.get("api_url"):
        url, url_source = stored["api_url"], str(path)
    key, key_source = None, None
    if env.get(ENV_API_KEY):
        key, key_source = env[ENV_API_KEY], "environment"
    elif stored.get("api_key"):
        key, key_source = stored["api_key"], str(path)
    return Settings(url, key, url_source, key_source)


def save_config(path: Path, api_url: str, api_key: str) -> None:
    """Write the login file, mode 600 from its first byte, replacing any older one whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"api_url": api_url, "api_key": api_key}, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)  # O_CREAT's mode is cut by the umask, never widened; be exact
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_config(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
