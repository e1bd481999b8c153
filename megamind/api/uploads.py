"""Request bodies too big for memory: read as streams, bounded, into the blob store.

JSON calls keep aiohttp's ``client_max_size`` (256 KiB); uploads read the body here
chunk by chunk, so neither bound touches the other.  A body announced larger than its
bound is refused before a byte of it is read; one that grows past it while streaming is
refused when it does; one that stalls for ``BODY_READ_TIMEOUT_S`` is a 408.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from megamind.api.bodies import BODY_READ_TIMEOUT_S
from megamind.blobs import BlobInfo, BlobStore
from megamind.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType, ValidationFailed
from megamind.store.files import check_file_name

OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/form-data"
FILE_PART = "file"  # the one part a multipart upload holds
# Boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
READ_BYTES = 256 * 1024


def refuse_announced(request: web.Request, limit: int) -> None:
    """A Content-Length over ``limit`` is refused on the announcement alone."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")


async def _within(read: Callable[[], Awaitable[bytes]]) -> bytes:
    try:
        return await asyncio.wait_for(read(), BODY_READ_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"the body stalled for {BODY_READ_TIMEOUT_S:g} s") from None


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The raw body as it arrives."""
    while chunk := await _within(request.content.readany):
        yield chunk


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await _within(lambda: part.read_chunk(READ_BYTES)):
        yield chunk


async def store_upload(
    request: web.Request, blobs: BlobStore, key: str, limit: int, name: str | None
) -> tuple[BlobInfo, str | None]:
    """The file of an upload stored under ``key``, and its name: ``name`` when given, else
    the filename of a multipart part (checked before the file is read), else None.

    The body is either the file itself (application/octet-stream, also when no type is
    given) or multipart/form-data holding exactly one part, ``file``.
    """
    if request.content_type == OCTET_STREAM:
        refuse_announced(request, limit)
        return await blobs.write(key, body_chunks(request), limit), name
    if request.content_type != MULTIPART:
        raise UnsupportedMediaType(
            f"the body must be the file ({OCTET_STREAM}) or a {MULTIPART} form with one part "
            f"{FILE_PART!r}, not {request.content_type}"
        )
    refuse_announced(request, limit + MULTIPART_OVERHEAD_BYTES)
    try:
        reader = await request.multipart()
        part = await _within(reader.next)
        if part is None or isinstance(part, MultipartReader) or part.name != FILE_PART:
            raise ValidationFailed(f"{FILE_PART}: the form must hold one part named {FILE_PART!r}, the file")
        if name is None and part.filename is not None:
            name = check_file_name(part.filename, "filename")
        info = await blobs.write(key, _part_chunks(part), limit)
        try:
            if await _within(reader.next) is not None:
                raise ValidationFailed(f"the form must hold only the part {FILE_PART!r}")
        except BaseException:
            await blobs.delete(key)
            raise
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:
        # aiohttp's multipart reader says a body is malformed in these words only.
        message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
        raise BadRequest(f"the {MULTIPART} body is malformed: {message!s:.200}") from None
    return info, name
