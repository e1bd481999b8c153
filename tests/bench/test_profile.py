"""Reading py-spy's raw stacks (bench/profile.py), and the CPU meters it and agentcpu use."""

from __future__ import annotations

import os

from bench.procs import CpuMeter, machine_busy_seconds
from bench.profile import frame_name, parse_collapsed, summarize

RAW = """\
process 12:"python -m megamind.cli";main (megamind/cli/main.py:10);run (megamind/executor/agent.py:40);send (megamind/executor/link.py:7) 3
thread 0x7f (docker);_worker (concurrent/futures/thread.py:83);DockerRuntime.create (megamind/executor/runtime.py:100) 5
main (megamind/cli/main.py:10);run (megamind/executor/agent.py:41) 2
not a stack line
"""


def test_raw_stacks_are_read_outermost_first_with_their_counts():
    stacks = parse_collapsed(RAW)
    assert [count for _, count in stacks] == [3, 5, 2]
    assert stacks[1][0][-1] == "DockerRuntime.create (megamind/executor/runtime.py:100)"


def test_frames_are_named_by_file_and_function():
    assert frame_name("DockerRuntime.create (megamind/executor/runtime.py:100)") == "runtime.py:DockerRuntime.create"
    assert frame_name("<module> (<frozen runpy>)") == "<frozen runpy>:<module>"
    assert frame_name("odd") == "odd"


def test_self_and_inclusive_counts_leave_process_and_thread_frames_out():
    summary = summarize(parse_collapsed(RAW))
    assert summary["total"] == [("samples", 10)]
    assert dict(summary["self"]) == {"runtime.py:DockerRuntime.create": 5, "link.py:send": 3, "agent.py:run": 2}
    inclusive = dict(summary["inclusive"])
    assert inclusive["main.py:main"] == 5  # lines 40 and 41 of run are one function
    assert inclusive["agent.py:run"] == 5
    assert not any(name.startswith(("process ", "thread 0x")) for name in inclusive)


def test_cpu_meters_read_this_process_and_say_none_for_a_gone_one():
    meter = CpuMeter(os.getpid())
    sum(range(200_000))
    assert meter.used() is not None and meter.used() >= 0
    assert CpuMeter(None).used() is None
    assert CpuMeter(2**22 + 12345).share() is None  # above the kernel's pid_max default: no such process
    assert machine_busy_seconds() > 0


def test_a_burst_cpu_breakdown_names_the_agent_the_api_and_the_engine_parts():
    from bench.profile import cpu_breakdown, engine_report
    from bench.sharing import Proc

    def table(cpu):
        return {1: Proc(0, "init", cpu, False), 10: Proc(1, "python", cpu, False),  # the bench
                11: Proc(10, "python", 2 * cpu, False), 12: Proc(10, "python", 3 * cpu, False),
                13: Proc(10, "wrk", cpu, False), 20: Proc(1, "dockerd", cpu, False),
                21: Proc(1, "containerd-shim", cpu, False), 22: Proc(21, "sh", cpu, True),
                30: Proc(1, "pytest", cpu, False)}

    used = cpu_breakdown(table(1.0), table(2.0), 10, {11: "agent", 12: "api"})
    assert used == {"others": 2.0, "bench": 2.0, "agent": 2.0, "api": 3.0, "dockerd": 1.0,
                    "containerd-shim": 1.0, "containers": 1.0}
    text = engine_report({"sdk": [(2.0, {"dockerd": 1.0, "machine": 3.0, "before": 0.1})],
                          "megamind": [(3.0, {"agent": 0.5, "machine": 6.0, "before": 0.0})]})
    assert "sdk: makespan 2000 ms (median 2000); machine 3.00 CPU s = 1.50 cores busy (before: 0.10)" in text
    assert "    agent 0.50" in text
