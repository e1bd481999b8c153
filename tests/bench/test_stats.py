"""The harness's arithmetic (no timing here: the benchmarks stay out of the test suite)."""

from __future__ import annotations

import math

import pytest

from bench.stats import Row, Summary, median, p95, percentile, ratio, table


def test_median_of_odd_and_even_counts():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_percentiles_interpolate_between_ranks():
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 0) == 1
    assert percentile(samples, 100) == 100
    assert p95(samples) == pytest.approx(95.05)
    assert p95([7.0]) == 7.0
    with pytest.raises(ValueError):
        median([])


def test_ratio():
    assert ratio(11.5, 10) == pytest.approx(1.15)
    assert ratio(0, 0) == 1.0
    assert math.isinf(ratio(1, 0))


def test_table_shows_every_figure():
    row = Row("launch", "addtask -> running", Summary([100, 110, 120], "ms"), Summary([90, 100, 110], "ms"),
              ratio(110, 100), "<= 1.15", True)
    text = table([row])
    assert "launch" in text and "110 / 119 ms" in text and "1.10" in text and "yes" in text
    assert table([row], markdown=True).splitlines()[2].startswith("| launch |")
