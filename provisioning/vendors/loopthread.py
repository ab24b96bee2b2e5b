"""Run an asyncio server (``start()``, ``close()``, ``address``) on its own loop in a thread.

Management commands and tests use it to run the TFTP server and the PnP responder beside
synchronous code.
"""

import asyncio
import threading
from typing import Protocol


class LoopServer(Protocol):
    @property
    def address(self) -> tuple[str, int]: ...

    async def start(self) -> object: ...

    async def close(self) -> None: ...


class ServerThread:
    """A daemon thread owning an event loop that runs ``server`` until :meth:`stop`."""

    def __init__(self, server: LoopServer, name: str) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self.server.address

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.close())
        self._loop.close()

    def start(self) -> tuple[str, int]:
        """Start the thread; raises what binding raised (e.g. ``PermissionError`` on port 69)."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread to end."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
