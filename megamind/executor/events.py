"""What the engine says about our containers, read once and handed to each agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from megamind.executor.runtime import DockerRuntime
from megamind.executor.spec import LABEL_HWID, LABEL_MANAGED

if TYPE_CHECKING:
    from megamind.executor.agent import Agent

log = logging.getLogger(__name__)


class EngineEvents:
    """One engine event stream for every slot's containers, handed to each slot's agent.

    The stream is filtered by the managed label and dispatched by the hwid label, so
    N slots cost one thread and one engine connection instead of N.  When the stream
    breaks (the engine restarted), every agent is told to resync once it is back.
    """

    def __init__(self, runtime: DockerRuntime, loop: asyncio.AbstractEventLoop) -> None:
        self._runtime = runtime
        self._loop = loop
        self._agents: dict[str, Agent] = {}
        self._stop = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._watch, name="docker-events", daemon=True)

    def attach(self, agent: Agent) -> None:
        self._agents[agent.hwid] = agent

    def detach(self, agent: Agent) -> None:
        if self._agents.get(agent.hwid) is agent:
            del self._agents[agent.hwid]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            if self._stream is not None:
                self._stream.close()

    def _watch(self) -> None:
        """Thread: read the stream; on a loss, every slot resyncs once the engine is back."""
        lost = False
        while not self._stop.is_set():
            try:
                self._stream = self._runtime.api.events(
                    decode=True, filters={"type": "container", "label": f"{LABEL_MANAGED}=1"}
                )
                if lost:
                    self._post(None, None)
                    lost = False
                for event in self._stream:
                    if self._stop.is_set():
                        return
                    hwid = (event.get("Actor", {}).get("Attributes") or {}).get(LABEL_HWID)
                    if hwid:
                        self._post(hwid, event)
            except Exception as exc:  # the engine restarted or the socket broke
                if self._stop.is_set():
                    return
                log.info("docker event stream lost (%s)", exc.__class__.__name__)
            lost = True
            self._stop.wait(1.0)

    def _post(self, hwid: str | None, event: dict[str, Any] | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._dispatch, hwid, event)
        except RuntimeError:  # the loop is closed: the agent is stopping
            self._stop.set()

    def _dispatch(self, hwid: str | None, event: dict[str, Any] | None) -> None:
        if hwid is None:
            for agent in list(self._agents.values()):
                agent.feed_event(None)
            return
        agent = self._agents.get(hwid)
        if agent is not None:
            agent.feed_event(event)
