"""What a blob store offers: streamed, bounded, atomic writes; streamed reads."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


class BlobNotFound(Exception):
    """No blob under this key."""


@dataclass(frozen=True)
class BlobInfo:
    size: int
    sha256: str  # hex


class BlobReader(Protocol):
    size: int

    def chunks(self) -> AsyncIterator[bytes]:
        """The blob's bytes, in order, as they were when it was opened."""


class BlobStore(Protocol):
    async def write(self, key: str, chunks: AsyncIterable[bytes], limit: int) -> BlobInfo:
        """Store ``chunks`` under ``key``, replacing what was there only once all arrived.

        More than ``limit`` bytes raises ``errors.PayloadTooLarge`` and keeps nothing.
        """

    def open(self, key: str) -> AbstractAsyncContextManager[BlobReader]:
        """The blob for reading; ``BlobNotFound`` when there is none."""

    async def size(self, key: str) -> int | None:
        """Its size in bytes, or None when there is no such blob."""

    async def delete(self, key: str) -> None:
        """Remove it; no blob is no error."""

    async def close(self) -> None:
        """Release what the store holds."""
