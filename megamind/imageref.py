"""Image references: what customers may ask for and where the engine pulls it from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from megamind.errors import ImageNotAllowed

PUBLIC_REGISTRY = "megamind.network"

# Docker's reference grammar (distribution/reference), restricted to our registry:
# lowercase path components joined by separators, an optional tag, an optional digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"{_COMPONENT}(?:/{_COMPONENT})*"
# Docker's `\w` is ASCII; Python's matches any letter, which the engine would refuse at pull.
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^{re.escape(PUBLIC_REGISTRY)}/(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
# The same grammar without group names: an ECMA-262 pattern, for the OpenAPI document.
REFERENCE_PATTERN = rf"^{re.escape(PUBLIC_REGISTRY)}/{_NAME}(?::{_TAG})?(?:@{_DIGEST})?$"
MAX_REFERENCE_LENGTH = 255


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None
    digest: str | None

    @property
    def public(self) -> str:
        return self._render(PUBLIC_REGISTRY)

    def pull_reference(self, registry: str) -> str:
        """The same image addressed at the registry this platform is configured with."""
        return self._render(registry)

    def _render(self, registry: str) -> str:
        ref = f"{registry}/{self.name}"
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


def parse_image(text: str) -> ImageRef:
    """Parse a customer's image; ``:latest`` is implied when neither tag nor digest is given."""
    if len(text) > MAX_REFERENCE_LENGTH:
        raise ImageNotAllowed(f"image: longer than {MAX_REFERENCE_LENGTH} characters")
    match = _REFERENCE.fullmatch(text)  # not match(): `$` would let a trailing newline in
    if not match:
        raise ImageNotAllowed(
            f"image: {text!r} is not a Megamind registry image; "
            f"expected {PUBLIC_REGISTRY}/<name>:<tag> with a lowercase name"
        )
    tag, digest = match["tag"], match["digest"]
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(name=match["name"], tag=tag, digest=digest)
