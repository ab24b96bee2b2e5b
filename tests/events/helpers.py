"""Helpers shared by the events tests: the engine's entry format, polling, a webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def registration(schema: str, user: str, action: str = "registered", **kw) -> dict:
    port = kw.pop("port", 5062)
    return {
        "schema": schema,
        "domain": kw.pop("domain", "acme.test"),
        "user": user,
        "contact": kw.pop("contact", f"sip:{user}@203.0.113.5:{port};transport=udp"),
        "source": kw.pop("source", f"udp:203.0.113.5:{port}"),
        "user_agent": kw.pop("user_agent", "Yealink SIP-T46U 108.86.0.20"),
        "expires": kw.pop("expires", 3600 if action in ("registered", "refreshed") else 0),
        "action": action,
        **kw,
    }


def call(schema: str, call_id: str, caller: str, callee: str, legs=None, **kw) -> dict:
    """A call event as the B2BUA writes it: ``legs`` are the extensions with a leg now (the
    caller alone until someone answers)."""
    users = legs if legs is not None else [caller]
    return {
        "schema": schema,
        "call_id": call_id,
        "tenant_id": "1",
        "segment": kw.pop("segment", 1),
        "legs": json.dumps(
            [
                {"leg": "a" if i == 0 else f"b{i}", "user": u, "sip_call_id": f"{call_id}-{i}"}
                for i, u in enumerate(users)
            ]
        ),
        **kw,
        **({"caller": caller, "direction": "internal"} if caller else {}),
        **({"callee": callee} if callee else {}),
    }


def wait_until(condition: Callable[[], object], timeout: float = 10.0, step: float = 0.01):
    """Poll ``condition`` until it returns something true (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on loopback: down (nothing listens), failing (500), or up (200).

    It verifies every request's signature with the endpoint's secret, as a real receiver must,
    and records what it accepted.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/pbx"
        self.secret = ""
        self.mode = "down"
        self.requests: list[dict] = []  # every request that reached us
        self.accepted: list[dict] = []  # bodies we answered 200 to
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                from events.webhooks import SIGNATURE_HEADER, verify_signature

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = verify_signature(
                    receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body
                )
                record = {
                    "body": json.loads(body),
                    "signed": signed,
                    "headers": dict(self.headers),
                    "at": time.monotonic(),
                }
                with receiver._lock:
                    receiver.requests.append(record)
                if not signed:
                    code = 400
                elif receiver.mode == "fail":
                    code = 500
                else:
                    code = 200
                    with receiver._lock:
                        receiver.accepted.append(record)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"receiver error")

            def log_message(self, *args):
                pass

        return Handler

    def start(self, mode: str = "up") -> None:
        self.mode = mode
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
