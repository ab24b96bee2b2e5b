"""Helpers for tests that drive WebSockets through the project's ASGI application.

The sockets run on an event loop in a thread of their own (as under the ASGI server), so the
consumers' database work uses its own connection and sees only committed rows;
:func:`committed` writes such rows from a connection of its own.
"""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import connections


class LoopThread:
    """An asyncio loop in a daemon thread; ``run(coro)`` waits for a result from it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 20.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        # The consumer's database thread keeps a connection: close it, or the test database
        # cannot be dropped at the end of the run.
        self.run(sync_to_async(connections.close_all)())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def committed(fn):
    """Run ``fn`` on a connection of its own (autocommit): state the socket's side can see."""

    def call():
        try:
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()
