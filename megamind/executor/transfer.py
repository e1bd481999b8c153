"""A task's files in and out: inputs from the API into the container, results back.

Inputs: each file is downloaded from the API to a scratch folder, then the lot goes into
the created container as one tar (``inputs_tar``, put at "/" by the runtime).  Results:
the engine's tar of /megamind/output is rewritten as a gzip tar of the folder's content
(``copy_results``) and uploaded.  Everything streams through files on disk: a task's
files may be far larger than the agent's memory.
"""

from __future__ import annotations

import asyncio
import io
import posixpath
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

from megamind import taskenv
from megamind.protocol import FILES_PATH, RESULTS_PATH, TOKEN_HEADER, InputFile

TRUNCATED_HEADER = "X-Megamind-Results-Truncated"
# In the tar put at "/": the folder without its leading slash.
INPUT_DIR = taskenv.INPUT_DIR.lstrip("/")
# A stalled peer must not hold a task's start or its results forever; a slow one may.
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
_DOWNLOAD_CHUNK = 1024 * 1024
_TAR_BLOCK = 512
_RESULTS_GZIP_LEVEL = 6  # most of the gain of 9, at a fraction of the time


class TransferError(Exception):
    """A file could not be moved to or from the API."""


# --- results: the engine's tar of /megamind/output -> tar.gz of its content -----------------


@dataclass(frozen=True)
class ResultsArchive:
    size: int  # bytes of the tar.gz written
    files: int  # regular files in it
    truncated: int  # regular files left out because the archive would have passed the limit
    skipped: int = 0  # entries refused: hard links, devices, fifos, or names leading outside


class _ChunkReader(io.RawIOBase):
    """An iterator of byte chunks (the SDK's streamed answer) as a readable file."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._left:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._left = memoryview(chunk)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count

    def drain(self) -> None:
        """Read to the end: the engine's answer must be consumed before its connection is reused."""
        for _ in self._chunks:
            pass


def _inside(name: str) -> str | None:
    """A member's path relative to the output folder; None if it would land outside it."""
    if name.startswith("/") or ".." in name.split("/"):
        return None
    return posixpath.normpath(name).lstrip("/") or None


def _link_stays_inside(name: str, target: str) -> bool:
    # Refused here, not left to whoever extracts: "a -> /etc" followed by "a/passwd" is the
    # classic way out of an extraction folder.
    if target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return resolved != ".." and not resolved.startswith("../")


