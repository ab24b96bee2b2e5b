"""Pub/sub over a real WebSocket (the project's ASGI application): authentication on the
tenant's host, subscriptions, error frames, heartbeats, and tenant isolation.

The sockets live on an event loop in a thread of their own, as under the ASGI server: the consumer's
database work then runs on its own connection and sees committed rows (the shared world), not
the test's open transaction, and Channels' connection housekeeping cannot close the test's
connection. The fan-out runs in the test's thread, inside its transaction.
"""

from __future__ import annotations

import json
from datetime import timedelta

from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import access_token
from tests.events.helpers import call, registration
from tests.sockets import committed

A, B = "t_acme", "t_beta"
PATH = "/api/v1/ws/events/"


def _app():
    from pbx.asgi import application

    return application


def _token(user, lifetime: timedelta | None = None) -> str:
    token = AccessToken(access_token(user))
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def _socket(host: str, path: str = PATH, *, headers=(), subprotocols=None):
    return WebsocketCommunicator(
        _app(),
        path,
        headers=[(b"host", host.encode()), *headers],
        subprotocols=subprotocols,
    )


async def _refused(comm) -> tuple[dict, int]:
    connected, _ = await comm.connect()
    assert connected  # accepted so that the reason can be told, then closed
    error = await comm.receive_json_from()
    closing = await comm.receive_output(timeout=2)
    assert closing["type"] == "websocket.close"
    return error, closing["code"]


def test_refusals_have_clear_codes(world, clean_live, ws):
    """A caller without credentials, with a bad token, with another tenant's token, without
    permission, or on an unknown host is told why and closed with a distinct code."""

    async def scenario():
        cases = [
            (_socket("acme.test"), 4401, "NOT_AUTHENTICATED"),
            (_socket("acme.test", f"{PATH}?token=not-a-jwt"), 4401, "AUTHENTICATION_FAILED"),
            (
                _socket("acme.test", f"{PATH}?token={_token(world.b_admin)}"),
                4401,
                "AUTHENTICATION_FAILED",
            ),
            (
                _socket("acme.test", f"{PATH}?token={_token(world.a_user)}"),
                4403,
                "PERMISSION_DENIED",
            ),
            (
                _socket("nowhere.test", f"{PATH}?token={_token(world.a_admin)}"),
                4404,
                "NOT_FOUND",
            ),
            (
                _socket("localhost", f"{PATH}?token={_token(world.sysadmin)}"),
                4404,
                "NOT_FOUND",
            ),
        ]
        for comm, code, error_code in cases:
            error, closed_with = await _refused(comm)
            assert (closed_with, error["type"], error["code"]) == (code, "error", error_code)
            assert error["message"]
            await comm.disconnect()

    ws.run(scenario())


def test_socket_applies_the_rest_token_rules(world, clean_live, ws):
    """A token signed out over REST is refused on the socket at once (revocation is global, not
    per schema), and a provider-side admin's token does not open a tenant's socket."""
    from django.db import connection
    from rest_framework.test import APIClient

    from tests.conftest import PASSWORD

    def sign_in(host, email):
        r = APIClient(HTTP_HOST=host).post(
            "/api/v1/auth/signin/", {"email": email, "password": PASSWORD}, format="json"
        )
        connection.set_schema_to_public()
        assert r.status_code == 200, r.content
        return r.json()["access"]

    signed_out = sign_in("acme.test", "admin@acme.test")
    client = APIClient(HTTP_HOST="acme.test")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_out}")
    assert client.post("/api/v1/auth/signout/").status_code == 204
    connection.set_schema_to_public()
    live = sign_in("acme.test", "admin@acme.test")
    sysadmin = sign_in("localhost", "root@provider.test")
    dealer = sign_in("localhost", "north@dealers.test")

    async def scenario():
        for token in (signed_out, sysadmin, dealer):
            comm = _socket("acme.test", f"{PATH}?token={token}")
            error, closed_with = await _refused(comm)
            assert (closed_with, error["code"]) == (4401, "AUTHENTICATION_FAILED")
            await comm.disconnect()
        comm = _socket("acme.test", subprotocols=["bearer", live])
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["type"] == "welcome"
        await comm.disconnect()

    ws.run(scenario())


