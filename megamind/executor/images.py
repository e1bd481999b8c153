"""Making sure the engine holds what the registry holds under a reference, before a start.

Every start is an explicit pull, but a pull through the engine costs about 10 ms even
when nothing has changed (the engine's own registry round trips and bookkeeping), and it
is on the critical path of a launch.  So the agent first asks the registry itself which
manifest the reference names (one HEAD request) while it looks the image up in the
engine; when the engine's image already came from that manifest, it is current and is
used as it is.  Anything else (another digest, no local image, a registry that wants
credentials or TLS the agent does not have, no answer) is a pull through the engine, so
its errors stay the engine's and a pull error stays the task's error.

Both ask with the task's own pull token when the API sent one (the registry runs with
token auth): a registry that refuses that token ends the task's setup at once with a
plain reason, and an image the engine already has is never used for a task whose
token the registry refuses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import aiohttp

from megamind.executor.facade import AsyncDocker
from megamind.executor.joined import InFlight
from megamind.executor.runtime import PullError, split_reference

log = logging.getLogger(__name__)

# What the engine accepts when it pulls, so the registry names the same manifest.
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
DIGEST_HEADER = "Docker-Content-Digest"
CHECK_TIMEOUT_S = 3.0
# RFC 6750's error codes in the registry's challenge: which of the two refusals it is.
_INSUFFICIENT_SCOPE = 'error="insufficient_scope"'


def manifest_url(reference: str, digests: bool = False) -> str | None:
    """Where the registry answers for this reference's tag (or digest, with ``digests``);
    None when the agent should leave it to the engine (no registry host in the name, or a
    digest: nothing to ask)."""
    repository, tag = split_reference(reference)
    host, _, name = repository.partition("/")
    if not name or tag is None or (tag.startswith("sha256:") and not digests):
        return None
    if "." not in host and ":" not in host and host != "localhost":
        return None  # a Docker Hub name: not one of ours
    # The engine speaks plain HTTP to loopback registries only; so does this check.
    scheme = "http" if _is_loopback(host) else "https"
    return f"{scheme}://{host}/v2/{name}/manifests/{tag}"


def _is_loopback(host: str) -> bool:
    if host.startswith("["):  # [v6 address]:port
        hostname = host[1:host.find("]")]
    else:
        hostname = host.rsplit(":", 1)[0]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def is_current(reference: str, digest: str | None, repo_digests: frozenset[str]) -> bool:
    """True when the engine's image came from the manifest the registry names now."""
    if digest is None:
        return False
    repository, _ = split_reference(reference)
    return f"{repository}@{digest}" in repo_digests


class ImageFetcher:
    def __init__(self, docker: AsyncDocker, http: aiohttp.ClientSession) -> None:
        self.docker = docker
        self.http = http
        self._in_flight = InFlight()

    async def fetch(self, reference: str, token: str = "", shown_as: str = "") -> str:
        """The id of the image the registry holds under ``reference``, in the engine now,
        asked for with ``token`` (the task's pull token; "" none).  ``shown_as`` names the
        image in errors (the customer's name for it).

        Raises what a pull raises (``PullError``, engine errors)."""
        return await self._in_flight.join((reference, token), lambda: self._fetch(reference, token, shown_as))

    async def _fetch(self, reference: str, token: str, shown_as: str) -> str:
        local, digest = await asyncio.gather(
            self.docker.local_image(reference), self.registry_digest(reference, token, shown_as)
        )
        if local is not None and is_current(reference, digest, local.repo_digests):
            return local.id
        return await self.docker.pull(reference, token)

    async def registry_digest(self, reference: str, token: str = "", shown_as: str = "") -> str | None:
        """The digest of the manifest the registry serves for the reference, or None.

        Raises PullError when the registry refuses the token: the pull would be refused too."""
        _, tag = split_reference(reference)
        if tag is not None and tag.startswith("sha256:") and not token:
            return tag  # a digest names one manifest for ever: nothing to ask
        # With a token the registry is asked even of a digest: whether this task may have it
        # (the engine's copy may have been pulled for another account's task).
        url = manifest_url(reference, digests=bool(token))
        if url is None:
            return None
        headers = {"Accept": MANIFEST_TYPES}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.http.head(
                url, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S),
            ) as answer:
                if token and answer.status in (401, 403):
                    raise PullError(_refusal(shown_as or reference, answer.headers.get("WWW-Authenticate", "")))
                digest = answer.headers.get(DIGEST_HEADER, "")
                if answer.status == 200 and digest.startswith("sha256:"):
                    return digest
                return None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.debug("registry check of %s failed (%s); the engine pulls", reference, exc)
            return None


def _refusal(image: str, challenge: str) -> str:
    if _INSUFFICIENT_SCOPE in challenge:
        return (f"the registry refuses {image} to this task's account: there is no such image, or it is "
                "another account's private image (its owner can publish it)")
    return f"the registry refused this task's token for {image} (expired, or not signed by this platform's API)"
