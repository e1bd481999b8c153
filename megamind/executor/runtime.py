"""The Docker engine, through the SDK, as plain blocking functions.

Nothing here is async: `facade.AsyncDocker` runs each call in a bounded thread pool.
Errors are matched on the SDK's exception types and status codes, never on text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from megamind.executor.spec import LABEL_HWID, LABEL_TASK

# What a call to the engine can raise when the engine is away (restarting, socket gone):
# the SDK's own errors, and the transport's, which the SDK lets through.
ENGINE_ERRORS = (DockerException, requests.exceptions.RequestException)


class PullError(Exception):
    """The registry or the engine refused the image."""


@dataclass(frozen=True)
class ContainerInfo:
    taskid: str
    id: str
    status: str  # the engine's word: created, running, exited, dead, ...
    exit_code: int | None


@dataclass(frozen=True)
class Created:
    id: str
    image_id: str  # what the reference named when the container was made


@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_digests: frozenset[str]  # "registry/name@sha256:..." for each manifest it came from


@dataclass(frozen=True)
class LogLine:
    ns: int  # the engine's timestamp in nanoseconds since the epoch
    text: str


def _info(attrs: dict[str, Any]) -> ContainerInfo:
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    return ContainerInfo(
        taskid=labels.get(LABEL_TASK, ""),
        id=attrs["Id"],
        status=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
    )


class DockerRuntime:
    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or docker.from_env(version="auto", timeout=60)
        self.api = self.client.api

    def ping(self) -> bool:
        return self.api.ping()

    def pull(self, reference: str) -> str:
        """Pull explicitly, reading the progress stream: an ``error`` line is a failure.

        Returns the id of the image the reference names once the pull is done.
        """
        repository, tag = split_reference(reference)
        try:
            for line in self.api.pull(repository, tag=tag, stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise PullError(line["error"])
        except APIError as exc:
            raise PullError(exc.explanation or str(exc)) from None
        image_id = self.image_id(reference)
        if image_id is None:
            raise PullError(f"{reference} is not in the engine after its pull")
        return image_id

    def create(self, kwargs: dict[str, Any]) -> Created:
        """Create the container, or find the one an earlier attempt made (same name).

        An image the engine does not have raises ``ImageNotFound``: nothing is pulled here.
        """
        try:
            attrs = self.client.containers.create(**kwargs).attrs
        except APIError as exc:
            if exc.status_code != 409:
                raise
            attrs = self.api.inspect_container(kwargs["name"])
        return Created(id=attrs["Id"], image_id=attrs["Image"])

    def image_id(self, reference: str) -> str | None:
        """The id of the image the engine has under this reference, or None."""
        image = self.local_image(reference)
        return None if image is None else image.id

    def local_image(self, reference: str) -> LocalImage | None:
        """The engine's image under this reference, with the registry digests it is known by."""
        try:
            attrs = self.api.inspect_image(reference)
        except NotFound:
            return None
        return LocalImage(id=attrs["Id"], repo_digests=frozenset(attrs.get("RepoDigests") or ()))

    def start(self, container_id: str) -> None:
        self.api.start(container_id)

    def stop(self, container_id: str, timeout: int) -> None:
        """Stop; a container already stopped (304) or gone (404) is success."""
        try:
            self.api.stop(container_id, timeout=timeout)
        except NotFound:
            pass

    def restart(self, container_id: str, timeout: int) -> None:
        self.api.restart(container_id, timeout=timeout)

    def inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            return _info(self.api.inspect_container(container_id))
        except NotFound:
            return None

    def remove(self, container_id: str) -> None:
        """Kill and remove; a container already gone is success."""
        try:
            self.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise

    def containers(self, hwid: str) -> list[ContainerInfo]:
        listed = self.api.containers(all=True, filters={"label": f"{LABEL_HWID}={hwid}"})
        infos = []
        for item in listed:
            info = self.inspect(item["Id"])
            if info is not None:
                infos.append(info)
        return infos

    def log_tail(self, container_id: str, lines: int, since_ns: int | None) -> list[LogLine] | None:
        """The last ``lines`` stdout lines, newer than ``since_ns``; None if the container is gone.

        The engine reads its log file from the end, so this costs the same whatever
        the task printed before.
        """
        params: dict[str, Any] = {"stdout": 1, "stderr": 0, "timestamps": 1, "follow": 0, "tail": lines}
        if since_ns:
            params["since"] = since_ns // 1_000_000_000
        # The SDK's logs() inspects the container first to learn whether it has a TTY;
        # ours never do, and this is polled for every running task, so one call it is.
        response = self.api._get(self.api._url("/containers/{0}/logs", container_id), params=params)
        if response.status_code == 404:
            return None
        raw = self.api._get_result_tty(False, response, False)
        out = []
        # Only "\n" ends an entry: a line may hold \r or other breaks of its own.
        for entry in raw.decode("utf-8", "replace").split("\n"):
            if not entry:
                continue
            stamp, _, text = entry.partition(" ")
            try:
                ns = parse_timestamp_ns(stamp)
            except ValueError:
                continue  # not an entry of the engine's (a partial line's tail): skip it
            if since_ns is None or ns > since_ns:
                out.append(LogLine(ns, text))
        return out

    def close(self) -> None:
        self.client.close()


def split_reference(reference: str) -> tuple[str, str | None]:
    """``host:port/name:tag`` or ``...@sha256:..`` -> (repository, tag or digest)."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        # A tag before the digest adds nothing to a pull by digest.
        slash = repository.rfind("/")
        if ":" in repository[slash + 1 :]:
            repository = repository[: repository.rfind(":")]
        return repository, digest
    slash = reference.rfind("/")
    name_part = reference[slash + 1 :]
    if ":" in name_part:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag
    return reference, "latest"


def parse_timestamp_ns(stamp: str) -> int:
    """RFC 3339 with nanoseconds, as the engine writes it, to integer nanoseconds."""
    main, _, rest = stamp.partition(".")
    if not rest:
        main = main.rstrip("Z")
        seconds = datetime.fromisoformat(main).replace(tzinfo=timezone.utc).timestamp()
        return int(seconds) * 1_000_000_000
    fraction = rest.rstrip("Z")
    zone = ""
    for sign in ("+", "-"):
        if sign in fraction:
            fraction, zone = fraction.split(sign, 1)[0], sign + fraction.split(sign, 1)[1]
    moment = datetime.fromisoformat(main + (zone or "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])
