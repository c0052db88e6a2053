"""TCP proxies the fault suite can cut or blackhole, on an event loop of their own.

They run in a background thread, not on the test's loop: a test that blocks its own loop for a
moment (a subprocess, a slow assertion) must not stall every byte between the services and
PostgreSQL, which would be a fault nobody asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from enum import StrEnum
from typing import Any, TypeVar

from tests.support.tcp_proxy import bound_port

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop in a daemon thread; `run` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self.submit(coroutine))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class ProxyState(StrEnum):
    OPEN = "open"
    CUT = "cut"  # not listening; every connection dropped (a crashed host, a refused port)
    BLACKHOLE = "blackhole"  # accepts and holds connections, forwards nothing (a dead route)


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a target. All methods are coroutines of `loop`."""

    def __init__(self, loop: BackgroundLoop, target_host: str, target_port: int) -> None:
        self.loop = loop
        self.target = (target_host, target_port)
        self.port = 0  # bound at start(); cut and restored on the same port
        self.state = ProxyState.OPEN
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()

    # The public API: called from the test's loop, executed on the proxy's.

    async def start(self) -> FaultProxy:
        await self.loop.run(self._listen())
        return self

    async def cut(self) -> None:
        await self.loop.run(self._cut())

    async def blackhole(self) -> None:
        await self.loop.run(self._blackhole())

    async def restore(self) -> None:
        await self.loop.run(self._restore())

    async def close(self) -> None:
        await self.loop.run(self._cut())

    # On the proxy's loop.

    async def _listen(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = bound_port(self._server)
        self.state = ProxyState.OPEN

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._flowing.set()  # release held pipes: they find their connections aborted
        self.state = ProxyState.CUT

    async def _blackhole(self) -> None:
        # Listening goes on, so new connections are accepted and then starve too.
        if self._server is None:
            await self._listen()
        self._flowing.clear()
        self.state = ProxyState.BLACKHOLE

    async def _restore(self) -> None:
        if self.state is ProxyState.BLACKHOLE:
            # What was held is not replayed into connections the peers have likely given up
            # on: drop them, as a route coming back after a long silence would.
            await self._cut()
        if self._server is None:
            await self._listen()
        self._flowing.set()
        self.state = ProxyState.OPEN

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self._writers.add(client)
        await self._flowing.wait()
        if self.state is not ProxyState.OPEN:
            client.transport.abort()
            self._writers.discard(client)
            return
        try:
            server_reader, server = await asyncio.open_connection(*self.target)
        except OSError:
            client.transport.abort()
            self._writers.discard(client)
            return
        self._writers.add(server)
        await asyncio.gather(self._pipe(client_reader, server), self._pipe(server_reader, client))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if not self._flowing.is_set():
                    await self._flowing.wait()  # blackholed: hold the bytes, send nothing
                    if self.state is not ProxyState.OPEN:
                        break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
