"""`megamind executor` refuses what the owner did not allow, before touching anything."""

import pytest
from click.testing import CliRunner

from megamind.cli import executor as executor_cli
from megamind.cli.main import cli


def test_host_network_needs_the_owners_flag(tmp_path):
    result = CliRunner().invoke(cli, ["executor", "--api", "http://127.0.0.1:9", "--api-key", "mk_x",
                                      "--state-dir", str(tmp_path), "--network", "host"])
    assert result.exit_code == 2
    assert "--allow-host-network" in result.output
    assert not any(tmp_path.iterdir())  # nothing registered, nothing written


def test_labels_must_be_key_value(tmp_path):
    result = CliRunner().invoke(cli, ["executor", "--state-dir", str(tmp_path), "--label", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


@pytest.fixture
def served(monkeypatch):
    """The configs the command would serve with; nothing is started."""
    configs = []

    async def serve(config):
        configs.append(config)

    monkeypatch.setattr(executor_cli, "_serve", serve)
    return configs


def test_ports_are_published_on_every_address_by_default(tmp_path, served):
    result = CliRunner().invoke(cli, ["executor", "--state-dir", str(tmp_path), "--api-key", "mk_x"])
    assert result.exit_code == 0, result.output
    assert served[0].publish_address == "0.0.0.0"


def test_the_publish_address_is_the_owners_choice(tmp_path, served):
    result = CliRunner().invoke(cli, ["executor", "--state-dir", str(tmp_path), "--api-key", "mk_x",
                                      "--publish-address", "127.0.0.1", "--memory", "512", "--cpus", "1.5"])
    assert result.exit_code == 0, result.output
    config = served[0]
    assert (config.publish_address, config.memory_mb, config.cpus) == ("127.0.0.1", 512, 1.5)


@pytest.mark.parametrize("address", ["localhost", "300.1.1.1", ""])
def test_the_publish_address_is_an_ip_address(tmp_path, served, address):
    result = CliRunner().invoke(cli, ["executor", "--state-dir", str(tmp_path), "--publish-address", address])
    assert result.exit_code == 2 and "is not an IP address" in result.output
    assert served == [] and not any(tmp_path.iterdir())
