"""The portal's live WebSocket (``/portal/ws/live/``) through the project's ASGI application:
a portal session only, subscribed to everything at once with a snapshot first, and a subscriber
of one tenant never receives another tenant's events.

The sockets run on an event loop in a thread of their own (as under the ASGI server), so the
consumer's database work uses its own connection and sees committed rows: the sessions are
committed.
"""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from tests.conftest import access_token
from tests.portal.calls_helpers import call, registration
from tests.sockets import committed

A, B = "t_acme", "t_beta"
PATH = "/portal/ws/live/"


@pytest.fixture
def session_for():
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    keys = []

    def make(user) -> bytes:
        def create():
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "tenants.auth.HostScopedBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            return session.session_key

        key = committed(create)
        keys.append(key)
        return f"sessionid={key}".encode()

    yield make
    committed(lambda: Session.objects.filter(session_key__in=keys).delete())


def _socket(host: str, cookie: bytes | None = None, path: str = PATH):
    from pbx.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


async def _open(comm) -> dict:
    """Connect and read the opening frames; returns the snapshot's data."""
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from())["type"] == "welcome"
    subscribed = await comm.receive_json_from()
    assert subscribed == {"type": "subscribed", "topics": ["calls", "extension.status", "queues"]}
    snapshot = await comm.receive_json_from()
    assert snapshot["type"] == "snapshot"
    return snapshot["data"]


async def _refused(comm) -> tuple[str, int]:
    connected, _ = await comm.connect()
    assert connected  # accepted, told why, closed
    error = await comm.receive_json_from()
    closing = await comm.receive_output(timeout=2)
    assert closing["type"] == "websocket.close"
    return error["code"], closing["code"]


def test_each_tenants_portal_gets_its_own_events_only(world, live, session_for, ws):
    """User story: the admins of two companies have their extension lists open. Each sees its
    own phones come online and its own calls, never the other company's."""
    live.add("registration", **registration(A, "102"))
    live.drain()
    acme = _socket("acme.test", session_for(world.a_admin))
    beta = _socket("beta.test", session_for(world.b_admin))
    snap_a = ws.run(_open(acme))
    snap_b = ws.run(_open(beta))
    # The snapshot is the live state right now, of the own tenant only.
    assert snap_a["extensions"]["102"]["online"] is True
    assert set(snap_a["extensions"]) == {"101", "102"}
    assert set(snap_b["extensions"]) == {"201", "202"}

    live.add("registration", **registration(B, "201", domain="beta.test"))
    live.add("call.started", **call(B, "b-1", "201", "202"))
    live.add("registration", **registration(A, "101"))
    live.add("call.started", **call(A, "a-1", "101", "102"))
    live.drain()

    async def events(comm, n):
        return [(await comm.receive_json_from(timeout=3))["event"] for _ in range(n)]

    got_a = ws.run(events(acme, 3))
    got_b = ws.run(events(beta, 3))
    assert {e["tenant"] for e in got_a} == {"acme"}
    assert {e["tenant"] for e in got_b} == {"beta"}
    assert [(e["type"], e["data"].get("extension") or e["data"].get("call_id")) for e in got_a] == [
        ("extension.status", "101"),
        ("call.started", "a-1"),
        ("extension.status", "101"),
    ]
    assert got_a[0]["data"]["online"] is True
    assert got_a[2]["data"]["call_status"] == "on_call"
    assert ("call.started", "b-1") in [(e["type"], e["data"].get("call_id")) for e in got_b]
    # Nothing else arrives on either side.
    assert ws.run(acme.receive_nothing(timeout=0.3))
    assert ws.run(beta.receive_nothing(timeout=0.3))
    ws.run(acme.disconnect())
    ws.run(beta.disconnect())


def test_portal_socket_takes_a_session_only(world, live, session_for, ws):
    token = access_token(world.a_admin)

    async def scenario():
        # A bearer token works on the API's socket, not on the portal's.
        comm = _socket("acme.test", path=f"{PATH}?token={token}")
        assert await _refused(comm) == ("NOT_AUTHENTICATED", 4401)
        await comm.disconnect()
        comm = _socket("acme.test")
        assert await _refused(comm) == ("NOT_AUTHENTICATED", 4401)
        await comm.disconnect()

    ws.run(scenario())
    # A plain user has no extensions.view: refused.
    comm = _socket("acme.test", session_for(world.a_user))
    assert ws.run(_refused(comm)) == ("PERMISSION_DENIED", 4403)
    ws.run(comm.disconnect())
    # Acme's admin session on Beta's host is nobody there.
    comm = _socket("beta.test", session_for(world.a_admin))
    assert ws.run(_refused(comm))[1] == 4401
    ws.run(comm.disconnect())
