"""HTTP for the ASGI server: each request runs Django's synchronous stack in one worker thread.

Django's own ``ASGIHandler`` runs our (synchronous) middleware and views by hopping between the
event loop and threads several times per request: the middleware chain is adapted to sync, an
async-capable middleware inside it (allauth's) is adapted back to async, and the view again to
sync, each hop with its executor, context copy and wake-ups; a per-request
``ThreadSensitiveContext`` even starts a fresh thread. Profiled under load (py-spy, a uvicorn
worker serving the extension list), that machinery was a large share of the request's CPU.

Here the event loop only reads the body and writes the answer; everything between (request
signals, the whole middleware chain loaded in sync mode, the view, closing the response) runs
in one call on a thread of a pool (``PBX_WEB_THREADS`` per process), as under a threaded WSGI
server. Streaming answers (static files, downloads) are iterated on that thread and each chunk
handed to the loop. WebSockets stay with Channels (``pbx/asgi.py``).

``PBX_ASGI_HTTP=django`` switches back to Django's handler (for comparison; see bench/).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix


class ThreadedHTTPHandler(ASGIHandler):
    """An ASGI application for ``http`` scopes that runs Django synchronously in a thread."""

    def __init__(self, threads: int | None = None) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(
            max_workers=threads or int(os.environ.get("PBX_WEB_THREADS") or 8),
            thread_name_prefix="http",
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"this handler serves HTTP, not {scope['type']}")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self.executor, self._respond, scope, body_file, send, loop
            )
        finally:
            body_file.close()
        if answer is not None:
            start, body = answer
            await send(start)
            await send({"type": "http.response.body", "body": body})

    def _respond(self, scope, body_file, send, loop):
        """On a pool thread: the whole Django request. Returns the answer to send, or None
        when it was streamed from here."""
        set_script_prefix(self.get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
        try:
            start = {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": self._headers(response),
            }
            if not response.streaming:
                return start, response.content
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size

            def push(message):
                asyncio.run_coroutine_threadsafe(send(message), loop).result()

            push(start)
            for part in response.streaming_content:
                if isinstance(part, str):
                    part = part.encode(response.charset)
                for chunk, _ in self.chunk_bytes(part):
                    push({"type": "http.response.body", "body": chunk, "more_body": True})
            push({"type": "http.response.body", "body": b""})
            return None
        finally:
            response.close()  # request_finished: the database connection goes back to the pool

    @staticmethod
    def get_script_prefix(scope) -> str:
        from django.core.handlers.asgi import get_script_prefix

        return get_script_prefix(scope)

    @staticmethod
    def _headers(response) -> list[tuple[bytes, bytes]]:
        headers = []
        for header, value in response.items():
            if isinstance(header, str):
                header = header.encode("ascii")
            if isinstance(value, str):
                value = value.encode("latin1")
            headers.append((bytes(header), bytes(value)))
        for c in response.cookies.values():
            headers.append((b"Set-Cookie", c.output(header="").encode("ascii").strip()))
        return headers


def http_application():
    """The Django HTTP application the ASGI router uses (see the module docstring)."""
    import django

    django.setup(set_prefix=False)
    if os.environ.get("PBX_ASGI_HTTP", "") == "django":
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    return ThreadedHTTPHandler()
