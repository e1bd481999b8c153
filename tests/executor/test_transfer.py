"""A task's inputs in and results out: the tar shaping, the HTTP side against a small
server of our own, and the real engine (busybox FROM scratch, network "none", every
container labelled ``megamind.test=<this run>`` and removed by that label).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import docker
import pytest
from aiohttp import web

from megamind.executor.runtime import DockerRuntime
from megamind.executor.transfer import (
    TRUNCATED_HEADER,
    ResultsArchive,
    TransferError,
    copy_results,
    fetch_inputs,
    inputs_tar,
    upload_results,
)
from megamind.protocol import TOKEN_HEADER, InputFile

from .conftest import TEST_LABEL


def engine_style_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[bytes]:
    """A tar as the engine streams it: in chunks that cut through headers and data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buffer.getvalue()
    return [raw[i:i + 777] for i in range(0, len(raw), 777)]


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.uname = kind, link, mode, 1000, "someone"
    return info


def unpacked(path: Path) -> dict[str, bytes | str | None]:
    """name -> bytes (file), "-> target" (link) or None (folder)."""
    out: dict[str, bytes | str | None] = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            if info.isreg():
                out[info.name] = tar.extractfile(info).read()
            elif info.issym():
                out[info.name] = "-> " + info.linkname
            else:
                out[info.name] = None
    return out


# --- the tar shaping ----------------------------------------------------------------------


