"""The Docker engine, through the SDK, as plain blocking functions.

Nothing here is async: `facade.AsyncDocker` runs each call in a bounded thread pool.
Errors are matched on the SDK's exception types and status codes, never on text.
"""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException, NotFound

from megamind.executor.spec import LABEL_HWID, LABEL_TASK
from megamind.executor.transfer import ResultsArchive, copy_results, inputs_tar
from megamind.jobspec import PortMapping
from megamind.taskenv import OUTPUT_DIR

# What a call to the engine can raise when the engine is away (restarting, socket gone):
# the SDK's own errors, and the transport's, which the SDK lets through.
ENGINE_ERRORS = (DockerException, requests.exceptions.RequestException)

_GO_MODE_DIR = 1 << 31  # os.ModeDir in the engine's stat of a path


class PullError(Exception):
    """The registry or the engine refused the image."""


@dataclass(frozen=True)
class ContainerInfo:
    taskid: str
    id: str
    status: str  # the engine's word: created, running, exited, dead, ...
    exit_code: int | None
    finished_at: str = ""  # the engine's time of the last exit: one run of the container
    started_at: str = ""  # the engine's time of the last start: a runtime limit counts from it
    oom_killed: bool = False  # the kernel's OOM killer struck in the container's cgroup
    labels: dict[str, str] = field(default_factory=dict)  # the limits it was made with, among others
    ports: tuple[PortMapping, ...] = ()  # where its ports are published on this host, while it runs


@dataclass(frozen=True)
class Created:
    id: str
    image_id: str  # what the reference named when the container was made


@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_digests: frozenset[str]  # "registry/name@sha256:..." for each manifest it came from


@dataclass(frozen=True)
class EngineImage:
    id: str
    tags: tuple[str, ...]  # "registry/name:tag" for each name it goes by; none: dangling
    size: int  # bytes, its shared layers counted in full
    digests: tuple[str, ...] = ()  # "registry/name@sha256:..." for each manifest it came from


@dataclass(frozen=True)
class EngineContainer:
    """Any container of the engine, of any state, as the image cache sees it."""

    image_id: str
    image: str  # the reference it was created from
    labels: dict[str, str] = field(default_factory=dict)


def _info(attrs: dict[str, Any]) -> ContainerInfo:
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    return ContainerInfo(
        taskid=labels.get(LABEL_TASK, ""),
        id=attrs["Id"],
        status=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        finished_at=state.get("FinishedAt", ""),
        started_at=state.get("StartedAt", ""),
        oom_killed=bool(state.get("OOMKilled")),
        labels=dict(labels),
        ports=published_ports((attrs.get("NetworkSettings") or {}).get("Ports")),
    )


def published_ports(engine_ports: dict[str, Any] | None) -> tuple[PortMapping, ...]:
    """The engine's ``NetworkSettings.Ports`` ({"8888/tcp": [{"HostIp", "HostPort"}], ...}) as
    mappings, one per container and host port: an address published on IPv4 and IPv6 is one."""
    mappings: dict[tuple[int, int], PortMapping] = {}
    for key, bindings in (engine_ports or {}).items():
        port, _, protocol = key.partition("/")
        if protocol not in ("", "tcp") or not port.isdigit():
            continue
        for binding in bindings or ():  # None: exposed, not published
            host = str(binding.get("HostPort") or "")
            if host.isdigit() and int(host) > 0:
                mappings.setdefault((int(port), int(host)), PortMapping(int(port), int(host)))
    return tuple(sorted(mappings.values(), key=lambda m: (m.container, m.host)))


