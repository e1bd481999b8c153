"""Blobs on the local disk: streamed in and out, bounded, replaced whole."""

import asyncio
import hashlib
import os

import pytest

from megamind.blobs import BlobNotFound, LocalBlobStore
from megamind.blobs.local import CHUNK_BYTES
from megamind.errors import PayloadTooLarge


async def chunks_of(*parts: bytes):
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read(blobs, key) -> bytes:
    async with blobs.open(key) as blob:
        data = b"".join([chunk async for chunk in blob.chunks()])
        assert blob.size == len(data)
        return data


@pytest.fixture
def blobs(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")


async def test_a_round_trip_is_byte_for_byte(blobs):
    data = os.urandom(CHUNK_BYTES * 2 + 12345)
    parts = [data[i:i + 70_000] for i in range(0, len(data), 70_000)]
    info = await blobs.write("results/t1", chunks_of(*parts), limit=len(data))
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await read(blobs, "results/t1") == data
    assert await blobs.size("results/t1") == len(data)


async def test_an_empty_blob(blobs):
    info = await blobs.write("files/empty", chunks_of(), limit=10)
    assert info.size == 0 and await read(blobs, "files/empty") == b""


async def test_a_blob_past_the_limit_is_refused_and_nothing_is_kept(blobs):
    await blobs.write("results/t1", chunks_of(b"old"), limit=10)
    with pytest.raises(PayloadTooLarge):
        await blobs.write("results/t1", chunks_of(b"12345", b"678901"), limit=10)
    assert await read(blobs, "results/t1") == b"old"  # the previous one stands
    assert os.listdir(blobs.root / ".tmp") == []


async def test_a_write_cut_short_keeps_the_previous_blob(blobs):
    async def broken():
        yield b"partial"
        raise ConnectionResetError("client went away")
    await blobs.write("results/t1", chunks_of(b"whole"), limit=100)
    with pytest.raises(ConnectionResetError):
        await blobs.write("results/t1", broken(), limit=100)
    assert await read(blobs, "results/t1") == b"whole"
    assert os.listdir(blobs.root / ".tmp") == []


async def test_a_reader_keeps_what_it_opened_while_the_blob_is_replaced(blobs):
    await blobs.write("results/t1", chunks_of(b"first"), limit=100)
    async with blobs.open("results/t1") as blob:
        await blobs.write("results/t1", chunks_of(b"second, longer"), limit=100)
        assert b"".join([c async for c in blob.chunks()]) == b"first"
    assert await read(blobs, "results/t1") == b"second, longer"


async def test_missing_blobs(blobs):
    with pytest.raises(BlobNotFound):
        async with blobs.open("results/none"):
            pass
    assert await blobs.size("results/none") is None
    await blobs.delete("results/none")  # no error
    await blobs.write("results/t1", chunks_of(b"x"), limit=1)
    await blobs.delete("results/t1")
    assert await blobs.size("results/t1") is None


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "a//b", "a/.", "dot.dot"])
async def test_keys_cannot_leave_the_folder(blobs, key):
    with pytest.raises(ValueError):
        await blobs.write(key, chunks_of(b"x"), limit=1)


def test_leftovers_of_a_crash_are_removed_at_start(tmp_path):
    (tmp_path / "blobs" / ".tmp").mkdir(parents=True)
    (tmp_path / "blobs" / ".tmp" / "half").write_bytes(b"x")
    LocalBlobStore(tmp_path / "blobs")
    assert os.listdir(tmp_path / "blobs" / ".tmp") == []