def test_results_are_relative_to_the_folder_and_only_safe_entries(tmp_path):
    chunks = engine_style_tar([
        (member("output", tarfile.DIRTYPE, mode=0o755), b""),
        (member("output/a", tarfile.DIRTYPE, mode=0o755), b""),
        (member("output/a/data.bin", mode=0o4755), bytes(range(256)) * 40),
        (member("output/empty"), b""),
        (member("output/link", tarfile.SYMTYPE, "a/data.bin"), b""),
        (member("output/a/up", tarfile.SYMTYPE, "../empty"), b""),
        (member("output/escape", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (member("output/a/climb", tarfile.SYMTYPE, "../../x"), b""),
        (member("output/hard", tarfile.LNKTYPE, "output/empty"), b""),
        (member("output/fifo", tarfile.FIFOTYPE), b""),
        (member("output/../evil"), b"no"),
        (member("elsewhere"), b"no"),
    ])
    archive = copy_results(chunks, "output", tmp_path / "r.tar.gz", 10**6)
    assert archive == ResultsArchive((tmp_path / "r.tar.gz").stat().st_size, files=2, truncated=0, skipped=6)
    assert unpacked(tmp_path / "r.tar.gz") == {
        "a": None, "a/data.bin": bytes(range(256)) * 40, "empty": b"", "link": "-> a/data.bin", "a/up": "-> ../empty",
    }
    with tarfile.open(tmp_path / "r.tar.gz", "r:gz") as tar:
        data = tar.getmember("a/data.bin")
        assert (data.mode, data.uid, data.uname) == (0o755, 0, "")  # no set-id bit, no container user


def test_results_stop_before_the_limit_and_count_what_is_left_out(tmp_path):
    files = [(member(f"output/f{i}"), os.urandom(10_000)) for i in range(10)]
    chunks = engine_style_tar([(member("output", tarfile.DIRTYPE), b"")] + files)
    dest = tmp_path / "r.tar.gz"
    archive = copy_results(chunks, "output", dest, 50_000)
    assert (archive.files, archive.truncated) == (4, 6)
    assert archive.size == dest.stat().st_size <= 50_000  # incompressible, and within the limit still
    assert unpacked(dest) == {f"f{i}": data for i, ((_, data)) in enumerate(files[:4])}


def test_an_archive_that_breaks_off_is_an_error_not_results(tmp_path):
    chunks = engine_style_tar([(member("output/big"), os.urandom(100_000))])
    with pytest.raises(tarfile.TarError):
        copy_results(chunks[:50], "output", tmp_path / "r.tar.gz", 10**6)


def test_inputs_tar_holds_the_folders_and_the_files(tmp_path):
    (tmp_path / "a").write_bytes(b"alpha")
    (tmp_path / "b").write_bytes(b"")
    with (tmp_path / "in.tar").open("w+b") as out:
        inputs_tar([("data.csv", tmp_path / "a"), ("empty file", tmp_path / "b")], out)
    with tarfile.open(tmp_path / "in.tar") as tar:
        listing = [(m.name, m.isdir(), oct(m.mode), m.uid, m.size) for m in tar]
        assert tar.extractfile("megamind/input/data.csv").read() == b"alpha"
    assert listing == [
        ("megamind", True, "0o755", 0, 0), ("megamind/input", True, "0o755", 0, 0),
        ("megamind/input/data.csv", False, "0o644", 0, 5), ("megamind/input/empty file", False, "0o644", 0, 0),
    ]
    with pytest.raises(ValueError):
        inputs_tar([("../x", tmp_path / "a")], io.BytesIO())


# --- the API's side, on a server of our own -----------------------------------------------

TOKEN = "executor-secret"


@pytest.fixture
async def api(aiohttp_server):
    files = {"f1": b"first file" * 1000, "f2": b"", "short": b"abc"}
    received: dict[str, object] = {}

    async def get_file(request: web.Request) -> web.StreamResponse:
        if request.headers.get(TOKEN_HEADER) != TOKEN:
            return web.Response(status=401, text="unknown executor")
        if request.query.get("taskid") != "t1":
            return web.Response(status=404, text="not a file of this task")
        return web.Response(body=files[request.match_info["file_id"]])

    async def put_results(request: web.Request) -> web.Response:
        if request.headers.get(TOKEN_HEADER) != TOKEN:
            return web.Response(status=401)
        if request.match_info["taskid"] == "full":
            return web.Response(status=413, text="results too large")
        received.update(taskid=request.match_info["taskid"], body=await request.read(),
                        truncated=request.headers.get(TRUNCATED_HEADER),
                        length=request.content_length)
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/agent/v1/files/{file_id}", get_file)
    app.router.add_put("/api/agent/v1/results/{taskid}", put_results)
    server = await aiohttp_server(app, host="127.0.0.1")
    return SimpleNamespace(url=str(server.make_url("")).rstrip("/"), files=files, received=received)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_inputs_are_downloaded_with_the_token_and_checked(api, http, tmp_path):
    inputs = [InputFile("f1", "data.txt", 10_000), InputFile("f2", "empty", 0)]
    fetched = await fetch_inputs(http, api.url, TOKEN, "t1", inputs, tmp_path)
    assert [(name, path.read_bytes()) for name, path in fetched] == [
        ("data.txt", api.files["f1"]), ("empty", b"")]
    assert all(path.parent == tmp_path for _, path in fetched)


@pytest.mark.parametrize("taskid, token, inputs, message", [
    ("t1", "wrong", [InputFile("f1", "x", 10_000)], "401"),
    ("t2", TOKEN, [InputFile("f1", "x", 10_000)], "404"),
    ("t1", TOKEN, [InputFile("short", "x", 10)], "3 bytes announced, 10 expected"),
])
async def test_input_failures_are_transfer_errors(api, http, tmp_path, taskid, token, inputs, message):
    with pytest.raises(TransferError, match=message):
        await fetch_inputs(http, api.url, token, taskid, inputs, tmp_path)


async def test_an_api_away_is_a_transfer_error(http, tmp_path, unused_tcp_port):
    with pytest.raises(TransferError, match="input 'x'"):
        await fetch_inputs(http, f"http://127.0.0.1:{unused_tcp_port}", TOKEN, "t1", [InputFile("f", "x", 1)], tmp_path)
    (tmp_path / "r.tar.gz").write_bytes(b"gz")
    with pytest.raises(TransferError, match="results of t1"):
        await upload_results(http, f"http://127.0.0.1:{unused_tcp_port}", TOKEN, "t1", tmp_path / "r.tar.gz", 0)


async def test_results_are_put_whole_with_their_count_of_left_out_files(api, http, tmp_path):
    archive = tmp_path / "r.tar.gz"
    archive.write_bytes(os.urandom(3 * 1024 * 1024))
    await upload_results(http, api.url, TOKEN, "t1", archive, 7)
    assert api.received == {"taskid": "t1", "body": archive.read_bytes(), "truncated": "7",
                            "length": 3 * 1024 * 1024}
    with pytest.raises(TransferError, match="413.*results too large"):
        await upload_results(http, api.url, TOKEN, "full", archive, 0)


# --- the real engine ----------------------------------------------------------------------

BUSYBOX = Path(shutil.which("busybox") or "/bin/busybox")


@pytest.fixture(scope="module")
def runtime(run_label):
    try:
        runtime = DockerRuntime(docker.from_env(version="auto"))
        runtime.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine: {exc}. Run the tests with scripts/test, which starts dockerd.")
    yield runtime
    for item in runtime.api.containers(all=True, filters={"label": f"{TEST_LABEL}={run_label}"}):
        runtime.remove(item["Id"])
    runtime.close()


@pytest.fixture
def run(runtime, busybox_image, run_label):
    """Create a container for a shell script; ``start=True`` runs it to its end."""

    def create(script: str, start: bool = True) -> str:
        container_id = runtime.api.create_container(
            busybox_image, ["/bin/sh", "-c", script], labels={TEST_LABEL: run_label},
            host_config=runtime.api.create_host_config(network_mode="none"),
        )["Id"]
        if start:
            runtime.start(container_id)
            assert runtime.api.wait(container_id, timeout=30)["StatusCode"] == 0
        return container_id

    return create


WRITE_OUTPUT = (
    "mkdir -p /megamind/output/nested/deeper && cd /megamind/output && "
    "printf 'hello\\n' > hello.txt && : > empty && cp /bin/busybox nested/deeper/data.bin && "
    "printf 'note' > nested/note.txt && ln -s nested/note.txt link && ln -s /etc/passwd escape"
)


@pytest.mark.e2e
def test_results_of_a_stopped_container_byte_for_byte(runtime, run, tmp_path):
    container_id = run(WRITE_OUTPUT)
    archive = runtime.results_archive(container_id, tmp_path / "r.tar.gz", 256 * 1024 * 1024)
    assert archive == ResultsArchive((tmp_path / "r.tar.gz").stat().st_size, files=4, truncated=0, skipped=1)
    assert unpacked(tmp_path / "r.tar.gz") == {
        "empty": b"", "hello.txt": b"hello\n", "link": "-> nested/note.txt", "nested": None,
        "nested/deeper": None, "nested/deeper/data.bin": BUSYBOX.read_bytes(), "nested/note.txt": b"note",
    }


@pytest.mark.e2e
def test_results_past_the_limit_are_cut_and_counted(runtime, run, tmp_path):
    # The engine walks the folder in name order: the big file comes before nested/note.txt.
    container_id = run(WRITE_OUTPUT)
    archive = runtime.results_archive(container_id, tmp_path / "r.tar.gz", 100_000)
    assert (archive.files, archive.truncated) == (2, 2)
    assert set(unpacked(tmp_path / "r.tar.gz")) == {"empty", "hello.txt", "link", "nested", "nested/deeper"}


@pytest.mark.e2e
def test_no_output_folder_no_results(runtime, run, tmp_path):
    assert runtime.results_archive(run("mkdir -p /megamind"), tmp_path / "r.tar.gz", 10**6) is None
    assert runtime.results_archive(run(": > /megamind-output-file; mkdir -p /megamind; "
                                       "ln -s /bin /megamind/output"), tmp_path / "r.tar.gz", 10**6) is None
    assert runtime.results_archive(f"megamind-no-such-{uuid.uuid4().hex}", tmp_path / "r.tar.gz", 10**6) is None


@pytest.mark.e2e
def test_inputs_are_in_place_before_the_start(runtime, run, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "x").write_bytes(data)
    (tmp_path / "y").write_bytes(b"")
    container_id = run("sha256sum /megamind/input/x; stat -c '%a %u %n' /megamind /megamind/input; "
                       "stat -c '%a %u %s %n' /megamind/input/*", start=False)
    runtime.put_inputs(container_id, [("x", tmp_path / "x"), ("with space", tmp_path / "y")])
    runtime.start(container_id)
    assert runtime.api.wait(container_id, timeout=30)["StatusCode"] == 0
    printed = runtime.api.logs(container_id, stdout=True, stderr=True).decode().splitlines()
    assert printed == [
        f"{hashlib.sha256(data).hexdigest()}  /megamind/input/x",
        "755 0 /megamind",
        "755 0 /megamind/input",
        "644 0 0 /megamind/input/with space",
        f"644 0 {len(data)} /megamind/input/x",
    ]
