"""`megamind executor` refuses what the owner did not allow, before touching anything."""

from click.testing import CliRunner

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
