"""A browser's binding lives as long as its WebSocket: a browser accepts no connection, so
once its socket closes nothing can reach it, and the binding goes at once (RFC 5626 4.4)
instead of forking calls to nothing until it expires. A tab that took over the same instance
on a new socket keeps the binding when the old socket closes; other transports are not
touched."""

import pytest

from tests.sip.engine_fixtures import wait_until

pytestmark = pytest.mark.django_db

INSTANCE = '+sip.instance="<urn:uuid:0f3c7f6e-5b1a-4f55-9a49-7d3c1c2b9e11>";reg-id=1'


def _bindings(engine, user="101"):
    return engine.run(engine.pbx.locations.lookup("acme.test", user))


def _register(client, user="101"):
    contact = f"<sip:{user}@df7jal23ls0d.invalid;transport=ws>;{INSTANCE}"
    return client.register(user, "acme.test", contacts=[contact], algorithm="MD5")


def test_a_browsers_binding_goes_with_its_websocket(sip_engine):
    client = sip_engine.client("WS")
    assert _register(client).status == 200
    assert [b.transport for b in _bindings(sip_engine)] == ["WS"]
    client.close()
    wait_until(lambda: _bindings(sip_engine) == [])


def test_a_tab_that_took_over_keeps_the_binding(sip_engine):
    first, second = sip_engine.client("WS"), sip_engine.client("WS")
    assert _register(first).status == 200
    assert _register(second).status == 200  # the same instance: one binding, a new flow
    (binding,) = _bindings(sip_engine)
    assert binding.source_port == second.local[1]
    first.close()
    flows = sip_engine.pbx.engine.transport.flows
    old_flow = ("WS", "127.0.0.1", first.local[1])
    wait_until(lambda: sip_engine.call(lambda: old_flow not in flows))  # its close was handled
    assert [b.source_port for b in _bindings(sip_engine)] == [second.local[1]]
    with sip_engine.client("TCP") as phone:
        assert phone.register("102", "acme.test").status == 200
    second.close()
    wait_until(lambda: _bindings(sip_engine) == [])
    # A desk phone's TCP binding outlives its connection (it reconnects; NAT pings check it).
    assert [b.transport for b in _bindings(sip_engine, "102")] == ["TCP"]
