"""What a task container may do on the owner's host, read back from the engine itself."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from megamind.executor.spec import ALLOWED_CAPABILITIES

from .api import poll
from .conftest import TEST_LABEL, containers_of, remove_quietly
from .processes import MEGAMIND, stop

MiB = 1024 * 1024


def test_task_containers_are_confined_to_the_owners_limits(alice, start_executor, engine):
    ex = start_executor(extra_args=("--memory", "64", "--cpus", "0.5", "--pids-limit", "64"))
    # A fork bomb in miniature: the kernel refuses the 65th process, the shell dies of it.
    taskid = alice.run(ex.hwid, "for i in $(seq 1 200); do sleep 30 & done; echo survived")
    task = alice.wait_state(taskid, 5)
    assert task["error_msg"].startswith("exited with code")
    assert "survived" not in alice.logs(taskid)
    (container,) = containers_of(engine, taskid)
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == sorted(ALLOWED_CAPABILITIES)
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert not host.get("Binds") and not container.attrs["Mounts"] and not host.get("Devices")
    assert host["PidMode"] == "" and host["IpcMode"] in ("private", "shareable")


def test_a_task_cannot_gain_privileges_inside(alice, executor, engine, registry, test_image, run_id):
    # Root in the task, a mount point that exists: what refuses the mount and the link is
    # the missing CAP_SYS_ADMIN and CAP_NET_ADMIN (EPERM), nothing else.
    script = ("mkdir -p /scratch && echo made; id -u; mount -t tmpfs none /scratch 2>&1; echo mount=$?; "
              "ip link add dummy0 type dummy 2>&1; echo link=$?")
    taskid = alice.run(executor.hwid, script)
    alice.wait_state(taskid, 4)
    lines = alice.wait_logs(taskid, lambda ls: ls and ls[-1].startswith("link="))
    assert lines[:2] == ["made", "0"], lines
    assert "mount: permission denied (are you root?)" in lines and "mount=0" not in lines, lines
    assert "ip: RTNETLINK answers: Operation not permitted" in lines and "link=0" not in lines, lines

    # The control: the same script in a throwaway container of the same image that holds
    # the two capabilities. The mount succeeds; the link is no longer refused for permission
    # (it may still fail where the host has no dummy driver).
    granted = engine.containers.run(
        f"{registry.address}/megatest:latest", ["sh", "-c", script], cap_drop=["ALL"],
        cap_add=["SYS_ADMIN", "NET_ADMIN"], network_mode="none", remove=True, labels={TEST_LABEL: run_id},
    ).decode().splitlines()
    assert granted[:2] == ["made", "0"] and "mount=0" in granted, granted
    assert not any("permission denied" in line or "not permitted" in line for line in granted), granted


# --- the task network and each slot's memory, as the engine holds them ---------------------

ISOLATED_NETWORK = "megamind-isolated"
ICC_OPTION = "com.docker.network.bridge.enable_icc"


def test_tasks_run_on_the_hosts_isolated_network_and_still_publish_ports(alice, start_executor, engine):
    ex = start_executor(extra_args=("--network", "isolated", "--publish-address", "127.0.0.1"))
    serve = "mkdir -p /www && echo hello-isolated > /www/index.html && echo serving && httpd -f -p 8080 -h /www"
    taskid = alice.run(ex.hwid, serve, ports=[8080])
    alice.wait_state(taskid, 3)
    alice.wait_logs(taskid, lambda lines: lines == ["serving"])
    (mapping,) = alice.wait_detail(taskid, lambda detail: detail["ports"])["ports"]

    (container,) = containers_of(engine, taskid)
    assert container.attrs["HostConfig"]["NetworkMode"] == ISOLATED_NETWORK
    assert set(container.attrs["NetworkSettings"]["Networks"]) == {ISOLATED_NETWORK}
    network = engine.networks.get(ISOLATED_NETWORK)
    assert network.attrs["Driver"] == "bridge"
    assert network.attrs["Options"][ICC_OPTION] == "false"  # the engine drops traffic between its containers
    assert container.id in network.attrs["Containers"]

    # Published on the loopback address only, and reached there.
    assert [b["HostIp"] for b in container.attrs["HostConfig"]["PortBindings"]["8080/tcp"]] == ["127.0.0.1"]
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mapping['host']}/", timeout=2) as resp:
                assert resp.read() == b"hello-isolated\n"
                break
        except OSError:
            assert time.monotonic() < deadline, "the published port never answered"
            time.sleep(0.2)
    assert alice.deltask(taskid).status == 200


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def test_slots_put_their_tasks_on_one_isolated_network_each_within_its_memory_share(
        alice, server, alice_key, run_id, tmp_path, engine):
    # Neither --network nor --memory: the defaults are what is proved.
    state_dir = tmp_path / "slotted"
    state_dir.mkdir()
    args = MEGAMIND + ["executor", "--api", server.url, "--api-key", alice_key, "--state-dir", str(state_dir),
                       "--slots", "2", "--label", f"{TEST_LABEL}={run_id}"]
    log_file = state_dir / "agent.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log)
    hwids: list[str] = []
    try:
        poll(lambda: log_file.read_text(errors="replace"),
             lambda text: proc.poll() is None and text.count("megamind.executor.link: connected to") >= 2,
             20, "both slots online")
        hwids = [json.loads((state_dir / f"slot-{i}" / "identity.json").read_text())["hwid"] for i in range(2)]
        share_mb = _mem_total_mb() // 2
        assert {item["hwid"]: item["ram"] for item in alice.hwlist() if item["hwid"] in hwids} == {
            hwid: share_mb for hwid in hwids}

        # A limit past the slot's share is refused; one within it is the task's.
        refused = alice.addtask(hwids[1], "sleep 60", limits={"memory": share_mb + 1})
        assert refused.status != 200 and "cannot hold the limits" in refused.json["message"]
        plain = alice.run(hwids[0], "sleep 60")
        limited = alice.run(hwids[1], "sleep 60", limits={"memory": 64})
        for taskid in (plain, limited):
            alice.wait_state(taskid, 3)
        (plain_container,) = containers_of(engine, plain)
        (limited_container,) = containers_of(engine, limited)
        assert plain_container.attrs["HostConfig"]["Memory"] == share_mb * MiB
        assert plain_container.attrs["HostConfig"]["MemorySwap"] == share_mb * MiB
        assert limited_container.attrs["HostConfig"]["Memory"] == 64 * MiB

        # Both slots' tasks on the one network that keeps them apart.
        network = engine.networks.get(ISOLATED_NETWORK)
        assert network.attrs["Options"][ICC_OPTION] == "false"
        for container in (plain_container, limited_container):
            assert container.attrs["HostConfig"]["NetworkMode"] == ISOLATED_NETWORK
            assert set(container.attrs["NetworkSettings"]["Networks"]) == {ISOLATED_NETWORK}
            assert container.id in network.attrs["Containers"]
    finally:
        stop(proc)
        for hwid in hwids:
            for container in engine.containers.list(all=True, sparse=True,
                                                    filters={"label": f"network.megamind.hwid={hwid}"}):
                remove_quietly(container)
