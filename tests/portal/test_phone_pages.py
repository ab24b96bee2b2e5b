"""The phone pages as an administrator expects them: vendor and model names (not ids) on the
list and the add form; per extension, the SIP credentials a softphone needs — domain, server,
port and transport from the engine's settings, user and authentication name, the password only
on an audited request by someone who manages extensions, and a QR code of the account; and a
phone that never registered is not "asked" to do anything."""

from __future__ import annotations

import re

import pytest
import segno

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from tenants.choices import Permission, Role

SIP_PASSWORD = "Sip-Secret-Pass-77"


def _ext(in_tenant, tenant, number):
    from telephony.models import Extension

    with in_tenant(tenant):
        return Extension.objects.get(number=number)


def test_phone_list_and_add_form_show_vendor_and_model_names(portal, world, in_tenant):
    from provisioning.actions import do_add_device

    with in_tenant(world.tenant_a):
        do_add_device(
            mac="001565a1b2c3", model_id="yealink-t54w", label="Desk", lines=[], actor=SYSTEM
        )
        do_add_device(mac="0004f2000001", model_id="auto", label="Spare", lines=[], actor=SYSTEM)
    p = portal(world.a_admin, world.tenant_a)
    html = p.get("/portal/phones/").content.decode()
    row = re.search(r'<tr data-testid="phone-001565a1b2c3">.*?</tr>', html, re.S).group(0)
    assert '<td data-testid="vendor">Yealink</td>' in row
    assert '<td data-testid="model">Yealink T54W</td>' in row
    assert "yealink-t54w" not in row
    spare = re.search(r'<tr data-testid="phone-0004f2000001">.*?</tr>', html, re.S).group(0)
    assert "Not yet recognised" in spare
    form = p.get("/portal/phones/add/").content.decode()
    assert '<optgroup label="Yealink">' in form
    assert '<option value="yealink-t54w">Yealink T54W</option>' in form
    assert '<option value="auto">Recognise automatically</option>' in form


def test_credentials_page_shows_server_port_transport_and_a_qr_code(
    portal, world, in_tenant, settings
):
    settings.PBX_SIP_PUBLIC_HOST = "sip.provider.example"
    settings.SIP_UDP_PORT = 5070
    settings.SIP_TLS_PORT = 5071
    settings.SIP_WS_PORT = 0  # off: not offered
    ext = _ext(in_tenant, world.tenant_a, "101")
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/extensions/{ext.pk}/credentials/").content.decode()
    assert '<code id="cred-domain" data-testid="cred-domain">acme.test</code>' in html
    assert '<code id="cred-server" data-testid="cred-server">sip.provider.example</code>' in html
    assert '<code id="cred-port" data-testid="cred-port">5070</code>' in html
    assert '<span data-testid="cred-transport">UDP</span>' in html
    assert '<code id="cred-user" data-testid="cred-user">101</code>' in html
    transports = re.search(r'data-testid="transports">.*?</table>', html, re.S).group(0)
    assert "<td>TCP</td><td>5070</td>" in transports
    assert "<td>TLS</td><td>5071</td>" in transports
    assert "Secure WebSocket" in transports
    assert "<td>WebSocket</td>" not in transports
    assert SIP_PASSWORD not in html  # not until asked
    # The QR code is segno's drawing of the account's SIP URI, drawn here (no outside service).
    expected = "sip:101@acme.test:5070;transport=udp;maddr=sip.provider.example"
    assert f'data-testid="qr-text">{expected}<' in html
    drawn = segno.make(expected, error="m").svg_inline(
        scale=5, svgclass="qr", lineclass=None, title="QR code of this SIP account"
    )
    assert drawn in html
    assert "<img" not in re.search(r'data-testid="qr">.*?</figure>', html, re.S).group(0)
    # Another transport: its port, and the QR follows.
    tls = p.get(f"/portal/extensions/{ext.pk}/credentials/?transport=tls").content.decode()
    assert '<code id="cred-port" data-testid="cred-port">5071</code>' in tls
    assert "sip:101@acme.test:5071;transport=tls;maddr=sip.provider.example" in tls


