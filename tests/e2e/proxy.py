"""A TCP proxy on 127.0.0.1 that can cut a link without closing it, as a broken network does."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._cut = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """From now on bytes go nowhere in either direction; no connection is closed."""
        self._cut.set()

    def restore(self) -> None:
        """Forward again. Connections held silent meanwhile are reset, as a rebooted router would."""
        self._cut.clear()
        asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop).result(5)

    def stop(self) -> None:
        async def shutdown():
            self._server.close()
            await self._reset_all()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, client_reader, client_writer) -> None:
        self._writers.add(client_writer)
        if self._cut.is_set():
            return  # accepted and then silence: the peer learns nothing
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self._writers.add(server_writer)
        await asyncio.gather(
            self._pipe(client_reader, server_writer),
            self._pipe(server_reader, client_writer),
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self._cut.is_set():
                    continue  # swallowed
                writer.write(data)
                await writer.drain()
        writer.close()
