"""Unpacking a task's results safely: every member must land inside the chosen folder.

A task is code the customer did not necessarily write, and its results come back as a
tar.gz it filled.  Members are checked before anything is written (absolute paths,
``..``, links leading out, devices refuse the whole archive), then extracted with
tarfile's ``data`` filter, which checks again against the real paths on disk.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from megamind.client.errors import TransportError, UnsafeArchive

# Extraction filters came with Python 3.11.4; before them the checks below are all there is.
_FILTERED = hasattr(tarfile, "data_filter")
_FILTER_ERRORS = (tarfile.FilterError,) if _FILTERED else ()


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` may not be unpacked, or None when it may."""
    name = member.name
    if name.startswith("/") or posixpath.isabs(name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a path with '..'"
    if member.issym():
        if posixpath.isabs(member.linkname):
            return f"a link to the absolute path {member.linkname!r}"
        if _leaves(posixpath.join(posixpath.dirname(name), member.linkname)):
            return f"a link to {member.linkname!r}, outside the folder"
    elif member.islnk():
        if posixpath.isabs(member.linkname) or _leaves(member.linkname):
            return f"a hard link to {member.linkname!r}, outside the folder"
    elif not (member.isfile() or member.isdir()):
        return "a device or a pipe"
    return None


def _leaves(relative: str) -> bool:
    normal = posixpath.normpath(relative)
    return normal == ".." or normal.startswith("../")


def unpack(archive: BinaryIO, directory: Path) -> list[Path]:
    """Extract the tar.gz ``archive`` (a file object at its start) into ``directory``
    (made when missing); the paths of what it held, folders aside, in its order."""
    try:
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                why = unsafe_reason(member)
                if why is not None:
                    raise UnsafeArchive(f"the results hold {member.name!r}, {why}; nothing was unpacked")
            directory.mkdir(parents=True, exist_ok=True)
            try:
                if _FILTERED:
                    tar.extractall(directory, members=members, filter="data")
                else:
                    tar.extractall(directory, members=members)
            except _FILTER_ERRORS as exc:
                raise UnsafeArchive(f"the results hold a member that would leave {directory}: {exc}") from None
    except (tarfile.ReadError, tarfile.CompressionError, EOFError) as exc:
        raise TransportError(f"the API answered results that are not a tar.gz ({exc})") from None
    return [directory / posixpath.normpath(m.name) for m in members if not m.isdir()]
