from megamind.executor.logtail import MAX_LINE_CHARS, TAIL_LINES, TaskLogTail
from megamind.executor.runtime import LogLine


def lines(start, stop):
    return [LogLine(ns=1_000 + i, text=f"line {i}") for i in range(start, stop)]


def test_new_tail_sends_an_empty_reset_first():
    tail = TaskLogTail()
    assert tail.take() == ([], True)
    assert tail.take() is None


def test_first_batch_resets_then_increments():
    tail = TaskLogTail()
    tail.add(lines(0, 3))
    assert tail.take() == (["line 0", "line 1", "line 2"], True)
    assert tail.take() is None
    tail.add(lines(3, 5))
    assert tail.take() == (["line 3", "line 4"], False)
    assert tail.last_ns == 1_004


def test_lines_not_newer_than_last_are_dropped():
    tail = TaskLogTail()
    tail.add(lines(0, 5))
    tail.take()
    # The engine's `since` is in whole seconds: it sends some lines again.
    tail.add(lines(2, 7))
    assert tail.take() == (["line 5", "line 6"], False)


def test_bounded_to_the_last_20():
    tail = TaskLogTail()
    tail.add(lines(0, 50))
    batch, reset = tail.take()
    assert reset is True
    assert len(batch) == TAIL_LINES == 20
    assert batch == [f"line {i}" for i in range(30, 50)]


def test_resend_all_sends_the_whole_tail_with_reset():
    tail = TaskLogTail()
    tail.add(lines(0, 25))
    tail.take()
    tail.add(lines(25, 27))
    tail.take()
    tail.resend_all()
    batch, reset = tail.take()
    assert reset is True
    assert batch == [f"line {i}" for i in range(7, 27)]
    assert tail.take() is None


def test_long_lines_are_cut():
    tail = TaskLogTail()
    tail.add([LogLine(1, "x" * (MAX_LINE_CHARS + 10))])
    batch, _ = tail.take()
    assert len(batch[0]) == MAX_LINE_CHARS
