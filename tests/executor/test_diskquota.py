"""Whether the engine can bound a writable layer: recorded ``docker info`` answers (pure),
then this host's engine, whose overlay2 on ext4 cannot, refusing ``--disk-quota-gb``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from megamind.cli.executor import EXIT_SETTING_REFUSED, executor
from megamind.executor.diskquota import probe, refusal, refusal_from_info

from .conftest import TEST_LABEL

# What `docker info` says, as the engines of each kind answer (the fields read here).
OVERLAY2_EXT4 = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
                                                        ["Native Overlay Diff", "true"], ["userxattr", "false"]]}
OVERLAY2_XFS = {"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "xfs"], ["Supports d_type", "true"],
                                                       ["Native Overlay Diff", "true"]]}
DEVICEMAPPER = {"Driver": "devicemapper", "DriverStatus": [["Pool Name", "docker-thinpool"],
                                                           ["Backing Filesystem", "xfs"], ["Data file", ""]]}
BTRFS = {"Driver": "btrfs", "DriverStatus": [["Build Version", "Btrfs v5.10.1"], ["Library Version", "102"]]}
ZFS = {"Driver": "zfs", "DriverStatus": [["Zpool", "rpool"], ["Zpool Health", "ONLINE"],
                                         ["Parent Dataset", "rpool/docker"]]}
VFS = {"Driver": "vfs", "DriverStatus": None}
FUSE_OVERLAYFS = {"Driver": "fuse-overlayfs", "DriverStatus": []}


@pytest.mark.parametrize("info", [OVERLAY2_XFS, DEVICEMAPPER, BTRFS, ZFS, VFS])
def test_drivers_that_may_bound_a_layer_are_left_to_the_probe(info):
    assert refusal_from_info(info) is None


def test_overlay2_off_xfs_is_refused_saying_why():
    assert refusal_from_info(OVERLAY2_EXT4) == (
        "the storage driver overlay2 limits a container's writable layer only on xfs mounted with pquota, "
        "and this engine's is on extfs")


@pytest.mark.parametrize("info", [FUSE_OVERLAYFS, {"Driver": "aufs"}, {}])
def test_drivers_without_quotas_are_refused(info):
    driver = info.get("Driver", "unknown")
    assert refusal_from_info(info) == f"the storage driver {driver} cannot limit a container's writable layer"


# --- this host's engine -----------------------------------------------------------------


@pytest.fixture(scope="module")
def without_quotas(runtime):
    reason = refusal(runtime, 1)
    if reason is None:
        pytest.skip("this engine bounds writable layers: nothing to refuse")
    return reason


def test_the_probe_agrees_with_docker_info_and_leaves_nothing(engine, runtime, run_label, without_quotas):
    labels = {TEST_LABEL: run_label}
    reason = probe(runtime, 1, labels)
    assert reason and "storage-opt" in reason  # the engine's own words, e.g. "--storage-opt is supported only ..."
    assert not engine.containers.list(all=True, filters={"label": f"{TEST_LABEL}={run_label}"})
    assert not engine.images.list(filters={"label": f"{TEST_LABEL}={run_label}"})


def test_the_agent_refuses_a_disk_quota_before_it_registers(tmp_path, run_label, without_quotas):
    # An API nobody serves: a refusal after registering would be exit 3, not this.
    result = CliRunner().invoke(executor, [
        "--api", "http://127.0.0.1:9", "--api-key", "k", "--state-dir", str(tmp_path), "--network", "none",
        "--label", f"{TEST_LABEL}={run_label}", "--disk-quota-gb", "10",
    ])
    assert result.exit_code == EXIT_SETTING_REFUSED, result.output
    assert f"error: --disk-quota-gb: this engine cannot limit a task's disk: {without_quotas}" in result.output
    assert not (tmp_path / "identity.json").exists()
