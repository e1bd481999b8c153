"""The agent's bounded output buffer: nothing lost while it fits, the middle goes when not."""

from megamind.executor.output import OutputBuffer
from megamind.protocol import LogCursor, LogEntry, Stream

OUT, ERR = Stream.STDOUT, Stream.STDERR


def lines(stream, start, count):
    return [LogEntry(stream, ns, f"{stream.name} {ns}") for ns in range(start, start + count)]


def cursor_after(entries):
    cursor = LogCursor()
    for entry in entries:
        cursor = cursor.advanced(entry.stream, entry.ns)
    return cursor


def test_everything_waiting_goes_in_one_batch_from_where_the_last_ended():
    buffer = OutputBuffer(LogCursor())
    first = lines(OUT, 1, 5)
    buffer.add(first, cursor_after(first))
    batch = buffer.take("t")
    assert batch.entries == tuple(first) and batch.since == LogCursor() and batch.cursor == cursor_after(first)
    assert buffer.take("t") is None
    more = lines(ERR, 6, 3)
    buffer.add(more, cursor_after(first + more))
    batch = buffer.take("t")
    assert batch.since == cursor_after(first) and batch.entries == tuple(more)


def test_past_the_bound_the_middle_goes_and_one_entry_per_stream_says_how_many():
    buffer = OutputBuffer(LogCursor(), max_lines=100, head_lines=10)
    mixed = [e for pair in zip(lines(OUT, 0, 500), lines(ERR, 1000, 500)) for e in pair]
    buffer.add(mixed, cursor_after(mixed))
    entries = buffer.take("t").entries
    real = [e for e in entries if not e.dropped]
    gaps = {e.stream: e.dropped for e in entries if e.dropped}
    assert len(real) == 100
    assert real[:10] == mixed[:10]  # the oldest stay
    assert real[-90:] == mixed[-90:]  # and the newest
    assert sum(gaps.values()) == 900
    assert entries[10].dropped and entries[11].dropped  # the gaps stand where the lines were


def test_the_newest_20_stdout_lines_are_never_dropped():
    buffer = OutputBuffer(LogCursor(), max_lines=60, head_lines=10)
    flood = lines(OUT, 0, 20) + lines(ERR, 100, 10_000)
    buffer.add(flood, cursor_after(flood))
    entries = buffer.take("t").entries
    stdout = [e.text for e in entries if e.stream is OUT and not e.dropped]
    assert stdout == [f"STDOUT {ns}" for ns in range(20)]


def test_the_text_bound_counts_characters():
    buffer = OutputBuffer(LogCursor(), max_chars=50_000, head_lines=0)
    big = [LogEntry(OUT, ns, "x" * 1000) for ns in range(100)]
    buffer.add(big, cursor_after(big))
    entries = buffer.take("t").entries
    assert sum(len(e.text) for e in entries) <= 50_000
    assert sum(1 for e in entries if not e.dropped) == 50
    assert sum(e.dropped for e in entries) + sum(1 for e in entries if not e.dropped) == 100


def test_reset_forgets_what_waits_and_starts_after_the_given_cursor():
    buffer = OutputBuffer(LogCursor())
    some = lines(OUT, 1, 3)
    buffer.add(some, cursor_after(some))
    api_has = cursor_after(some[:1])
    buffer.reset(api_has)
    assert buffer.take("t") is None
    assert buffer.cursor == api_has
