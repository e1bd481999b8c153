"""Whose processes used the CPU during a run (bench/sharing.py)."""

from __future__ import annotations

import os

from bench.sharing import Proc, cpu_by_kind, kind_of, read_processes, sharing_note

ROOT = 100


def procs(cpu: float = 0.0) -> dict[int, Proc]:
    return {
        1: Proc(0, "init", cpu, False),
        2: Proc(0, "kthreadd", 0.0, False),
        7: Proc(2, "kworker/0:1", cpu, False),
        ROOT: Proc(1, "python", cpu, False),
        101: Proc(ROOT, "python", cpu, False),  # the API
        102: Proc(101, "wrk", cpu, False),
        200: Proc(1, "dockerd", cpu, False),
        201: Proc(1, "containerd-shim", cpu, False),
        202: Proc(201, "sh", cpu, True),  # a task's process
        300: Proc(1, "pytest", cpu, False),  # someone else's
        301: Proc(300, "python", cpu, False),
    }


def test_processes_are_ours_the_engines_the_kernels_or_others():
    table = procs()
    assert [kind_of(p, table, ROOT) for p in (ROOT, 101, 102)] == ["ours"] * 3
    assert [kind_of(p, table, ROOT) for p in (200, 201, 202)] == ["engine"] * 3
    assert kind_of(7, table, ROOT) == "kernel"
    assert [kind_of(p, table, ROOT) for p in (1, 300, 301)] == ["others"] * 3


def test_cpu_is_summed_by_kind_for_processes_seen_at_both_looks():
    before, after = procs(1.0), procs(3.0)
    after[999] = Proc(1, "newcomer", 50.0, False)  # born between the looks: not counted
    after[301] = Proc(300, "other", 9.0, False)  # pid reused by another command: not counted
    used = cpu_by_kind(before, after, ROOT)
    assert used == {"ours": 6.0, "engine": 6.0, "kernel": 2.0, "others": 4.0}


def test_the_note_gives_each_kind_and_the_others_share():
    note = sharing_note({"ours": 100.0, "engine": 50.0, "kernel": 1.0, "others": 30.0}, 200.0, 150.0, 2, [5, 5, 6])
    assert note.startswith("CPU seconds over 150 s x 2 cores: ours 100, engine 50, kernel 1, others 30")
    assert "others used 10% of the machine" in note
    assert note.endswith("the engine restarted 1 time(s) during the run")
    assert sharing_note({}, 0.0, 0.0, 2, []) == "not sampled"


def test_this_process_is_read():
    mine = read_processes()[os.getpid()]
    assert mine.cpu_s > 0 and mine.comm
