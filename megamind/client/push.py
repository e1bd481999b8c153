"""Pushing a local image to the platform's registry through the local Docker engine.

The engine is logged in with the account's name and an api-key (only in this process's
memory: nothing is written to ~/.docker/config.json), then pushes; the registry asks the
API's token server whether the account may push that repository.  The first account
to push a name owns it.

Blocking, like the Docker SDK it uses; ``megamind push`` and the tests call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from megamind.errors import ImageNotAllowed
from megamind.imageref import PUBLIC_REGISTRY, parse_image


class PushError(Exception):
    """The engine could not log in, find the image, or push it; the message says which."""


@dataclass(frozen=True)
class Target:
    name: str  # the repository, as in megamind.network/<name>
    tag: str

    @property
    def public(self) -> str:
        return f"{PUBLIC_REGISTRY}/{self.name}:{self.tag}"

    def at(self, registry: str) -> str:
        return f"{registry}/{self.name}:{self.tag}"


def parse_target(text: str) -> Target:
    """``NAME[:TAG]`` or ``megamind.network/NAME[:TAG]`` (``:latest`` implied); no digest."""
    full = text if text.startswith(f"{PUBLIC_REGISTRY}/") else f"{PUBLIC_REGISTRY}/{text}"
    try:
        ref = parse_image(full)
    except ImageNotAllowed:
        raise PushError(f"{text!r} is not a repository name: lowercase letters, digits and . _ - "
                        "separated by /, then optionally :TAG") from None
    if ref.digest is not None or ref.tag is None:
        raise PushError(f"{text!r}: push to a tag (NAME:TAG), not to a digest")
    return Target(ref.name, ref.tag)


def push_image(local: str, registry: str, target: Target, username: str, password: str,
               progress: Callable[[str], None] = lambda line: None, engine: Any = None) -> str | None:
    """Tag ``local`` as ``<registry>/<name>:<tag>``, log the engine in and push it; returns the
    pushed manifest's digest (None if the engine did not say).  Raises PushError."""
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound

    client = engine or docker.from_env(version="auto")
    api = client.api
    repository = f"{registry}/{target.name}"
    credentials = {"username": username, "password": password}
    try:
        try:
            api.tag(local, repository, target.tag)
        except ImageNotFound:
            raise PushError(f"the engine has no image {local!r}") from None
        try:
            api.login(username=username, password=password, registry=registry, reauth=True)
        except APIError as exc:
            raise PushError(f"the registry at {registry} refused the login of {username!r}: "
                            f"{exc.explanation or exc}") from None
        progress(f"pushing {target.at(registry)} as {username}")
        return _follow(api.push(repository, tag=target.tag, stream=True, decode=True, auth_config=credentials),
                       target, progress)
    except DockerException as exc:
        raise PushError(f"the Docker engine failed: {exc}") from None
    finally:
        if engine is None:
            client.close()


def _follow(stream: Any, target: Target, progress: Callable[[str], None]) -> str | None:
    """The engine's progress lines, each layer's status once per change; an ``error`` line fails."""
    shown: dict[str, str] = {}
    digest = None
    for line in stream:
        if not isinstance(line, dict):
            continue
        if line.get("error"):
            raise PushError(f"push of {target.public} refused: {line['error']} (a repository belongs to "
                            "the account that pushed it first; only that account may push to it)")
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
        status, layer = str(line.get("status") or ""), str(line.get("id") or "")
        if status and shown.get(layer) != status:
            shown[layer] = status
            progress(f"{layer}: {status}" if layer else status)
    return digest
