"""Files customers upload, for their tasks to find under /megamind/input/<name>.

A file belongs to the account that uploaded it and outlives the tasks that use it.
Its bytes live in the blob store; this table says whose it is, what it is called and
how big it is.  Only an executor running a task that lists a file may fetch it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from megamind.errors import ValidationFailed
from megamind.protocol import InputFile
from megamind.secrets import random_id
from megamind.store.db import Database

MAX_NAME_BYTES = 255  # a file name on the executor's file system (NAME_MAX)


def new_file_id() -> str:
    return random_id(24)


def check_file_name(name: str, what: str = "name") -> str:
    """A plain file name, or ValidationFailed saying why not."""
    if not name:
        raise ValidationFailed(f"{what}: must not be empty")
    if "/" in name or "\0" in name or name in (".", ".."):
        raise ValidationFailed(f"{what}: {name[:100]!r} is not a plain file name (no '/', NUL, '.' or '..')")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationFailed(f"{what}: not valid Unicode text") from None
    if size > MAX_NAME_BYTES:
        raise ValidationFailed(f"{what}: at most {MAX_NAME_BYTES} bytes of UTF-8, not {size}")
    return name


@dataclass(frozen=True)
class FileRecord:
    file_id: str
    account_id: int
    name: str
    size: int
    sha256: str
    created_at: float

    def input_file(self) -> InputFile:
        return InputFile(self.file_id, self.name, self.size)


_COLUMNS = "file_id, account_id, name, size, sha256, created_at"


def _record(row) -> FileRecord:
    return FileRecord(*row)


class FileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, account_id: int, file_id: str, name: str, size: int, sha256: str) -> FileRecord:
        record = FileRecord(file_id, account_id, check_file_name(name), size, sha256, time.time())
        await self._db.execute(
            f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (record.file_id, account_id, record.name, size, sha256, record.created_at),
        )
        return record

    async def of_account(self, account_id: int, file_ids: list[str]) -> list[FileRecord]:
        """The account's files, in the order asked; an id it does not own is a ValidationFailed."""
        if not file_ids:
            return []
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM files WHERE account_id = ? AND file_id IN ({', '.join('?' * len(file_ids))})",
            (account_id, *file_ids),
        )
        found = {r["file_id"]: _record(r) for r in rows}
        missing = [f for f in file_ids if f not in found]
        if missing:
            raise ValidationFailed(f"inputs: no file {missing[0]!r} in this account; upload it with POST /api/v1/files")
        return [found[f] for f in file_ids]

    async def input_of(self, hwid: str, taskid: str, file_id: str) -> FileRecord | None:
        """The file, when it is an input of a live task on this executor; else None."""
        row = await self._db.fetchone(
            "SELECT t.inputs, f.file_id, f.account_id, f.name, f.size, f.sha256, f.created_at"
            " FROM tasks t JOIN files f ON f.file_id = ? AND f.account_id = t.account_id"
            " WHERE t.taskid = ? AND t.hwid = ? AND t.deleted = 0",
            (file_id, taskid, hwid),
        )
        if row is None or file_id not in json.loads(row["inputs"]):
            return None
        return _record(tuple(row)[1:])