def _tar_bytes(member: tarfile.TarInfo) -> int:
    """What a member adds to an uncompressed tar: its header and its data, padded to blocks."""
    return _TAR_BLOCK + -(-member.size // _TAR_BLOCK) * _TAR_BLOCK


def copy_results(engine_tar: Iterable[bytes], root: str, dest: Path, limit_bytes: int) -> ResultsArchive:
    """Rewrite the engine's tar of a folder (members ``<root>/...``) as a gzip tar at ``dest``
    whose members are relative to that folder.  Regular files, folders and symbolic links
    only; files stop being added before the archive would pass ``limit_bytes``.
    """
    # The limit is counted on the uncompressed tar; gzip makes incompressible data a
    # little larger (5 bytes per 64 KiB stored block, its header): keep room for that,
    # so that the archive itself stays within the limit.
    budget = limit_bytes - limit_bytes // 2000 - 1024
    used = 2 * _TAR_BLOCK  # the end-of-archive blocks
    files = truncated = skipped = 0
    full = False
    reader = _ChunkReader(engine_tar)
    prefix = root.rstrip("/") + "/"
    with tarfile.open(fileobj=io.BufferedReader(reader, _DOWNLOAD_CHUNK), mode="r|") as source, \
            tarfile.open(dest, "w:gz", compresslevel=_RESULTS_GZIP_LEVEL, format=tarfile.PAX_FORMAT) as out:
        for member in source:
            if member.name.rstrip("/") == root.rstrip("/"):
                continue  # the folder itself
            name = _inside(member.name[len(prefix):]) if member.name.startswith(prefix) else None
            if (name is None or not (member.isreg() or member.isdir() or member.issym())
                    or (member.issym() and not _link_stays_inside(name, member.linkname))):
                skipped += 1
                continue
            if full or used + _tar_bytes(member) > budget:
                full = True  # what fits is kept in order: the archive is a prefix of the folder
                truncated += member.isreg()
                continue
            used += _tar_bytes(member)
            member.name = name
            # The container's users mean nothing where the results are unpacked; nor do
            # set-id bits.
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.mode &= 0o777
            member.pax_headers = {}
            if member.isreg():
                out.addfile(member, source.extractfile(member))
                files += 1
            else:
                out.addfile(member)
        reader.drain()
    return ResultsArchive(dest.stat().st_size, files, truncated, skipped)


# --- inputs: files on disk -> a tar to put at "/" ---------------------------------------------


def inputs_tar(files: list[tuple[str, Path]], archive: IO[bytes]) -> None:
    """Write to ``archive`` a tar holding megamind/, megamind/input/ and each file as
    megamind/input/<name> (mode 0644, folders 0755, owned by root)."""
    now = int(time.time())

    def entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, now
        return info

    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(entry("megamind", tarfile.DIRTYPE, 0o755))
        tar.addfile(entry(INPUT_DIR, tarfile.DIRTYPE, 0o755))
        for name, path in files:
            if not name or "/" in name or name in (".", "..") or "\0" in name:
                raise ValueError(f"input {name!r} is not a plain file name")
            with open(path, "rb") as content:
                size = content.seek(0, io.SEEK_END)
                content.seek(0)
                tar.addfile(entry(f"{INPUT_DIR}/{name}", tarfile.REGTYPE, 0o644, size), content)


# --- the API's side ---------------------------------------------------------------------------


async def fetch_inputs(http: aiohttp.ClientSession, api_url: str, token: str, taskid: str,
                       inputs: list[InputFile], workdir: Path) -> list[tuple[str, Path]]:
    """Download a task's input files under ``workdir``: [(name in the container, file)]."""
    fetched = []
    for index, item in enumerate(inputs):
        # Numbered, not named: names are the customer's, and the folder is ours.
        path = workdir / f"input-{index}"
        url = api_url.rstrip("/") + FILES_PATH.format(file_id=item.file_id)
        what = f"input {item.name!r} ({item.file_id})"
        try:
            async with http.get(url, params={"taskid": taskid}, headers={TOKEN_HEADER: token},
                                timeout=TRANSFER_TIMEOUT) as response:
                await _check(response, what)
                if response.content_length not in (None, item.size):
                    raise TransferError(f"{what}: {response.content_length} bytes announced, {item.size} expected")
                received = await _save(response, path, item.size, what)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TransferError(f"{what}: {_describe(exc)}") from exc
        if received != item.size:
            raise TransferError(f"{what}: {received} bytes received, {item.size} expected")
        fetched.append((item.name, path))
    return fetched


async def _save(response: aiohttp.ClientResponse, path: Path, expected: int, what: str) -> int:
    received = 0
    with open(path, "wb") as out:
        async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK):
            received += len(chunk)
            if received > expected:
                raise TransferError(f"{what}: more than the {expected} bytes expected")
            # Off the event loop: a slow disk must not stall every other task's output.
            await asyncio.to_thread(out.write, chunk)
    return received


async def upload_results(http: aiohttp.ClientSession, api_url: str, token: str, taskid: str,
                         archive_path: Path, truncated: int) -> None:
    """PUT a task's results (a tar.gz) to the API, streamed from the file."""
    url = api_url.rstrip("/") + RESULTS_PATH.format(taskid=taskid)
    headers = {TOKEN_HEADER: token, TRUNCATED_HEADER: str(truncated), "Content-Type": "application/gzip"}
    what = f"results of {taskid}"
    try:
        # aiohttp reads an open file in its thread pool and sends its length.
        with open(archive_path, "rb") as archive:
            async with http.put(url, data=archive, headers=headers, timeout=TRANSFER_TIMEOUT) as response:
                await _check(response, what)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise TransferError(f"{what}: {_describe(exc)}") from exc


async def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if 200 <= response.status < 300:
        return
    body = (await response.text(errors="replace"))[:300].strip()
    raise TransferError(f"{what}: the API answered {response.status} {response.reason or ''}"
                        + (f": {body}" if body else ""))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
