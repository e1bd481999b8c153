"""docker-compose.yml is a valid Compose file with the services the README describes.

Uses Debian's `docker-compose` (scripts/setup.sh installs it); without it the test fails.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def compose(*args: str, **env: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run scripts/test, whose setup installs it")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MEGAMIND_", "DOCKER_GID", "COMPOSE_"))}
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )


def test_the_file_is_valid_with_the_documented_variables():
    result = compose("config", "-q", DOCKER_GID="999", MEGAMIND_API_KEY="mk_owner")
    assert result.returncode == 0, result.stderr
    result = compose("--profile", "gpu", "config", "-q", DOCKER_GID="999")
    assert result.returncode == 0, result.stderr


def test_docker_gid_is_required_with_a_message_saying_how_to_get_it():
    result = compose("config", "-q")
    assert result.returncode != 0
    assert "stat -c %g /var/run/docker.sock" in result.stderr


def test_services_as_documented():
    result = compose("--profile", "gpu", "config", DOCKER_GID="999", MEGAMIND_API_KEY="mk_owner")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"api", "registry", "executor", "executor-gpu"}

    api = services["api"]
    assert api["network_mode"] == "host"  # the registry's 127.0.0.1:5000, as the engine sees it
    assert api["command"].split()[:1] == ["server"]
    assert "--registry 127.0.0.1:5000" in api["command"]
    assert any(v.startswith("api-data:/data") for v in api["volumes"])
    assert "openapi.json" in " ".join(api["healthcheck"]["test"])

    registry = services["registry"]
    assert registry["image"] == "registry:2"
    assert any(v.endswith("/etc/docker/registry/config.yml:ro") and v.startswith(str(ROOT / "registry" / "config.yml"))
               for v in registry["volumes"])
    assert registry["ports"] == ["127.0.0.1:5000:5000/tcp"] or registry["ports"] == ["127.0.0.1:5000:5000"]

    for name in ("executor", "executor-gpu"):
        executor = services[name]
        assert executor["network_mode"] == "host"
        assert executor["command"].startswith("executor --api http://127.0.0.1:8080")
        assert "/var/run/docker.sock:/var/run/docker.sock:rw" in executor["volumes"]
        assert executor["group_add"] == ["999"]
        assert executor["environment"]["MEGAMIND_API_KEY"] == "mk_owner"
        assert executor["depends_on"]["api"]["condition"] == "service_healthy"

    [device] = services["executor-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["executor-gpu"]["profiles"] == ["gpu"]
    assert "deploy" not in services["executor"]


def test_the_build_context_leaves_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", ".megamind"):
        assert path in ignored