def test_password_reveal_is_for_managers_and_audited(portal, world, in_tenant, settings):
    from tenants import actions

    settings.PBX_SIP_PUBLIC_HOST = "sip.provider.example"
    settings.SIP_UDP_PORT = 5060
    ext = _ext(in_tenant, world.tenant_a, "102")
    url = f"/portal/extensions/{ext.pk}/credentials/"
    p = portal(world.a_admin, world.tenant_a)
    assert 'data-testid="reveal"' in p.get(url).content.decode()
    revealed = p.post(url, {"reveal": "yes"})
    assert revealed.status_code == 200
    assert revealed["Cache-Control"] == "no-store"
    html = revealed.content.decode()
    assert f'data-testid="cred-password">{SIP_PASSWORD}<' in html
    with_password = (
        f"sip:102:{SIP_PASSWORD}@acme.test:5060;transport=udp;maddr=sip.provider.example"
    )
    drawn = segno.make(with_password, error="m").svg_inline(
        scale=5, svgclass="qr", lineclass=None, title="QR code of this SIP account"
    )
    assert drawn in html
    entry = AuditEntry.objects.get(action="extension.reveal_sip_password", object_id=str(ext.pk))
    assert entry.actor_id == world.a_admin.pk
    assert entry.tenant_id == world.tenant_a.pk
    assert SIP_PASSWORD not in str(entry.changes)

    # Someone who may view extensions but not manage them sees the page, not the password.
    role = actions.do_create_role(
        world.tenant_a, name="Viewer", permissions=[Permission.EXTENSIONS_VIEW], actor=SYSTEM
    )
    viewer = actions.do_create_user(
        email="viewer@acme.test",
        password="Correct-Horse-42x",
        role=Role.TENANT_USER,
        tenant=world.tenant_a,
        custom_role=role,
        actor=SYSTEM,
    )
    v = portal(viewer, world.tenant_a)
    page = v.get(url).content.decode()
    assert 'data-testid="reveal"' not in page
    assert SIP_PASSWORD not in page
    assert v.post(url, {"reveal": "yes"}).status_code == 404
    assert AuditEntry.objects.filter(action="extension.reveal_sip_password").count() == 1


def test_credentials_page_is_scoped_to_the_hosts_tenant(portal, world, in_tenant):
    ext = _ext(in_tenant, world.tenant_a, "101")
    url = f"/portal/extensions/{ext.pk}/credentials/"
    assert portal(world.a_user, world.tenant_a).get(url).status_code == 404
    assert portal(world.sysadmin).get(url).status_code == 404
    r = portal(world.b_admin, world.tenant_a).get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")
    # On Beta's host the id means Beta's row, if any: never Acme's extension 101.
    r = portal(world.b_admin, world.tenant_b).get(url)
    assert r.status_code == 404 or "acme.test" not in r.content.decode()


@pytest.mark.parametrize(
    ("what", "verb"), [("reprovision", "fetch its configuration"), ("reboot", "reboot")]
)
def test_a_phone_that_never_registered_is_not_pretended_to(portal, world, in_tenant, what, verb):
    from provisioning.actions import do_add_device
    from provisioning.models import Device

    with in_tenant(world.tenant_a):
        device = do_add_device(
            mac="001565a1b2c4",
            model_id="yealink-t54w",
            label="",
            lines=[{"index": 1, "extension": "101"}],
            actor=SYSTEM,
        )
    p = portal(world.a_admin, world.tenant_a)
    r = p.post(f"/portal/phones/{device.pk}/{what}/", follow=True)
    html = r.content.decode()
    assert f"This phone has never registered, so it cannot be told to {verb}." in html
    assert "Asked phone" not in html
    with in_tenant(world.tenant_a):
        assert Device.objects.get(pk=device.pk).status == "new"
    assert not AuditEntry.objects.filter(action=f"device.{what}", object_id=str(device.pk)).exists()
