from datetime import datetime, timezone

import pytest

from megamind.executor.runtime import split_reference, parse_timestamp_ns

BASE_S = int(datetime(2024, 3, 5, 7, 8, 9, tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize("stamp, fraction_ns", [
    ("2024-03-05T07:08:09.123456789Z", 123_456_789),
    ("2024-03-05T07:08:09.000000001Z", 1),
    ("2024-03-05T07:08:09.123456Z", 123_456_000),
    ("2024-03-05T07:08:09.5Z", 500_000_000),
    ("2024-03-05T07:08:09Z", 0),
])
def test_parse_timestamp_ns(stamp, fraction_ns):
    assert parse_timestamp_ns(stamp) == BASE_S * 1_000_000_000 + fraction_ns


def test_parse_timestamp_ns_with_offsets():
    assert parse_timestamp_ns("2024-03-05T09:08:09.25+02:00") == BASE_S * 1_000_000_000 + 250_000_000
    assert parse_timestamp_ns("2024-03-05T02:08:09.25-05:00") == BASE_S * 1_000_000_000 + 250_000_000


def test_parse_timestamp_ns_orders_lines_within_a_second():
    a = parse_timestamp_ns("2024-03-05T07:08:09.999999999Z")
    b = parse_timestamp_ns("2024-03-05T07:08:10.000000000Z")
    assert b - a == 1


@pytest.mark.parametrize("reference, expected", [
    ("127.0.0.1:5000/helloworld:latest", ("127.0.0.1:5000/helloworld", "latest")),
    ("127.0.0.1:5000/team/app:v1.2", ("127.0.0.1:5000/team/app", "v1.2")),
    ("127.0.0.1:5000/helloworld", ("127.0.0.1:5000/helloworld", "latest")),
    ("registry.local/helloworld", ("registry.local/helloworld", "latest")),
    ("127.0.0.1:5000/helloworld@sha256:" + "a" * 64, ("127.0.0.1:5000/helloworld", "sha256:" + "a" * 64)),
    ("127.0.0.1:5000/helloworld:v1@sha256:" + "b" * 64, ("127.0.0.1:5000/helloworld", "sha256:" + "b" * 64)),
])
def testsplit_reference(reference, expected):
    assert split_reference(reference) == expected


def test_only_newlines_end_engine_log_entries():
    from megamind.executor.runtime import DockerRuntime

    class Response:
        status_code = 200

    class FakeApi:
        def _url(self, path, *args):
            return path

        def _get(self, url, params):
            return Response()

        def _get_result_tty(self, stream, response, tty):
            return (b"2026-11-22T10:00:00.000000001Z 10%\r20%\r100%\n"
                    b"2026-11-22T10:00:00.000000002Z form\x0cfeed \xe2\x80\xa8 sep\n")

    runtime = DockerRuntime.__new__(DockerRuntime)
    runtime.api = FakeApi()
    lines = runtime.log_tail("c", 20, None)
    assert [line.text for line in lines] == ["10%\r20%\r100%", "form\x0cfeed \u2028 sep"]
    assert runtime.log_tail("c", 20, lines[0].ns)[0].text.startswith("form")

