"""The blocking Client: the same calls, in scripts and inside a running event loop (Jupyter)."""

import asyncio
import threading
import time

import pytest

from megamind.client import Client, ExecutorBusy, ResultsNotFound, TaskNotFound, TaskState, TransportError

IMAGE = "megamind.network/helloworld:latest"


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "megamind-client"]


def test_a_script_runs_a_task_start_to_end(live, key, agent):
    with Client(live.url, key) as api:
        [hw] = api.hw_list()
        taskid = api.add_task(IMAGE, hw.hwid, params="hi")
        command = agent.command()
        agent.state(taskid, 3)
        agent.logs(taskid, ["hello", "world"])
        agent.ack(command.id)
        task = api.wait_task(taskid, timeout=5, interval=0.05)
        assert task.state is TaskState.RUNNING and task.state.name == "RUNNING"
        assert [t.taskid for t in api.task_list()] == [taskid]
        with pytest.raises(ExecutorBusy) as caught:
            api.add_task(IMAGE, hw.hwid)
        assert (caught.value.code, caught.value.status) == (9, 409)

        agent.state(taskid, 4)
        assert list(api.follow_logs(taskid)) == ["hello", "world"]
        assert list(api.follow_logs(taskid, tail=1)) == ["world"]
        assert api.logs(taskid, "stderr") == []
        with pytest.raises(ResultsNotFound):
            api.results(taskid)
        info = api.upload_file(b"input", name="in.txt")
        assert (info.name, info.size) == ("in.txt", 5)
        api.restart_task(taskid)
        assert api.task(taskid).state is TaskState.SETUP
        api.delete_task(taskid)
        with pytest.raises(TaskNotFound):
            api.task_logs(taskid)
        assert api.executors() == [] and "paths" in api.openapi()


def test_it_works_inside_a_running_event_loop(live, key, agent):
    api = Client(live.url, key)

    async def notebook_cell():
        # A running loop, as in Jupyter: asyncio.run would refuse, the Client does not.
        return api.hw_list()
    try:
        [hw] = asyncio.run(notebook_cell())
        assert hw.hwid == agent.hwid
    finally:
        api.close()


def test_close_ends_the_clients_thread_and_later_calls_fail(live, key):
    before = len(client_threads())
    api = Client(live.url, key)
    assert len(client_threads()) == before + 1
    assert api.task_list() == []
    api.close()
    api.close()  # twice is fine
    assert len(client_threads()) == before
    with pytest.raises(RuntimeError, match="closed"):
        api.task_list()


def test_a_forgotten_client_is_cleaned_up(live, key):
    import gc

    before = len(client_threads())
    api = Client(live.url, key)
    api.task_list()
    del api
    gc.collect()
    assert len(client_threads()) == before


def test_leaving_a_follow_early_stops_it(live, key, agent):
    with Client(live.url, key) as api:
        taskid = api.add_task(IMAGE, agent.hwid)
        agent.state(taskid, 3)
        agent.logs(taskid, ["a", "b", "c"])
        deadline = time.monotonic() + 3
        while not api.task_logs(taskid).lines and time.monotonic() < deadline:
            time.sleep(0.02)
        stream = api.follow_logs(taskid)
        assert next(stream) == "a"
        stream.close()  # the async generator is closed on the client's loop
        assert api.task(taskid).state is TaskState.RUNNING  # the client still works


def test_watch_task_is_an_iterator(live, key, agent):
    with Client(live.url, key) as api:
        taskid = api.add_task(IMAGE, agent.hwid)
        states = []
        for task in api.watch_task(taskid, interval=0.05):
            states.append(task.state)
            if task.state is TaskState.SETUP:
                agent.state(taskid, 5, "pull failed: no such image")
            else:
                break
        assert states == [TaskState.SETUP, TaskState.ERROR]


def test_unreachable(settings_env):
    with Client("http://127.0.0.1:9", "mk_k", timeout=2) as api:
        with pytest.raises(TransportError, match="Connection refused"):
            api.hw_list()


def test_defaults_come_from_the_login_file(live, key, settings_env):
    from megamind.client.config import save_config

    save_config(settings_env, live.url, key)
    with Client() as api:
        assert api.api_url == live.url
        assert api.task_list() == []


def test_results_and_inputs_from_a_script(live, key, agent, tmp_path):
    from .live import targz

    (tmp_path / "in.txt").write_text("question\n")
    with Client(live.url, key) as api:
        info = api.upload_file(tmp_path / "in.txt")
        taskid = api.add_task(IMAGE, agent.hwid, inputs=[info])
        assert [i.name for i in agent.start(taskid).inputs] == ["in.txt"]
        agent.put_results(taskid, targz({"answer.txt": b"42\n"}))
        agent.state(taskid, TaskState.STOPPED)
        [path] = api.download_results(taskid, tmp_path / "out")
        assert path == tmp_path / "out" / "answer.txt" and path.read_bytes() == b"42\n"
        assert api.task(taskid).results.size == len(api.results(taskid))
