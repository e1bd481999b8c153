import pytest

from megamind import errors
from megamind.errors import ERROR_TABLE, ErrorCode, MegamindError


def _error_classes():
    return [
        value for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, MegamindError) and value is not MegamindError
    ]


def test_every_code_has_a_table_entry():
    assert set(ERROR_TABLE) == set(ErrorCode)
    for code, (status, meaning) in ERROR_TABLE.items():
        assert 400 <= status <= 599
        assert meaning.strip()


def test_codes_are_stable_and_nonzero():
    assert all(int(code) > 0 for code in ErrorCode)
    assert len({int(code) for code in ErrorCode}) == len(ErrorCode)
    assert ErrorCode.INTERNAL == 1
    assert ErrorCode.TASK_NOT_FOUND == 7
    assert ErrorCode.EXECUTOR_NOT_FOUND == 8
    assert ErrorCode.EXECUTOR_BUSY == 9
    assert ErrorCode.EXECUTOR_OFFLINE == 10
    assert ErrorCode.IMAGE_NOT_ALLOWED == 16


def test_every_code_has_one_error_class():
    # INTERNAL is the base class's own code; every other code has its subclass.
    by_code = {ErrorCode.INTERNAL: "MegamindError"}
    for cls in _error_classes():
        assert cls.code not in by_code, f"{cls.__name__} and {by_code.get(cls.code)} share a code"
        by_code[cls.code] = cls.__name__
    assert set(by_code) == set(ErrorCode)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_class_status_matches_table(cls):
    status, _ = ERROR_TABLE[cls.code]
    assert cls.status == status
    err = cls("what went wrong")
    assert err.message == "what went wrong"
    assert str(err) == "what went wrong"
    assert isinstance(err, MegamindError)


def test_base_error_is_internal():
    assert MegamindError.code == ErrorCode.INTERNAL
    assert MegamindError.status == ERROR_TABLE[ErrorCode.INTERNAL][0] == 500
