"""The web server's HTTP path: Django's synchronous stack run in one pool thread per request.

User story: an API client and a browser talk to the multi-worker web server; answers are the
same as Django's own ASGI handler gives (status, headers, cookies, body), static files stream,
and every request hands its database connection back.
"""

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

pytestmark = pytest.mark.django_db


def _get(app, path, host="localhost"):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def run():
        comm = ApplicationCommunicator(app, scope)
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await comm.receive_output(10)
        body = b""
        while True:
            message = await comm.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await comm.wait(10)
        return start, body

    return asyncio.run(run())


def test_answers_like_django_and_streams_static_files(world):
    from pbx.asgi import application

    start, body = _get(application, "/healthz")
    assert start["status"] == 200
    assert body == b'{"status": "ok"}'
    start, body = _get(application, "/no/such/page/")
    assert start["status"] == 404
    assert b"Page not found" in body
    start, body = _get(application, "/healthz", host="unknown.invalid")
    assert start["status"] == 400
    start, body = _get(application, "/static/portal/portal.css")
    assert start["status"] == 200
    assert b"--accent" in body
    # The sign-in page sets its CSRF cookie through the same path.
    start, body = _get(application, "/accounts/login/")
    assert start["status"] == 200
    assert any(name == b"Set-Cookie" and b"csrftoken" in value for name, value in start["headers"])


def test_runs_on_pool_threads_and_returns_connections(world):
    from pbx.asgi_http import ThreadedHTTPHandler

    app = ThreadedHTTPHandler(threads=2)
    for _ in range(6):
        start, _ = _get(app, "/healthz")
        assert start["status"] == 200

    def connection_state():
        from django.db import connection

        return connection.connection is None

    # request_finished closed each thread's connection (back to the pool).
    assert all(app.executor.submit(connection_state).result() for _ in range(4))
    app.executor.shutdown()
