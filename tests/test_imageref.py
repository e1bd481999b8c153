import pytest

from megamind.errors import ErrorCode, ImageNotAllowed
from megamind.imageref import MAX_REFERENCE_LENGTH, PUBLIC_REGISTRY, ImageRef, parse_image

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_tag_defaults_to_latest():
    ref = parse_image("megamind.network/helloworld")
    assert ref == ImageRef(name="helloworld", tag="latest", digest=None)
    assert ref.public == "megamind.network/helloworld:latest"


def test_explicit_tag_kept():
    ref = parse_image("megamind.network/helloworld:v1.2-rc_3")
    assert ref.tag == "v1.2-rc_3"
    assert ref.public == "megamind.network/helloworld:v1.2-rc_3"


def test_nested_name_and_separators():
    ref = parse_image("megamind.network/team-a/my_app.x/sub__part:1")
    assert ref.name == "team-a/my_app.x/sub__part"
    assert ref.tag == "1"


def test_digest_only_has_no_implied_tag():
    ref = parse_image(f"megamind.network/helloworld@{DIGEST}")
    assert ref == ImageRef("helloworld", None, DIGEST)
    assert ref.public == f"megamind.network/helloworld@{DIGEST}"
    assert ref.pull_reference("127.0.0.1:5000") == f"127.0.0.1:5000/helloworld@{DIGEST}"


def test_tag_and_digest():
    ref = parse_image(f"megamind.network/helloworld:v1@{DIGEST}")
    assert (ref.tag, ref.digest) == ("v1", DIGEST)
    assert ref.public == f"megamind.network/helloworld:v1@{DIGEST}"


def test_pull_reference_maps_to_configured_registry():
    ref = parse_image("megamind.network/helloworld")
    assert ref.pull_reference("registry.internal:5000") == "registry.internal:5000/helloworld:latest"
    assert PUBLIC_REGISTRY not in ref.pull_reference("registry.internal:5000")


@pytest.mark.parametrize("text", [
    "",
    "helloworld",
    "docker.io/x",
    "docker.io/library/ubuntu:latest",
    "megamind.network.evil.com/x",
    "evil.com/megamind.network/x",
    "megamind.network/UPPER",
    "megamind.network/x;rm -rf",
    "megamind.network/x rm",
    "megamind.network/../x",
    "megamind.network/./x",
    "megamind.network/",
    "megamind.network//x",
    "megamind.network/x/",
    "megamind.network/-x",
    "megamind.network/x:",
    "megamind.network/x:-tag",
    "megamind.network/x@sha256:short",
    "megamind.network/x\n",
    " megamind.network/x",
    "megamind.network/x$(id)",
    "megamind.network/x:" + "t" * 129,
])
def test_refused(text):
    with pytest.raises(ImageNotAllowed) as info:
        parse_image(text)
    assert info.value.code == ErrorCode.IMAGE_NOT_ALLOWED
    assert info.value.status == 422
    assert info.value.message.startswith("image:")


def test_length_limit():
    name = "a" * (MAX_REFERENCE_LENGTH - len("megamind.network/"))
    assert parse_image(f"megamind.network/{name}").name == name
    with pytest.raises(ImageNotAllowed, match="longer than"):
        parse_image(f"megamind.network/{name}a")
    with pytest.raises(ImageNotAllowed):
        parse_image("megamind.network/" + "x" * 300)
