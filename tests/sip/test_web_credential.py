"""The web softphone's credential against the full engine: a browser-style client registers
over WebSocket with the short-lived credential the web app issues (never the SIP password), and
the engine refuses it expired, with a far expiry, over UDP, in another tenant's domain, for an
extension whose web softphone is off, and after the SIP password changed."""

import time

import pytest

from telephony.management.commands.sipengine import web_secret
from telephony.sip import contract
from tests.sip.callkit import set_snapshot
from tests.sip.engine_fixtures import SIP_PASSWORD

pytestmark = pytest.mark.django_db


def _credential(engine, domain: str, number: str, *, now: float | None = None, schema=None):
    """What the web app issues: keyed by the tenant's schema and the extension's HA1 as the
    engine's snapshot has them (published by Django from the database)."""
    tenant = engine.call(lambda: engine.pbx.directory.tenant(domain))
    ext = tenant.extensions[number]
    return contract.issue_web_credential(
        web_secret(),
        schema or tenant.schema,
        number,
        ext.ha1_md5,
        now=time.time() if now is None else now,
    )


def _register(engine, cred, *, transport="WS", domain="acme.test", user="101"):
    with engine.client(transport) as client:
        return client.register(
            user, domain, password=cred.password, username=cred.username, algorithm="MD5"
        )


def test_a_web_credential_registers_the_extension_over_websocket(sip_engine):
    cred = _credential(sip_engine, "acme.test", "101")
    assert cred.username != "101"
    assert cred.password != SIP_PASSWORD
    with sip_engine.client("WS") as client:  # open: a browser's binding ends with its socket
        ok = client.register(
            "101", "acme.test", password=cred.password, username=cred.username, algorithm="MD5"
        )
        assert ok.status == 200, ok.status
        bindings = sip_engine.run(sip_engine.pbx.locations.lookup("acme.test", "101"))
    assert [b.transport for b in bindings] == ["WS"]
    # The binding is the extension's (the AOR), not the credential's name.
    assert sip_engine.run(sip_engine.pbx.locations.lookup("acme.test", cred.username)) == []


def test_a_web_credential_is_refused_anywhere_but_websocket(sip_engine):
    cred = _credential(sip_engine, "acme.test", "101")
    refused = _register(sip_engine, cred, transport="UDP")
    assert refused.status == 403
    assert refused.reason == "Web Credential Needs WebSocket"
    assert sip_engine.run(sip_engine.pbx.locations.lookup("acme.test", "101")) == []


def test_an_expired_or_overlong_credential_is_refused(sip_engine):
    expired = _credential(
        sip_engine, "acme.test", "101", now=time.time() - contract.WEB_CREDENTIAL_SECONDS - 5
    )
    assert _register(sip_engine, expired).status == 401
    overlong = _credential(
        sip_engine, "acme.test", "101", now=time.time() + contract.WEB_CREDENTIAL_MAX_SECONDS
    )
    assert _register(sip_engine, overlong).status == 401
    assert sip_engine.run(sip_engine.pbx.locations.lookup("acme.test", "101")) == []


def test_another_tenants_credential_does_not_register_here(sip_engine):
    # A user of beta.test with a credential of its own tenant tries acme's extension 101.
    beta = sip_engine.call(lambda: sip_engine.pbx.directory.tenant("beta.test"))
    foreign = _credential(sip_engine, "acme.test", "101", schema=beta.schema)
    assert _register(sip_engine, foreign).status == 401
    theirs = _credential(sip_engine, "beta.test", "201")
    stolen = contract.WebCredential(
        theirs.username.replace(".201", ".101"), theirs.password, theirs.expires
    )
    assert _register(sip_engine, stolen).status == 401
    # Its own credential in its own domain works.
    assert _register(sip_engine, theirs, domain="beta.test", user="201").status == 200
    assert sip_engine.run(sip_engine.pbx.locations.lookup("acme.test", "101")) == []


def test_web_softphone_off_or_a_new_sip_password_refuses_issued_credentials(sip_engine):
    cred = _credential(sip_engine, "acme.test", "101")

    def softphone_off(snap):
        snap["extensions"]["101"]["web_softphone"] = False

    set_snapshot(sip_engine, "acme.test", softphone_off)
    assert _register(sip_engine, cred).status == 401

    def new_password(snap):
        ext = snap["extensions"]["101"]
        ext["web_softphone"] = True
        ext["ha1_md5"] = contract.ha1("MD5", "101", "acme.test", "Another-Pass-55x")
        ext["ha1_sha256"] = contract.ha1("SHA-256", "101", "acme.test", "Another-Pass-55x")

    set_snapshot(sip_engine, "acme.test", new_password)
    assert _register(sip_engine, cred).status == 401
    fresh = _credential(sip_engine, "acme.test", "101")
    assert _register(sip_engine, fresh).status == 200
