"""What an agent keeps in its state folder: who it is, and which commands it took."""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

IDENTITY_FILE = "identity.json"
APPLIED_FILE = "applied-commands.json"
REMEMBERED_COMMANDS = 1000


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 600: the file holds the executor's credential."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Identity:
    api_url: str
    hwid: str
    token: str

    @classmethod
    def load(cls, state_dir: Path) -> "Identity | None":
        try:
            data = json.loads((state_dir / IDENTITY_FILE).read_text())
            return cls(data["api_url"], data["hwid"], data["token"])
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_private(state_dir / IDENTITY_FILE, json.dumps(asdict(self)))


class AppliedCommands:
    """Ids of the commands this agent has begun to apply, kept across restarts."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / APPLIED_FILE
        self._write_lock = threading.Lock()  # add() may run in several threads at once
        try:
            ids = json.loads(self._path.read_text())
        except (FileNotFoundError, ValueError):
            ids = []
        self._ids: deque[int] = deque(ids, maxlen=REMEMBERED_COMMANDS)
        self._set = set(self._ids)

    def __contains__(self, command_id: int) -> bool:
        return command_id in self._set

    def add(self, command_id: int) -> None:
        """Remember the id, on disk before returning (it may be called from a thread)."""
        with self._write_lock:
            if command_id in self._set:
                return
            if len(self._ids) == self._ids.maxlen:
                self._set.discard(self._ids[0])
            self._ids.append(command_id)
            self._set.add(command_id)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self._path, json.dumps(list(self._ids)))
