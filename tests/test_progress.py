"""MEGAMIND_PROGRESS lines: the last valid one wins; anything else is an ordinary line."""

import pytest

from megamind.progress import progress_of


@pytest.mark.parametrize(("lines", "expected"), [
    ([], None),
    (["hello"], None),
    (["MEGAMIND_PROGRESS=0"], 0.0),
    (["MEGAMIND_PROGRESS=100"], 100.0),
    (["MEGAMIND_PROGRESS=42.5"], 42.5),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=20", "work"], 20.0),
    (["MEGAMIND_PROGRESS=30\r"], 30.0),  # a terminal's line ending
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=101"], 10.0),  # out of range: ignored
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=-5"], 10.0),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=1e2"], 10.0),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=nan"], 10.0),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS="], 10.0),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=50%"], 10.0),
    (["MEGAMIND_PROGRESS=10", "echo MEGAMIND_PROGRESS=50"], 10.0),
    (["MEGAMIND_PROGRESS=10", "MEGAMIND_PROGRESS=50 60"], 10.0),
    (["megamind_progress=50"], None),
    (["MEGAMIND_PROGRESS=٥٠"], None),  # digits of other scripts are not numbers here
])
def test_the_last_valid_progress_line_wins(lines, expected):
    assert progress_of(lines) == expected


def test_any_iterable_of_texts():
    assert progress_of(line for line in ["MEGAMIND_PROGRESS=1", "MEGAMIND_PROGRESS=2"]) == 2.0