class DockerRuntime:
    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or docker.from_env(version="auto", timeout=60)
        self.api = self.client.api
        # The engine is this host's: no proxy applies, and looking them up from the
        # environment on every call (requests.Session.trust_env) cost a burst 6% of its CPU.
        self.api.trust_env = False

    def ping(self) -> bool:
        return self.api.ping()

    def pull(self, reference: str, token: str = "") -> str:
        """Pull explicitly, reading the progress stream: an ``error`` line is a failure.

        ``token``: a registry token the engine sends as ``Authorization: Bearer`` (the Engine
        API's ``registrytoken``); without one the engine uses what it has (none, or a login).
        Returns the id of the image the reference names once the pull is done.
        """
        repository, tag = split_reference(reference)
        auth = {"registrytoken": token} if token else None
        try:
            for line in self.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth):
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

    def all_containers(self) -> list[EngineContainer]:
        """Every container of the engine, whoever made it, from one listing."""
        return [
            EngineContainer(item.get("ImageID", ""), item.get("Image", ""), dict(item.get("Labels") or {}))
            for item in self.api.containers(all=True)
        ]

    def images(self) -> list[EngineImage]:
        return [
            EngineImage(item["Id"], tuple(t for t in item.get("RepoTags") or () if t != "<none>:<none>"),
                        int(item.get("Size") or 0),
                        tuple(d for d in item.get("RepoDigests") or () if d != "<none>@<none>"))
            for item in self.api.images()
        ]

    def remove_image(self, reference: str) -> bool:
        """Untag ``reference`` (a tag) and remove the image if that was its last name (or
        remove it by id), never by force; False when the engine refuses because a container
        uses it (409).  An image already gone is success."""
        try:
            self.api.remove_image(reference, force=False, noprune=False)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:
                raise
            return False
        return True

    def networks(self, name: str) -> list[dict[str, Any]]:
        """The engine's networks of exactly this name, oldest first (two agents that made
        one at the same moment may have made twins)."""
        found = [n for n in self.api.networks(names=[name]) if n.get("Name") == name]
        return sorted(found, key=lambda n: (n.get("Created", ""), n["Id"]))

    def create_network(self, name: str, options: dict[str, str], labels: dict[str, str]) -> None:
        """A bridge network of this name; one that exists already (409) is success."""
        try:
            self.api.create_network(name, driver="bridge", options=options, labels=labels, check_duplicate=True)
        except APIError as exc:
            if exc.status_code != 409:
                raise

    def remove_network(self, network_id: str) -> None:
        """Remove; gone (404) is success, and so is one still in use (403, 409): left as it is."""
        try:
            self.api.remove_network(network_id)
        except APIError as exc:
            if exc.status_code not in (403, 404, 409):
                raise

    def info(self) -> dict[str, Any]:
        return self.api.info()

    def results_archive(self, container_id: str, dest: Path, limit_bytes: int) -> ResultsArchive | None:
        """The content of the container's /megamind/output as a gzip tar at ``dest``, its
        paths relative to that folder, cut before it passes ``limit_bytes``.  None if there
        is no such folder (or no such container: the engine says 404 to both).

        Works on a stopped container; streamed from the engine to the file.
        """
        try:
            chunks, stat = self.api.get_archive(container_id, OUTPUT_DIR)
        except NotFound:
            return None
        if not (stat or {}).get("mode", 0) & _GO_MODE_DIR:
            for _ in chunks:  # a file or a link there: not results; read the answer to its end
                pass
            return None
        try:
            return copy_results(chunks, posixpath.basename(OUTPUT_DIR), dest, limit_bytes)
        except (tarfile.TarError, urllib3.exceptions.HTTPError) as exc:
            # The answer broke off (the engine went away) or was no tar: an engine failure,
            # which callers already handle as such.
            raise DockerException(f"archive of {OUTPUT_DIR} unreadable: {exc}") from exc

    def put_inputs(self, container_id: str, files: list[tuple[str, Path]]) -> None:
        """Put each (name, file) at /megamind/input/<name> in a created container, before its start."""
        # Through a file, not memory: inputs may be large.  Beside them: the caller's
        # scratch folder, where the room for them was found.
        with tempfile.TemporaryFile(dir=files[0][1].parent if files else None) as archive:
            inputs_tar(files, archive)
            archive.seek(0)
            self.api.put_archive(container_id, "/", archive)

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
