from megamind.logmarks import count_dropped_before, dropped_before, dropped_here


def test_the_dropped_before_line_gives_its_count_back():
    for count in (1, 2, 1234567):
        assert count_dropped_before(dropped_before(count)) == count
    assert dropped_before(1) == "[megamind: 1 earlier line dropped]"


def test_other_lines_are_not_counted():
    assert count_dropped_before(dropped_here(5)) is None
    assert count_dropped_before("[megamind: 5 earlier lines dropped] and more") is None
    assert count_dropped_before("a task's own line") is None
    assert dropped_here(2) == "[megamind: 2 lines dropped here]"
