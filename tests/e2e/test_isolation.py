"""What a task container may do on the owner's host, read back from the engine itself."""

from __future__ import annotations

from megamind.executor.spec import ALLOWED_CAPABILITIES

from .conftest import containers_of


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


def test_a_task_cannot_gain_privileges_inside(alice, executor):
    # Without CAP_SYS_ADMIN or CAP_NET_ADMIN these fail even for root in the container.
    taskid = alice.run(executor.hwid, "mount -t tmpfs none /mnt 2>/dev/null && echo mounted; "
                                      "ip link add dummy0 type dummy 2>/dev/null && echo linked; echo done")
    alice.wait_state(taskid, 4)
    assert alice.wait_logs(taskid, lambda ls: ls == ["done"])
