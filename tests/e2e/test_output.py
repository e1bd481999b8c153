"""Every line a task prints reaches the customer, on a real engine, many times in a row.

Each race that used to lose lines is run 20 times in one test: a flaky one shows.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import tarfile
import threading
import time

ROUNDS = 20
INTERLEAVED = "i=0; while [ $i -lt 30 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
FAIL_AT_ONCE = "echo about to fail; exit 3"
HELLO = "for i in 1 2 3 4 5; do echo count $i/5; done; echo done"


def first_sight_of_end(api, taskid: str, timeout: float = 30.0) -> dict:
    """Poll gettasklist as fast as a client may, and return the task the first time it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = api.task(taskid)
        if task is not None and task["state"] in (4, 5):
            return task
        time.sleep(0.1)  # as the contract's clients poll: ten times a second
    raise AssertionError(f"task {taskid} did not end within {timeout}s")


def run_to_end(api, hwid: str, params: str, **extra) -> tuple[str, dict]:
    taskid = api.run(hwid, params, **extra)
    task = first_sight_of_end(api, taskid)
    return taskid, task


def test_interleaved_stdout_and_stderr_keep_the_last_20_stdout_lines(reader, executor):
    for _ in range(ROUNDS):
        taskid, task = run_to_end(reader, executor.hwid, INTERLEAVED)
        assert task["state"] == 4, task
        assert reader.logs(taskid) == [f"out{i}" for i in range(10, 30)]
        assert reader.output(taskid) == [f"out{i}" for i in range(30)]
        assert reader.output(taskid, "stderr") == [f"err{i}" for i in range(30)]
        assert reader.deltask(taskid).status == 200
        reader.wait_free(executor.hwid)


def test_a_task_that_fails_at_once_keeps_its_line(reader, executor):
    for _ in range(ROUNDS):
        taskid, task = run_to_end(reader, executor.hwid, FAIL_AT_ONCE)
        assert (task["state"], task["error_msg"]) == (5, "exited with code 3")
        assert reader.logs(taskid) == ["about to fail"]
        assert reader.deltask(taskid).status == 200
        reader.wait_free(executor.hwid)


def test_the_last_lines_are_there_at_the_first_sight_of_the_end(reader, executor):
    for _ in range(ROUNDS):
        taskid, task = run_to_end(reader, executor.hwid, HELLO)
        assert task["state"] == 4
        assert reader.logs(taskid) == [f"count {i}/5" for i in range(1, 6)] + ["done"]
        assert reader.deltask(taskid).status == 200
        reader.wait_free(executor.hwid)


def test_a_follower_receives_every_line_of_a_chatty_task_in_order(reader, executor):
    count = 100_000
    expected = [str(i) for i in range(count)]
    for _ in range(ROUNDS):
        taskid = reader.run(executor.hwid, f"seq 0 {count - 1}")
        received = list(reader.follow(taskid))  # opened before the task runs; ends when it has ended
        assert len(received) == count and received == expected
        assert reader.task(taskid)["state"] == 4
        assert reader.deltask(taskid).status == 200
        reader.wait_free(executor.hwid)


PACED = ("i=0; while [ $i -lt 1500 ]; do echo line $i; echo err $i >&2; i=$((i+1)); "
         "[ $((i % 100)) -eq 0 ] && sleep 0.1; done; true")


def test_an_agent_killed_mid_task_resumes_with_no_gap_and_no_duplicate(reader, start_executor, tmp_path):
    state_dir = tmp_path / "agent"
    agent = start_executor(state_dir=state_dir)
    for round_ in range(ROUNDS):
        taskid = reader.run(agent.hwid, PACED)
        reader.wait_state(taskid, 3)
        reader.wait_logs(taskid, lambda lines: len(lines) >= 20)
        time.sleep(0.2 + (round_ % 5) * 0.1)  # killed at a different moment each round
        agent.stop(signal.SIGKILL)
        agent = start_executor(state_dir=state_dir)
        task = first_sight_of_end(reader, taskid)
        assert task["state"] == 4, task
        assert reader.output(taskid) == [f"line {i}" for i in range(1500)]
        assert reader.output(taskid, "stderr") == [f"err {i}" for i in range(1500)]
        assert reader.logs(taskid) == [f"line {i}" for i in range(1480, 1500)]
        assert reader.deltask(taskid).status == 200
        reader.wait_free(agent.hwid)


ROUND_TRIP = ("mkdir -p /megamind/output/nested/deeper && cp /megamind/input/blob.bin /megamind/output/copy.bin"
              " && echo \"$MEGAMIND_PARAMS\" > /megamind/output/nested/deeper/params.txt"
              " && : > /megamind/output/empty && echo MEGAMIND_PROGRESS=100")


def test_inputs_and_results_round_trip_byte_for_byte(reader, executor):
    for round_ in range(ROUNDS):
        blob = os.urandom(256 * 1024 + round_)
        uploaded = reader.upload("blob.bin", blob)
        assert (uploaded["name"], uploaded["size"]) == ("blob.bin", len(blob))
        taskid, task = run_to_end(reader, executor.hwid, ROUND_TRIP, inputs=[uploaded["file_id"]])
        assert task["state"] == 4, task
        answer = reader.results(taskid)
        assert answer.status == 200, answer
        with tarfile.open(fileobj=io.BytesIO(answer.raw), mode="r:gz") as archive:
            files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
        assert hashlib.sha256(files["copy.bin"]).digest() == hashlib.sha256(blob).digest()
        assert files["nested/deeper/params.txt"] == (ROUND_TRIP + "\n").encode()
        assert files["empty"] == b""
        assert reader.detail(taskid)["progress"] == 100
        assert reader.deltask(taskid).status == 200
        reader.wait_free(executor.hwid)


def test_a_restarted_tasks_lines_follow_the_old_ones(reader, executor):
    taskid, _ = run_to_end(reader, executor.hwid, "echo run; echo again")
    assert reader.output(taskid) == ["run", "again"]
    assert reader.restart(taskid).status == 200
    deadline = time.monotonic() + 20
    while len(reader.output(taskid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.output(taskid) == ["run", "again", "run", "again"]


def test_follow_ends_for_every_reader_when_the_task_ends(reader, executor):
    taskid = reader.run(executor.hwid, "i=0; while [ $i -lt 50 ]; do echo $i; i=$((i+1)); sleep 0.02; done")
    results: list[list[str]] = [[] for _ in range(3)]

    def read(into):
        into.extend(reader.follow(taskid, timeout=30))

    threads = [threading.Thread(target=read, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not any(t.is_alive() for t in threads)
    assert all(r == [str(i) for i in range(50)] for r in results)


def test_whole_logs_survive_an_api_kill_and_their_executor_going_away(reader, server, executor):
    for _ in range(3):
        taskid = reader.run(executor.hwid, PACED)
        reader.wait_state(taskid, 3)
        reader.wait_logs(taskid, lambda lines: len(lines) >= 20)
        server.stop(signal.SIGKILL)  # lines it held but had not written yet are sent again
        server.start()
        task = first_sight_of_end(reader, taskid)
        assert task["state"] == 4, task
        assert reader.output(taskid) == [f"line {i}" for i in range(1500)]
        assert reader.output(taskid, "stderr") == [f"err {i}" for i in range(1500)]
    executor.stop()
    assert reader.output(taskid, tail=3) == ["line 1497", "line 1498", "line 1499"]
    assert reader.logs(taskid) == [f"line {i}" for i in range(1480, 1500)]
