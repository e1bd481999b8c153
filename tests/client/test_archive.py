"""Results unpacked safely: byte for byte inside the folder, and nothing at all from an archive
with a member that would land outside it."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from aiohttp import web

from megamind.client import AsyncClient, ResultsNotFound, TransportError, UnsafeArchive
from megamind.client.archive import unpack

FILES = {
    "model.bin": os.urandom(300_000),
    "metrics/loss.csv": b"epoch,loss\n1,0.5\n2,0.25\n",
    "metrics/empty.txt": b"",
    "caf\u00e9 \u2713.txt": "d\u00e9j\u00e0 vu\n".encode(),
}


def targz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def results_archive() -> bytes:
    return targz([special("metrics", tarfile.DIRTYPE)] + [regular(n, d) for n, d in FILES.items()]
                 + [special("latest", tarfile.SYMTYPE, "model.bin")])


def test_an_archive_unpacks_byte_for_byte(tmp_path):
    out = tmp_path / "out"
    files = unpack(io.BytesIO(results_archive()), out)
    assert files == [out / name for name in FILES] + [out / "latest"]
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
    assert os.readlink(out / "latest") == "model.bin"


@pytest.mark.parametrize("member, why", [
    (regular("/etc/evil", b"x"), "an absolute path"),
    (regular("../evil", b"x"), "'..'"),
    (regular("a/../../evil", b"x"), "'..'"),
    (special("link", tarfile.SYMTYPE, "/etc/passwd"), "a link to the absolute path"),
    (special("a/link", tarfile.SYMTYPE, "../../etc"), "outside the folder"),
    (special("hard", tarfile.LNKTYPE, "../outside"), "a hard link"),
    (special("dev", tarfile.CHRTYPE), "a device or a pipe"),
    (special("fifo", tarfile.FIFOTYPE), "a device or a pipe"),
])
def test_an_unsafe_member_refuses_the_whole_archive(tmp_path, member, why):
    data = targz([regular("first.txt", b"fine"), member])
    with pytest.raises(UnsafeArchive, match=why):
        unpack(io.BytesIO(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing, not even what came before
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_links_that_stay_inside_are_kept(tmp_path):
    data = targz([regular("a/data.txt", b"x"), special("a/b/up", tarfile.SYMTYPE, "../data.txt"),
                  special("copy", tarfile.LNKTYPE, "a/data.txt")])
    unpack(io.BytesIO(data), tmp_path)
    assert (tmp_path / "a" / "b" / "up").read_bytes() == b"x"
    assert (tmp_path / "copy").read_bytes() == b"x"


def test_what_is_not_a_targz_is_a_transport_error(tmp_path):
    with pytest.raises(TransportError, match="not a tar.gz"):
        unpack(io.BytesIO(b"<html>proxy error</html>"), tmp_path)


# --- through the client ---------------------------------------------------------------


@pytest.fixture
async def results_server(aiohttp_server):
    served: dict[str, bytes] = {}

    async def handle(request):
        taskid = request.match_info["taskid"]
        if taskid not in served:
            return web.json_response({"code": 19, "message": f"task {taskid!r} has no results yet"}, status=404)
        return web.Response(body=served[taskid], content_type="application/gzip")
    app = web.Application()
    app.router.add_get("/api/v1/task/{taskid}/results", handle)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}", served


async def test_download_results_round_trip(results_server, tmp_path):
    url, served = results_server
    served["t"] = results_archive()
    async with AsyncClient(url, "mk_k") as api:
        assert await api.results("t") == served["t"]
        out = tmp_path / "new" / "folder"
        files = await api.download_results("t", out)
    assert {str(f.relative_to(out)): f.read_bytes() for f in files if f.name != "latest"} == FILES
    assert sorted(os.listdir(out)) == sorted(["metrics", "model.bin", "caf\u00e9 \u2713.txt", "latest"])  # no spool left


async def test_unsafe_results_are_refused_and_nothing_is_written(results_server, tmp_path):
    url, served = results_server
    served["t"] = targz([regular("ok.txt", b"x"), regular("../../escaped.txt", b"x")])
    async with AsyncClient(url, "mk_k") as api:
        with pytest.raises(UnsafeArchive):
            await api.download_results("t", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path.parent / "escaped.txt").exists()


async def test_no_results_yet(results_server, tmp_path):
    url, _ = results_server
    async with AsyncClient(url, "mk_k") as api:
        with pytest.raises(ResultsNotFound) as caught:
            await api.results("t")
        assert (caught.value.code, caught.value.status) == (19, 404)
        with pytest.raises(ResultsNotFound):
            await api.download_results("t", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # made only once there are results
