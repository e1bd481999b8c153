"""Blobs as files under one folder, ``<root>/<key>``.

A write goes to a temporary file under ``<root>/.tmp`` and is renamed into place at the
end, so a reader sees the old blob or the new one, never half of one, and a crash
leaves only a temporary file, removed at the next start.  File I/O runs in threads
(one hop per MiB), off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

from megamind.blobs.base import BlobInfo, BlobNotFound
from megamind.errors import PayloadTooLarge
from megamind.secrets import random_id

CHUNK_BYTES = 1024 * 1024
# Keys are the API's own ("results/<taskid>"): path segments of safe characters only.
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}(/[A-Za-z0-9_-]{1,128}){0,3}")
_TMP = ".tmp"


class LocalReader:
    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await asyncio.to_thread(self._file.read, CHUNK_BYTES):
            yield data


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / _TMP
        shutil.rmtree(self._tmp, ignore_errors=True)  # halves of writes a crash cut short
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key

    async def write(self, key: str, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        path = self._path(key)
        tmp = self._tmp / random_id(16)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        file = await asyncio.to_thread(open, tmp, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body is larger than {limit} bytes")
                buffer += chunk
                if len(buffer) >= CHUNK_BYTES:
                    await asyncio.to_thread(_put, file, digest, bytes(buffer))
                    buffer.clear()
            await asyncio.to_thread(_put, file, digest, bytes(buffer))
            await asyncio.to_thread(file.close)
            await asyncio.to_thread(_place, tmp, path)
        except BaseException:
            await asyncio.to_thread(_discard, file, tmp)
            raise
        return BlobInfo(size, digest.hexdigest())

    @asynccontextmanager
    async def open(self, key: str) -> AsyncIterator[LocalReader]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            # The size of what was opened: a blob replaced meanwhile is another file.
            yield LocalReader(file, os.fstat(file.fileno()).st_size)
        finally:
            await asyncio.to_thread(file.close)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def close(self) -> None:
        """Nothing is held between calls."""


def _put(file: BinaryIO, digest, data: bytes) -> None:
    digest.update(data)  # hashlib lets go of the GIL: the loop keeps running meanwhile
    file.write(data)


def _place(tmp: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, path)


def _discard(file: BinaryIO, tmp: Path) -> None:
    file.close()
    tmp.unlink(missing_ok=True)
