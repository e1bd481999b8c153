import pytest

from megamind.executor.runtime import split_reference


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

