"""Keeping the images the agent pulled within the owner's budget (``--image-cache-gb``).

The agent records when it last used each image (``<state-dir>/images.json``): by the
reference a start command names, before the pull, and by image id once an engine
listing ties the two; the images of its own containers count as used at each look.
A prune removes unused images, least recently used first, until the images it recorded
fit in the budget.  An image is a candidate only when

- the agent used it (it pulled it, from its registry) and every name it goes by is one the
  agent's tasks named: an image the owner also tagged otherwise is the owner's;
- no container of the engine uses it, whoever made it and whatever its state (a stopped
  container kept for its task's results still needs it); the engine refuses all the same;
- it has not been used for ``MIN_IDLE_S``: a start may be between its pull and its create.

Sizes are the engine's per image, shared layers counted in each: the total overstates
what the disk holds, so a prune errs towards removing.  Prunes run after each removed task
and every ``image_prune_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from megamind.executor.facade import AsyncDocker
from megamind.executor.runtime import ENGINE_ERRORS, EngineContainer, EngineImage
from megamind.executor.spec import LABEL_HWID

log = logging.getLogger(__name__)

RECORD_FILE = "images.json"
MIN_IDLE_S = 900.0
GB = 1000**3  # as the engine counts image sizes


@dataclass
class UseRecord:
    """When the agent last used each reference its tasks named, and each image id (epoch s)."""

    references: dict[str, float] = field(default_factory=dict)
    images: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> UseRecord:
        try:
            data = json.loads(path.read_text())
            return cls(
                {str(k): float(v) for k, v in data.get("references", {}).items()},
                {str(k): float(v) for k, v in data.get("images", {}).items()},
            )
        except FileNotFoundError:
            return cls()
        except (ValueError, AttributeError, TypeError) as exc:
            log.warning("%s unreadable (%s): the image cache starts afresh", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps({"references": self.references, "images": self.images}, sort_keys=True))
        os.replace(part, path)

    def touch(self, reference: str, now: float) -> None:
        self.references[reference] = max(now, self.references.get(reference, 0.0))

    def _use(self, image_id: str, when: float) -> None:
        self.images[image_id] = max(when, self.images.get(image_id, 0.0))


def _names(image: EngineImage) -> tuple[str, ...]:
    return image.tags + image.digests


def observe(record: UseRecord, images: Iterable[EngineImage], containers: Iterable[EngineContainer],
            hwids: Iterable[str], now: float, min_idle_s: float = MIN_IDLE_S) -> None:
    """Bring what the engine shows into the record: references tie to the images they name
    now; images of the agent's own containers are used now; what is gone is forgotten."""
    images = list(images)
    hwids = set(hwids)
    for container in containers:
        if container.labels.get(LABEL_HWID) in hwids:
            record._use(container.image_id, now)
            if not container.image.startswith("sha256:"):
                record.touch(container.image, now)
    named = {}
    for image in images:
        for name in _names(image):
            named[name] = image.id
            if name in record.references:
                record._use(image.id, record.references[name])
    present = {image.id for image in images}
    record.images = {i: t for i, t in record.images.items() if i in present}
    # A reference touched a moment ago may name an image still being pulled: kept a while.
    record.references = {r: t for r, t in record.references.items() if r in named or now - t < min_idle_s}


def plan(record: UseRecord, images: Iterable[EngineImage], containers: Iterable[EngineContainer],
         budget_bytes: int, now: float, min_idle_s: float = MIN_IDLE_S) -> list[EngineImage]:
    """The images to remove, least recently used first, so that the agent's images fit the
    budget (all the unused ones, if even the used ones do not)."""
    ours = [image for image in images if image.id in record.images]
    total = sum(image.size for image in ours)
    in_use = {container.image_id for container in containers}
    candidates = sorted(
        (image for image in ours
         if image.id not in in_use
         and all(tag in record.references for tag in image.tags)
         and now - record.images[image.id] >= min_idle_s),
        key=lambda image: (record.images[image.id], image.id),
    )
    chosen = []
    for image in candidates:
        if total <= budget_bytes:
            break
        chosen.append(image)
        total -= image.size
    return chosen


class ImageCache:
    """The record, the prunes and their loop, for every slot of one agent process."""

    def __init__(self, docker: AsyncDocker, state_dir: Path, budget_gb: float, interval_s: float,
                 min_idle_s: float = MIN_IDLE_S, clock: Callable[[], float] = time.time) -> None:
        self.docker = docker
        self.path = state_dir / RECORD_FILE
        self.budget_bytes = int(budget_gb * GB)
        self.interval_s = interval_s
        self.min_idle_s = min_idle_s
        self.hwids: set[str] = set()  # the slots': their containers' images count as used
        self._clock = clock
        self._wake = asyncio.Event()
        self.record = UseRecord.load(self.path)

    def touch(self, reference: str) -> None:
        """A task is about to start with this image: it is used now."""
        self.record.touch(reference, self._clock())

    def wake(self) -> None:
        """Prune soon (a task's container is gone)."""
        self._wake.set()

    async def prune(self) -> list[str]:
        """One prune; the ids of the images removed."""
        images, containers = await asyncio.gather(self.docker.images(), self.docker.all_containers())
        now = self._clock()
        observe(self.record, images, containers, self.hwids, now, self.min_idle_s)
        removed = []
        for image in plan(self.record, images, containers, self.budget_bytes, now, self.min_idle_s):
            if await self._remove(image):
                removed.append(image.id)
                self.record.images.pop(image.id, None)
                for name in _names(image):
                    self.record.references.pop(name, None)
        await asyncio.to_thread(self.record.save, self.path)
        if removed:
            log.info("image cache: removed %d unused image(s) to stay within %.1f GB",
                     len(removed), self.budget_bytes / GB)
        return removed

    async def _remove(self, image: EngineImage) -> bool:
        """Untag each of its names (the last removes it), or remove it by id when it has none;
        False when the engine refuses: a container took it meanwhile."""
        for reference in image.tags or (image.id,):
            if not await self.docker.remove_image(reference):
                return False
        return True

    async def run(self) -> None:
        """Prune now, after each wake, and every ``interval_s``, until cancelled."""
        try:
            while True:
                try:
                    await self.prune()
                except (*ENGINE_ERRORS, OSError) as exc:
                    log.warning("image cache prune failed: %s", exc)
                except Exception:  # a prune's trouble never stops the agent serving
                    log.exception("image cache prune failed")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval_s)
                self._wake.clear()
        finally:
            with contextlib.suppress(OSError):
                self.record.save(self.path)
