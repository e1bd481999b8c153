"""The pure helpers of the output benchmarks (bench/streams.py) and run.py's write rule."""

from __future__ import annotations

import pytest

from bench.run import writes_results
from bench.streams import (
    check_sequence,
    first_arrivals,
    latencies_ms,
    lines_per_second,
    parse_docker_line,
)


def test_a_complete_sequence_is_exact():
    check = check_sequence([str(n) for n in range(5)], 5)
    assert check == (5, 0, 0, 0, 0)
    assert check.exact
    assert "0 lost" in check.text()


def test_lost_duplicated_out_of_order_and_foreign_lines_are_counted_apart():
    check = check_sequence(["0", "2", "1", "2", "[megamind: 3 lines dropped here]", "9", "-1", " 3"], 5)
    assert check.lines == 8
    assert check.lost == 2  # 3 and 4
    assert check.duplicated == 1  # the second 2
    assert check.out_of_order == 1  # 1 after 2
    assert check.foreign == 4  # the marker, 9 (past the count), -1, " 3"
    assert not check.exact


def test_a_sequence_may_start_elsewhere():
    assert check_sequence(["1", "2", "3"], 3, first=1).exact
    assert check_sequence(["0", "1", "2"], 3, first=1) == (3, 1, 0, 0, 1)


def test_a_gap_then_a_repeat_of_older_lines_is_out_of_order_only_for_first_reads():
    # What Docker 20.10's follow did across a rotation: a stretch again, then on.
    check = check_sequence(["0", "1", "2", "3", "1", "2", "3", "4"], 5)
    assert (check.lost, check.duplicated, check.out_of_order) == (0, 3, 0)


def test_lines_per_second_from_first_to_last_arrival():
    assert lines_per_second([0, 500_000_000, 1_000_000_000]) == pytest.approx(2.0)
    assert lines_per_second([5]) is None
    assert lines_per_second([7, 7]) is None


def test_latencies_pair_lines_by_text_in_stamp_order():
    stamped = {"b": 2_000_000, "a": 1_000_000, "c": 3_000_000}
    arrived = first_arrivals(["a", "b", "a"], [4_000_000, 5_000_000, 9_000_000])
    assert arrived == {"a": 4_000_000, "b": 5_000_000}
    assert latencies_ms(stamped, arrived) == [3.0, 3.0]  # a, then b; c never arrived


def test_docker_timestamps_are_parsed_to_ns():
    ns, text = parse_docker_line("2026-11-22T17:55:00.000000123Z 42 and more")
    assert text == "42 and more"
    assert ns % 1_000_000_000 == 123
    assert parse_docker_line("2026-11-22T17:55:00.5Z x")[0] % 1_000_000_000 == 500_000_000


def test_only_a_full_run_rewrites_the_recorded_results():
    assert writes_results(quick=False, only=None, write=None)
    assert not writes_results(quick=True, only=None, write=None)
    assert not writes_results(quick=False, only=["lines"], write=None)
    assert writes_results(quick=True, only=None, write=True)
    assert not writes_results(quick=False, only=None, write=False)


def test_a_benchmark_that_failed_is_a_row_that_says_why():
    from bench.run import failed_row
    from bench.stats import table

    row = failed_row("scale", RuntimeError("no such table:\n task_logs"))
    assert not row.met
    assert row.notes == ["scale: failed: RuntimeError: no such table: task_logs"]
    assert "did not run to its end" in table([row])
    assert row.to_dict()["ours"] is None


def test_the_longest_pause_between_arrivals():
    from bench.streams import longest_pause_ms

    assert longest_pause_ms([0, 1_000_000, 9_000_000, 10_000_000]) == 8.0
    assert longest_pause_ms([5]) == 0.0
