"""Phones fetching their files over HTTP on the tenant's host, through Django's full stack.

User story: an admin adds a phone by its MAC; the phone, told its URL by PnP, DHCP option 66
or by hand, fetches its files and registers with the right credentials — and nobody else can
fetch them: not with a guessed MAC, not from another tenant's host, not after the provisioning
window without the phone's own credentials, and not by hammering the server.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from pbx.audit import SYSTEM
from provisioning.models import CustomTemplate, Device, DeviceStatus
from provisioning.vendors import files_for, get_model, template_source

from .conftest import HOST_A, HOST_B, SIP_PASSWORD, USER_AGENTS, sip_password

pytestmark = pytest.mark.django_db

# One MAC per model with the vendor's OUI, so file-name guessing is never what decides.
MACS = {
    "yealink-t54w": "001565a1b2c3",
    "yealink-w60b": "001565a1b2c4",
    "fanvil-x6u": "0c383ea1b2c3",
    "grandstream-gxp2170": "000b82a1b2c3",
    "snom-d785": "000413a1b2c3",
    "snom-m900": "000413a1b2c4",
    "poly-vvx-450": "0004f2a1b2c3",
    "cisco-spa504g": "00562ba1b2c3",
    "htek-uc926": "001fc1a1b2c3",
}
SIP_301 = sip_password("301")


def device_row(pw, in_tenant, pk, tenant=None) -> Device:
    with in_tenant(tenant or pw.tenant_a):
        return Device.objects.get(pk=pk)


@pytest.mark.parametrize("model_id", sorted(USER_AGENTS))
def test_every_vendor_fetches_its_files_with_the_right_credentials(pw, add_device, phone, model_id):
    device = add_device(MACS[model_id], model_id, lines=("301", "302"))
    client = phone(user_agent=USER_AGENTS[model_id])
    model = get_model(model_id)
    for spec, name in zip(model.files, files_for(model_id, device.mac), strict=True):
        response = client.get(f"/prov/{device.token}/{name}")
        assert response.status_code == 200, (name, response.content[:200])
        assert response["Content-Type"] == f"{spec.content_type}; charset=utf-8"
        assert response["Cache-Control"] == "no-store"
        body = response.content.decode()
        if spec.per_device and "polycom_master" not in spec.template:
            assert SIP_301 in body
            assert sip_password("302") in body
            assert "301" in body
            assert "sip.phonea.test" in body
        else:
            assert SIP_PASSWORD not in body  # shared / index files carry no secret


def test_yealink_file_content_and_settings(pw, add_device, phone):
    device = add_device(MACS["yealink-t54w"], "yealink-t54w", lines=("301",))
    response = phone(user_agent=USER_AGENTS["yealink-t54w"]).get(
        f"/prov/{device.token}/{device.mac}.cfg"
    )
    body = response.content.decode()
    assert f"account.1.password = {SIP_301}" in body
    assert "account.1.user_name = 301" in body
    assert "account.1.sip_server.1.address = " in body
    common = phone(user_agent=USER_AGENTS["yealink-t54w"]).get(
        f"/prov/{device.token}/y000000000000.cfg"
    )
    text = common.content.decode()
    assert "lang.gui = German" in text  # tenant A's language
    # The URL handed to the phone carries its credentials, so it keeps working later.
    assert f"://{device.http_username}:" in text
    assert f"@{HOST_A}/prov/{device.token}/" in text


def test_last_fetch_is_recorded(pw, add_device, phone, in_tenant):
    device = add_device(MACS["fanvil-x6u"], "fanvil-x6u")
    ua = USER_AGENTS["fanvil-x6u"]
    assert (
        phone(address="198.51.100.7", user_agent=ua)
        .get(f"/prov/{device.token}/{device.mac}.cfg")
        .status_code
        == 200
    )
    row = device_row(pw, in_tenant, device.pk)
    assert row.status == DeviceStatus.PROVISIONED
    assert row.last_fetch_address == "198.51.100.7"
    assert row.last_fetch_user_agent == ua
    assert row.last_fetch_file == f"{device.mac}.cfg"
    assert timezone.now() - row.last_fetch_at < timedelta(seconds=30)


def test_basic_credentials_on_the_plain_path(pw, add_device, phone):
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    client = phone(user_agent=USER_AGENTS["yealink-t54w"])
    path = f"/prov/{device.mac}.cfg"
    ok = client.get(path, auth=(device.http_username, device.http_password))
    assert ok.status_code == 200
    assert SIP_301 in ok.content.decode()
    # The shared Yealink file, with the same credentials, is this device's rendering.
    common = client.get(
        "/prov/y000000000000.cfg", auth=(device.http_username, device.http_password)
    )
    assert common.status_code == 200
    # MAC notation in the requested name does not matter (phones differ in case).
    upper = client.get(
        f"/prov/{device.mac.upper()}.cfg", auth=(device.http_username, device.http_password)
    )
    assert upper.status_code == 200


def test_wrong_credentials_and_unknown_mac_are_indistinguishable(pw, add_device, phone):
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    client = phone(user_agent=USER_AGENTS["yealink-t54w"])
    answers = [
        client.get(f"/prov/{device.mac}.cfg"),  # no credentials, known MAC
        client.get(f"/prov/{device.mac}.cfg", auth=(device.http_username, "wrong")),
        client.get(f"/prov/{device.mac}.cfg", auth=("nobody", "wrong")),
        client.get("/prov/001565ffff01.cfg"),  # unknown MAC
        client.get("/prov/001565ffff01.cfg", auth=(device.http_username, "wrong")),
        client.get("/prov/001565ffff01.cfg", auth=("nobody", "nothing")),
    ]
    shapes = {(r.status_code, r.content, r["WWW-Authenticate"], r["Content-Type"]) for r in answers}
    assert len(shapes) == 1
    status, body, challenge, _ = shapes.pop()
    assert status == 401
    assert challenge.startswith('Basic realm="provisioning"')
    assert SIP_PASSWORD.encode() not in body


def test_another_devices_credentials_do_not_open_this_device(pw, add_device, phone):
    mine = add_device(MACS["yealink-t54w"], "yealink-t54w", lines=("301",))
    other = add_device(MACS["yealink-w60b"], "yealink-w60b", lines=("302",))
    response = phone().get(f"/prov/{mine.mac}.cfg", auth=(other.http_username, other.http_password))
    assert response.status_code == 404
    assert SIP_301.encode() not in response.content


def test_window_closed_needs_credentials_or_allow_list(pw, add_device, phone):
    past = timezone.now() - timedelta(minutes=1)
    device = add_device(MACS["snom-d785"], "snom-d785", provisioning_until=past)
    path = f"/prov/{device.token}/{device.mac.upper()}.xml"
    client = phone(user_agent=USER_AGENTS["snom-d785"])
    refused = client.get(path)
    assert refused.status_code == 401
    assert SIP_PASSWORD.encode() not in refused.content
    assert client.get(path, auth=(device.http_username, device.http_password)).status_code == 200


def test_window_open_token_alone_suffices(pw, add_device, phone):
    device = add_device(MACS["snom-d785"], "snom-d785")
    assert device.window_open()
    path = f"/prov/{device.token}/{device.mac.upper()}.xml"
    assert phone(user_agent=USER_AGENTS["snom-d785"]).get(path).status_code == 200


def test_allow_list_restricts_and_grants(pw, add_device, phone):
    past = timezone.now() - timedelta(minutes=1)
    device = add_device(
        MACS["htek-uc926"],
        "htek-uc926",
        allowed_networks=["10.20.0.0/16"],
        provisioning_until=past,
    )
    token_path = f"/prov/{device.token}/cfg{device.mac}.xml"
    plain_path = f"/prov/cfg{device.mac}.xml"
    inside = phone(address="10.20.3.4", user_agent=USER_AGENTS["htek-uc926"])
    outside = phone(address="203.0.113.9", user_agent=USER_AGENTS["htek-uc926"])
    # Inside the allow-list: served without credentials, on both paths.
    assert inside.get(token_path).status_code == 200
    assert inside.get(plain_path).status_code == 200
    # Outside: refused, even with the right credentials.
    creds = (device.http_username, device.http_password)
    assert outside.get(token_path, auth=creds).status_code == 403
    assert outside.get(plain_path, auth=creds).status_code == 403


def test_allow_list_applies_inside_the_window_too(pw, add_device, phone):
    device = add_device(MACS["htek-uc926"], "htek-uc926", allowed_networks=["10.20.0.0/16"])
    path = f"/prov/{device.token}/cfg{device.mac}.xml"
    assert phone(address="203.0.113.9").get(path).status_code == 403


def test_unknown_token_and_unknown_files_are_404(pw, add_device, phone):
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    client = phone()
    assert client.get(f"/prov/not-a-token/{device.mac}.cfg").status_code == 404
    assert client.get(f"/prov/{device.token}/cfg{device.mac}.xml").status_code == 404
    assert client.get(f"/prov/{device.token}/001565000099.cfg").status_code == 404
    assert client.get("/prov/readme.txt").status_code == 404


def test_public_host_serves_no_phone_files(pw, add_device, phone):
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    assert phone(host="localhost").get(f"/prov/{device.token}/{device.mac}.cfg").status_code == 404


def test_tenants_never_cross(pw, add_device, phone):
    b_device = add_device(MACS["yealink-t54w"], "yealink-t54w", lines=("401",), tenant=pw.tenant_b)
    name = f"{b_device.mac}.cfg"
    # B's token on A's host: not found, even inside B's window.
    assert phone(host=HOST_A).get(f"/prov/{b_device.token}/{name}").status_code == 404
    # B's credentials on A's host: the one 401 answer.
    creds = (b_device.http_username, b_device.http_password)
    assert phone(host=HOST_A).get(f"/prov/{name}", auth=creds).status_code == 401
    # On B's own host it works, with B's domain and password.
    ok = phone(host=HOST_B).get(f"/prov/{b_device.token}/{name}")
    assert ok.status_code == 200
    body = ok.content.decode()
    assert sip_password("401") in body
    assert "sip.phoneb.test" in body
    assert "phonea" not in body


def test_same_mac_cannot_be_on_two_tenants(pw, add_device):
    from pbx.errors import Conflict

    add_device(MACS["yealink-t54w"], "yealink-t54w")
    with pytest.raises(Conflict, match="already registered"):
        add_device(MACS["yealink-t54w"], "yealink-t54w", lines=("401",), tenant=pw.tenant_b)


def test_failed_fetches_are_rate_limited(pw, add_device, phone, settings):
    settings.PBX_PROV_MAX_FAILURES = 5
    settings.PBX_PROV_BAN_SECONDS = 120
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    attacker = phone(address="203.0.113.66")
    for n in range(5):
        response = attacker.get(f"/prov/00156500{n:04x}.cfg", auth=("x", "y"))
        assert response.status_code == 401
    banned = attacker.get(f"/prov/{device.token}/{device.mac}.cfg")
    assert banned.status_code == 429
    assert 0 < int(banned["Retry-After"]) <= 120
    # Another address is not affected.
    assert (
        phone(address="203.0.113.67").get(f"/prov/{device.token}/{device.mac}.cfg").status_code
        == 200
    )


def test_successful_fetches_do_not_count(pw, add_device, phone, settings):
    settings.PBX_PROV_MAX_FAILURES = 3
    device = add_device(MACS["yealink-t54w"], "yealink-t54w")
    client = phone(address="203.0.113.70")
    for _ in range(6):
        assert client.get(f"/prov/{device.token}/{device.mac}.cfg").status_code == 200


def test_auto_model_is_recognised_from_the_user_agent(pw, add_device, phone, in_tenant):
    device = add_device(MACS["fanvil-x6u"], "auto")
    response = phone(user_agent=USER_AGENTS["fanvil-x6u"]).get(
        f"/prov/{device.token}/{device.mac}.cfg"
    )
    assert response.status_code == 200
    assert SIP_301 in response.content.decode()
    assert device_row(pw, in_tenant, device.pk).detected_model_id == "fanvil-x6u"
    # Without a recognisable User-Agent, the recognised model is used from now on.
    again = phone(user_agent="curl/8").get(f"/prov/{device.token}/{device.mac}.cfg")
    assert again.status_code == 200


def test_auto_model_without_user_agent_is_404(pw, add_device, phone):
    device = add_device(MACS["fanvil-x6u"], "auto")
    assert phone().get(f"/prov/{device.token}/{device.mac}.cfg").status_code == 404


def test_custom_template_is_served(pw, add_device, phone, in_tenant):
    from provisioning.actions import do_save_custom_template

    device = add_device(MACS["fanvil-x6u"], "fanvil-x6u")
    shipped = template_source("fanvil-x6u")
    # A tenant's edit: one more key in the last section, before the end marker.
    source = shipped.replace(
        "<<END OF FILE>>", "Custom Note        :for {{ mac }}\n<<END OF FILE>>"
    )
    with in_tenant(pw.tenant_a):
        do_save_custom_template(
            model_id="fanvil-x6u", file_pattern="{mac}.cfg", source=source, actor=SYSTEM
        )
        assert CustomTemplate.objects.count() == 1
    body = phone().get(f"/prov/{device.token}/{device.mac}.cfg").content.decode()
    assert f"Custom Note        :for {device.mac}" in body


def test_settings_layers_reach_the_file(pw, add_device, phone, in_tenant):
    from dealers.models import Dealer
    from provisioning.actions import do_set_model_settings, do_update_device
    from provisioning.config import effective_settings
    from tenants.models import Tenant

    Dealer.objects.filter(pk=pw.dealer.pk).update(
        provisioning_settings={"ntp_server": "ntp.dealer.test", "firmware_url": "https://fw.d/x"}
    )
    Tenant.objects.filter(pk=pw.tenant_a.pk).update(
        provisioning_settings={"ntp_server": "ntp.tenant.test"}
    )
    tenant = Tenant.objects.get(pk=pw.tenant_a.pk)
    device = add_device(MACS["fanvil-x6u"], "fanvil-x6u")
    with in_tenant(tenant):
        do_set_model_settings("fanvil-x6u", {"admin_password": "model-pw"}, actor=SYSTEM)
        device = do_update_device(device, settings={"language": "fr"}, actor=SYSTEM)
        resolved = effective_settings(tenant, device)
    assert resolved["ntp_server"] == ("ntp.tenant.test", "tenant")
    assert resolved["firmware_url"] == ("https://fw.d/x", "dealer")
    assert resolved["admin_password"] == ("model-pw", "model")
    assert resolved["language"] == ("fr", "device")
    assert resolved["transport"].source == "system"
    assert resolved["time_zone"] == ("Europe/Berlin", "tenant")
    connection.set_schema_to_public()
    body = phone(host=HOST_A).get(f"/prov/{device.token}/{device.mac}.cfg").content.decode()
    assert "ntp.tenant.test" in body
    assert "https://fw.d/x" in body
    assert "model-pw" in body


def _listen(channel: str):
    """A subscription to ``channel``, confirmed by Redis before anything is published."""
    import redis
    from django.conf import settings

    sub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    sub.subscribe(channel)
    confirmation = sub.get_message(timeout=5)
    assert confirmation is not None
    assert confirmation["type"] == "subscribe"
    return sub


def _drain(sub, count: int) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        message = sub.get_message(timeout=0.2)
        if message is not None:
            got.append(json.loads(message["data"]))
    return got


# Redis pub/sub channels are not per database: both cases run on one worker, one after the other.
@pytest.mark.xdist_group("sip-control-channel")
@pytest.mark.parametrize("reboot", [False, True])
def test_reprovision_and_reboot_publish_check_sync(
    pw, add_device, in_tenant, django_capture_on_commit_callbacks, reboot
):
    from provisioning.actions import do_reboot, do_reprovision
    from telephony.engine.store import redis_key
    from telephony.sip.contract import CONTROL

    device = add_device(MACS["yealink-w60b"], "yealink-w60b", lines=("301", "302", "301"))
    sub = _listen(redis_key(CONTROL))
    try:
        with (
            in_tenant(pw.tenant_a),
            django_capture_on_commit_callbacks(execute=True) as callbacks,
        ):
            sent = (do_reboot if reboot else do_reprovision)(device, actor=SYSTEM)
        assert len(callbacks) == 1
        assert sent == 2  # 301 is on two lines: one NOTIFY per extension
        messages = _drain(sub, 2)
    finally:
        sub.close()
    assert sorted(messages, key=lambda m: m["user"]) == [
        {
            "op": "notify",
            "domain": "sip.phonea.test",
            "user": user,
            "event": "check-sync",
            "reboot": reboot,
        }
        for user in ("301", "302")
    ]
    with in_tenant(pw.tenant_a):
        status = Device.objects.get(pk=device.pk).status
    assert status == (DeviceStatus.REBOOT if reboot else DeviceStatus.REPROVISION)