def test_token_by_subprotocol_subscribe_unsubscribe_and_bad_frames(
    world, clean_live, snapshots, ws
):
    async def scenario():
        comm = _socket("acme.test", subprotocols=["bearer", _token(world.a_admin)])
        connected, subprotocol = await comm.connect()
        assert connected
        assert subprotocol == "bearer"  # never the token itself
        welcome = await comm.receive_json_from()
        assert welcome["type"] == "welcome"
        assert welcome["tenant"] == "acme"
        assert welcome["topics"] == ["calls", "extension.status", "queues"]

        for frame, code in [
            ("not json", "PARSE_ERROR"),
            ("[1, 2]", "PARSE_ERROR"),
            (json.dumps({"action": "teleport"}), "VALIDATION_ERROR"),
            (json.dumps({"action": "subscribe", "topics": ["everything"]}), "VALIDATION_ERROR"),
            (json.dumps({"action": "subscribe", "topics": "calls"}), "VALIDATION_ERROR"),
            ("x" * 5000, "PARSE_ERROR"),
            ("[" * 4000, "PARSE_ERROR"),  # was a RecursionError that killed the socket
        ]:
            await comm.send_to(text_data=frame)
            error = await comm.receive_json_from()
            assert (error["type"], error["code"]) == ("error", code), frame
        await comm.send_to(bytes_data=b"\x00\x01")
        assert (await comm.receive_json_from())["code"] == "PARSE_ERROR"

        # Still open and answering after all that.
        await comm.send_json_to({"action": "ping"})
        assert (await comm.receive_json_from())["type"] == "pong"

        await comm.send_json_to({"action": "subscribe", "topics": ["extension.status", "calls"]})
        assert await comm.receive_json_from() == {
            "type": "subscribed",
            "topics": ["calls", "extension.status"],
        }
        snapshot = await comm.receive_json_from()
        assert snapshot["type"] == "snapshot"
        assert set(snapshot["data"]["extensions"]) == {"101", "102"}
        assert snapshot["data"]["extensions"]["101"]["online"] is False
        await comm.send_json_to({"action": "unsubscribe", "topics": ["calls"]})
        assert await comm.receive_json_from() == {
            "type": "unsubscribed",
            "topics": ["extension.status"],
        }
        await comm.disconnect()

    ws.run(scenario())


def test_each_subscriber_gets_its_own_tenants_events_only(world, fanout, xadd, clean_live, ws):
    """User story: two companies' CRMs are subscribed at once. Each receives its own calls and
    extension status, never the other company's, and only the topics it asked for."""

    async def connect(host, user, topics):
        comm = _socket(host, f"{PATH}?token={_token(user)}")
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["type"] == "welcome"
        await comm.send_json_to({"action": "subscribe", "topics": topics})
        assert (await comm.receive_json_from())["type"] == "subscribed"
        if "extension.status" in topics:
            assert (await comm.receive_json_from())["type"] == "snapshot"
        return comm

    acme = ws.run(connect("acme.test", world.a_admin, ["calls", "extension.status"]))
    beta = ws.run(connect("beta.test", world.b_admin, ["calls"]))
    xadd("registration", **registration(A, "101"))
    xadd("call.started", **call(A, "a-1", "101", "102"))
    xadd("registration", **registration(B, "201", domain="beta.test"))
    xadd("call.started", **call(B, "b-1", "201", "202"))
    xadd("call.ended", **call(B, "b-1", "", "", status="cancelled"))
    fanout.drain()

    async def receive(comm, n):
        return [(await comm.receive_json_from(timeout=3))["event"] for _ in range(n)]

    got_acme = ws.run(receive(acme, 3))
    got_beta = ws.run(receive(beta, 2))
    assert [(e["type"], e["tenant"]) for e in got_acme] == [
        ("extension.status", "acme"),
        ("call.started", "acme"),
        ("extension.status", "acme"),
    ]
    assert got_acme[1]["data"]["call_id"] == "a-1"
    # Beta asked for calls only: no extension.status, and nothing of Acme's.
    assert [(e["type"], e["data"]["call_id"], e["tenant"]) for e in got_beta] == [
        ("call.started", "b-1", "beta"),
        ("call.ended", "b-1", "beta"),
    ]
    assert ws.run(acme.receive_nothing(timeout=0.3))
    assert ws.run(beta.receive_nothing(timeout=0.3))
    ws.run(acme.disconnect())
    ws.run(beta.disconnect())


