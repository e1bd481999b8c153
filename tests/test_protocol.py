"""Every agent <-> API message round-trips, and anything else is one ProtocolError."""

import json

import pytest

from megamind.protocol import (
    AGENT_MESSAGES,
    API_MESSAGES,
    MAX_INVENTORY,
    Ack,
    Command,
    ContainerReport,
    ContainerStatus,
    Hello,
    InputFile,
    Inventory,
    LogBatch,
    LogCursor,
    LogEntry,
    Op,
    Phase,
    PhaseReport,
    ProtocolError,
    Refused,
    StateReport,
    Stream,
    StreamPosition,
    Welcome,
    decode,
)
from megamind.states import TaskState

CURSOR = LogCursor(StreamPosition(10, 2), StreamPosition(7, 1))

AGENT_SAMPLES = [
    Hello(2, {"ram": 1000}, 0.5),
    Inventory((ContainerReport("t1", ContainerStatus.RUNNING), ContainerReport("t2", ContainerStatus.EXITED, 3))),
    StateReport("t1", TaskState.ERROR, "exited with code 3", 3),
    PhaseReport("t1", Phase.PULLING),
    LogBatch("t1", LogCursor(), CURSOR, (LogEntry(Stream.STDOUT, 10, "a"), LogEntry(Stream.STDERR, 7, "", 5))),
    Ack(12),
]
API_SAMPLES = [
    Welcome("hw", {"t1": CURSOR}, 1024),
    Refused("other version"),
    Command(3, Op.START, "t1", "127.0.0.1:5000/x:1", "megamind.network/x:1", "p",
            (InputFile("f1", "data.csv", 10),)),
    Command(4, Op.REMOVE, "t1"),
]


@pytest.mark.parametrize("message", AGENT_SAMPLES, ids=lambda m: m.type)
def test_agent_messages_round_trip(message):
    assert decode(message.encode(), AGENT_MESSAGES) == message


@pytest.mark.parametrize("message", API_SAMPLES, ids=lambda m: m.type)
def test_api_messages_round_trip(message):
    assert decode(message.encode(), API_MESSAGES) == message


def test_a_remove_carries_no_run_fields():
    assert Command(4, Op.REMOVE, "t1").to_wire() == {"type": "command", "id": 4, "op": "remove", "taskid": "t1"}


@pytest.mark.parametrize("raw", [
    "not json",
    "[1, 2]",
    '{"type": "nope"}',
    '{"type": "welcome", "hwid": "x", "results_limit": 1}',  # an API message from an agent
    '{"type": "state", "taskid": "t", "state": 1}',  # unknown is the API's word, not an agent's
    '{"type": "state", "taskid": "t", "state": 9}',
    '{"type": "state", "taskid": "t", "state": true}',
    '{"type": "state", "taskid": "", "state": 3}',
    '{"type": "phase", "taskid": "t", "phase": "dancing"}',
    '{"type": "ack", "id": "7"}',
    '{"type": "ack"}',
    '{"type": "inventory", "containers": "all"}',
    '{"type": "inventory", "containers": [{"taskid": "t", "status": "sleeping"}]}',
    '{"type": "logs", "taskid": "t", "since": {}, "cursor": {}, "entries": [[3, 1, "x"]]}',
    '{"type": "logs", "taskid": "t", "since": {}, "cursor": {}, "entries": [[1, -1, "x"]]}',
    '{"type": "logs", "taskid": "t", "since": {}, "cursor": {"stdout": [1]}, "entries": []}',
    '{"type": "logs", "taskid": "t", "since": {}, "cursor": {}, "entries": [[1, 1, 5]]}',
    '{"type": "hello", "protocol": 2, "cost": -1}',
    '[' * 100_000,
])
def test_anything_else_is_a_protocol_error(raw):
    with pytest.raises(ProtocolError):
        decode(raw, AGENT_MESSAGES)


def test_an_inventory_is_bounded():
    def inventory(n: int) -> str:
        return json.dumps({"type": "inventory", "containers": [{"taskid": f"t{i}", "status": "running"}
                                                               for i in range(n)]})
    assert len(decode(inventory(MAX_INVENTORY), AGENT_MESSAGES).containers) == MAX_INVENTORY
    with pytest.raises(ProtocolError, match=f"more than {MAX_INVENTORY}"):
        decode(inventory(MAX_INVENTORY + 1), AGENT_MESSAGES)


def test_texts_are_made_storable():
    raw = json.dumps({"type": "state", "taskid": "t", "state": 5, "error_msg": "\ud800" + "x" * 10_000})
    report = decode(raw, AGENT_MESSAGES)
    assert report.error_msg.encode("utf-8")  # the lone surrogate was replaced
    assert len(report.error_msg) == 4096


def test_a_bad_input_name_is_refused():
    for name in ("../etc/passwd", "a/b", ".", "..", ""):
        with pytest.raises(ProtocolError):
            InputFile.from_wire({"file_id": "f", "name": name, "size": 1})


def test_a_cursor_counts_lines_of_one_timestamp():
    position = StreamPosition().after(5).after(5).after(6)
    assert position == StreamPosition(6, 1)
    assert position.has_read(5, 99) and position.has_read(6, 1)
    assert not position.has_read(6, 2) and not position.has_read(7, 1)
    cursor = LogCursor().advanced(Stream.STDERR, 4 * 10**9).advanced(Stream.STDOUT, 9 * 10**9)
    assert cursor.since_ns == 3 * 10**9  # a moment before the earlier stream's last line
    assert LogCursor().advanced(Stream.STDOUT, 5 * 10**9).since_ns == 4 * 10**9  # stderr never printed
    assert LogCursor().since_ns == 0
    assert LogCursor.from_json(cursor.to_json()) == cursor
    assert LogCursor.from_json("") == LogCursor()
