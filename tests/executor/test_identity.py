import json
import stat

from megamind.executor.identity import (
    APPLIED_FILE,
    IDENTITY_FILE,
    REMEMBERED_COMMANDS,
    AppliedCommands,
    Identity,
    write_private,
)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_identity_round_trip_with_mode_600(tmp_path):
    state = tmp_path / "state"
    ident = Identity("http://127.0.0.1:8080", "abcdefghabcdefgh", "mx_secret")
    ident.save(state)
    assert mode(state / IDENTITY_FILE) == 0o600
    assert Identity.load(state) == ident
    assert not list(state.glob("*.tmp"))


def test_identity_overwrite_keeps_mode(tmp_path):
    Identity("http://a", "h1", "t1").save(tmp_path)
    (tmp_path / IDENTITY_FILE).chmod(0o644)
    Identity("http://b", "h2", "t2").save(tmp_path)
    assert mode(tmp_path / IDENTITY_FILE) == 0o600
    assert Identity.load(tmp_path) == Identity("http://b", "h2", "t2")


def test_missing_or_broken_identity_is_none(tmp_path):
    assert Identity.load(tmp_path) is None
    (tmp_path / IDENTITY_FILE).write_text("{not json")
    assert Identity.load(tmp_path) is None
    (tmp_path / IDENTITY_FILE).write_text(json.dumps({"hwid": "x"}))
    assert Identity.load(tmp_path) is None


def test_write_private_mode(tmp_path):
    write_private(tmp_path / "f", "hello")
    assert (tmp_path / "f").read_text() == "hello"
    assert mode(tmp_path / "f") == 0o600


def test_applied_commands_persist(tmp_path):
    applied = AppliedCommands(tmp_path)
    assert 7 not in applied
    applied.add(7)
    applied.add(9)
    applied.add(7)
    assert 7 in applied and 9 in applied
    assert mode(tmp_path / APPLIED_FILE) == 0o600
    assert json.loads((tmp_path / APPLIED_FILE).read_text()) == [7, 9]
    again = AppliedCommands(tmp_path)
    assert 7 in again and 9 in again and 8 not in again


def test_applied_commands_bounded(tmp_path):
    applied = AppliedCommands(tmp_path)
    for i in range(REMEMBERED_COMMANDS + 5):
        applied.add(i)
    assert all(i not in applied for i in range(5))
    assert all(i in applied for i in range(5, REMEMBERED_COMMANDS + 5))
    stored = json.loads((tmp_path / APPLIED_FILE).read_text())
    assert len(stored) == REMEMBERED_COMMANDS
    assert stored[0] == 5
    again = AppliedCommands(tmp_path)
    assert 4 not in again and REMEMBERED_COMMANDS + 4 in again


def test_broken_applied_file_starts_empty(tmp_path):
    (tmp_path / APPLIED_FILE).write_text("garbage")
    applied = AppliedCommands(tmp_path)
    assert 1 not in applied
    applied.add(1)
    assert AppliedCommands(tmp_path).__contains__(1)