def _session_for(user) -> str:
    """A signed-in portal session, as the sign-in view leaves it (committed)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    def make():
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "tenants.auth.HostScopedBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return session.session_key

    return committed(make)


def test_portal_session_on_its_own_host_and_origin(world, clean_live, ws):
    from django.contrib.sessions.models import Session

    key = _session_for(world.a_admin)
    cookie = f"sessionid={key}".encode()

    async def scenario():
        comm = _socket(
            "acme.test", headers=[(b"cookie", cookie), (b"origin", b"https://acme.test")]
        )
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["type"] == "welcome"
        await comm.disconnect()

        evil = _socket(
            "acme.test", headers=[(b"cookie", cookie), (b"origin", b"https://evil.example")]
        )
        error, code = await _refused(evil)
        assert (code, error["code"]) == (4403, "PERMISSION_DENIED")
        await evil.disconnect()

        # The same session presented on another tenant's host is nobody there.
        other = _socket("beta.test", headers=[(b"cookie", cookie)])
        error, code = await _refused(other)
        assert code == 4401
        await other.disconnect()

    try:
        ws.run(scenario())
    finally:
        committed(lambda: Session.objects.filter(session_key=key).delete())


def test_heartbeat_and_token_expiry(world, clean_live, settings, ws):
    settings.PBX_WS_HEARTBEAT_SECONDS = 0.05

    async def scenario():
        comm = _socket("acme.test", f"{PATH}?token={_token(world.a_admin)}")
        await comm.connect()
        assert (await comm.receive_json_from())["heartbeat"] == 0.05
        assert (await comm.receive_json_from(timeout=2))["type"] == "heartbeat"
        await comm.disconnect()

        settings.PBX_WS_HEARTBEAT_SECONDS = 30
        short = _token(world.a_admin, lifetime=timedelta(seconds=2))  # margin for a busy machine
        comm = _socket("acme.test", f"{PATH}?token={short}")
        await comm.connect()
        assert (await comm.receive_json_from())["type"] == "welcome"
        error = await comm.receive_json_from(timeout=6)
        assert (error["type"], error["message"]) == ("error", "The token expired.")
        closing = await comm.receive_output(timeout=2)
        assert closing == {"type": "websocket.close", "code": 4401}

    ws.run(scenario())


def test_sign_out_closes_an_open_socket(world, clean_live, settings, ws):
    """A socket opened with a token ends at the next heartbeat after its sign-in is signed out."""
    from django.db import connection
    from rest_framework.test import APIClient

    from tests.conftest import PASSWORD

    settings.PBX_WS_HEARTBEAT_SECONDS = 0.05
    client = APIClient(HTTP_HOST="acme.test")
    r = client.post(
        "/api/v1/auth/signin/", {"email": "admin@acme.test", "password": PASSWORD}, format="json"
    )
    connection.set_schema_to_public()
    access = r.json()["access"]
    comm = _socket("acme.test", f"{PATH}?token={access}")

    async def open_():
        assert (await comm.connect())[0]
        assert (await comm.receive_json_from())["type"] == "welcome"
        assert (await comm.receive_json_from(timeout=2))["type"] == "heartbeat"

    async def until_closed():
        last = None
        while True:
            frame = await comm.receive_output(timeout=2)
            if frame["type"] == "websocket.close":
                return last, frame["code"]
            last = json.loads(frame["text"])

    ws.run(open_())
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.post("/api/v1/auth/signout/").status_code == 204
    connection.set_schema_to_public()
    error, code = ws.run(until_closed())
    assert (code, error["type"], error["message"]) == (4401, "error", "The token was revoked.")


def test_suspended_tenant_is_refused(world, clean_live, ws):
    from tenants.models import Tenant

    def set_status(status):
        return lambda: Tenant.objects.filter(pk=world.tenant_a.pk).update(status=status)

    committed(set_status("suspended"))
    try:
        error, code = ws.run(
            _refused(_socket("acme.test", f"{PATH}?token={_token(world.a_admin)}"))
        )
    finally:
        committed(set_status("active"))
    assert (code, error["code"]) == (4403, "TENANT_SUSPENDED")
