import jsonschema_rs  # JSON Schema as schemathesis reads it: ECMA-262-like patterns, not Python's
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from megamind.api.openapi import build_spec
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


# --- ASCII, as Docker's grammar, and the OpenAPI document says the same ----------------


def _accepted(text: str) -> bool:
    try:
        parse_image(text)
    except ImageNotAllowed:
        return False
    return True


# addtask's image as the published document says it.
_SPEC_IMAGE = jsonschema_rs.validator_for(
    build_spec()["components"]["schemas"]["AddTaskRequest"]["properties"]["image"])
# References of Docker's grammar, short: a name of one to three components, a tag, a digest.
_COMPONENT = st.from_regex(r"[a-z0-9]{1,4}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,4}){0,2}", fullmatch=True)
_TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
_REFERENCES = st.builds(
    lambda name, tag, digest: f"{PUBLIC_REGISTRY}/{'/'.join(name)}" + (f":{tag}" if tag else "") + (digest or ""),
    st.lists(_COMPONENT, min_size=1, max_size=3), st.none() | _TAG, st.none() | st.just("@" + DIGEST),
)


@pytest.mark.parametrize("text", [
    "megamind.network/x:tést",  # Python's \w would take é; Docker's (Go's) takes ASCII only
    "megamind.network/x:t\u0661",  # an Arabic-Indic digit
    "megamind.network/x:\uff41",  # a fullwidth a
    "megamind.network/tést:x",
    "megamind.network/x\u0131",  # a dotless i
    "megamind.network/\u212a",  # the Kelvin sign, which IGNORECASE would match as k
    "megamind.network/x@sha256:" + "\u0661" * 64,
    "megamind.network\u2024x",  # a one-dot leader instead of the dot
])
def test_non_ascii_is_refused_before_any_pull(text):
    with pytest.raises(ImageNotAllowed) as info:
        parse_image(text)
    assert info.value.code == ErrorCode.IMAGE_NOT_ALLOWED == 16
    assert not _SPEC_IMAGE.is_valid(text)


@st.composite
def _mutated(draw, text: str) -> str:
    """A reference with one character inserted, replaced or deleted: any character, often a near miss."""
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(list("Aa0_.-:/@é\u0661\uff41\u212a\n ")) | st.characters())
    how = draw(st.sampled_from(["insert", "replace", "delete"]))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "replace":
        return text[:at] + char + text[at + 1:]
    return text[:at] + text[at + 1:]


@settings(max_examples=200, deadline=None)
@given(st.one_of(_REFERENCES, _REFERENCES.flatmap(_mutated), st.text(max_size=30).map(f"{PUBLIC_REGISTRY}/".__add__)))
def test_the_spec_pattern_accepts_exactly_what_the_server_does(text):
    assert _SPEC_IMAGE.is_valid(text) == _accepted(text), text
