"""The REST API for phones: models, templates and devices, per tenant and per permission.

User story: a tenant admin (or an integrator with a token) lists the phone models, adds a phone
with a MAC in whatever notation the box label shows, assigns lines and BLF keys, reads the
effective settings with where each comes from, edits a template with validation, previews it
for a phone, and asks a phone to re-provision or reboot. Another tenant sees none of it (404),
a user without the devices permissions is refused, and bad input answers one error body.
"""

from __future__ import annotations

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from provisioning.models import CustomTemplate, Device
from provisioning.vendors import template_source
from tenants.models import DeviceIndex

from .conftest import HOST_A, HOST_B, sip_password

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(api, pw):
    return api(pw.a_admin)


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    return body["fields"]


def test_phone_models_list_and_filter(admin):
    everything = admin.get("/api/v1/phone-models/?limit=1000").json()
    assert everything["total"] >= 40
    yealink = admin.get("/api/v1/phone-models/?vendor=Yealink").json()
    assert {m["vendor"] for m in yealink["items"]} == {"Yealink"}
    t54w = admin.get("/api/v1/phone-models/yealink-t54w/").json()
    assert t54w["files"] == ["{mac}.cfg", "y000000000000.cfg"]
    assert t54w["max_accounts"] == 16
    assert admin.get("/api/v1/phone-models/nope/").status_code == 404


@pytest.mark.parametrize(
    "notation", ["00:15:65:A1:B2:C3", "00-15-65-a1-b2-c3", "0015.65a1.b2c3", "001565A1B2C3"]
)
def test_add_device_in_any_mac_notation(admin, pw, in_tenant, notation):
    response = admin.post(
        "/api/v1/devices/",
        {
            "mac": notation,
            "model_id": "yealink-t54w",
            "label": "Reception",
            "lines": [{"index": 1, "extension": "301"}, {"index": 2, "extension": "302"}],
            "blf_keys": [{"extension": "303", "label": "Boss"}],
        },
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["mac"] == "001565a1b2c3"
    assert data["lines"] == [
        {"index": 1, "extension": "301", "label": ""},
        {"index": 2, "extension": "302", "label": ""},
    ]
    with in_tenant(pw.tenant_a):
        device = Device.objects.get(pk=data["id"])
    # The URL names the scheme and port this request came in on (the test client: http, 80).
    assert data["provisioning_url"] == f"http://{HOST_A}/prov/{device.token}/"
    assert DeviceIndex.objects.get(mac="001565a1b2c3").tenant_id == pw.tenant_a.id
    assert AuditEntry.objects.filter(action="device.create", object_id=str(device.pk)).exists()


@pytest.mark.parametrize(
    ("mac", "message"),
    [
        ("001565a1b2", "has 10 hex digits"),
        ("00:15:65:A1:B2", "is not in a recognised form"),
        ("00:15:65:A1:B2:G3", "is not in a recognised form"),
        ("001565a1b2g3", "non-hex character"),
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("", "empty"),
    ],
)
def test_invalid_mac_is_a_clear_400(admin, pw, in_tenant, mac, message):
    response = admin.post("/api/v1/devices/", {"mac": mac, "model_id": "yealink-t54w"})
    assert response.status_code == 400
    assert any(message in m for m in error_fields(response)["mac"])
    with in_tenant(pw.tenant_a):
        assert Device.objects.count() == 0


def test_unknown_model_and_extension_are_field_errors(admin, pw, in_tenant):
    bad_model = admin.post("/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "nokia-3310"})
    assert bad_model.status_code == 400
    assert "model_id" in error_fields(bad_model)
    bad_line = admin.post(
        "/api/v1/devices/",
        {
            "mac": "001565a1b2c3",
            "model_id": "yealink-t54w",
            "lines": [{"index": 1, "extension": "999"}],
        },
    )
    assert bad_line.status_code == 400
    assert "lines" in error_fields(bad_line)
    with in_tenant(pw.tenant_a):
        assert Device.objects.count() == 0
    assert not DeviceIndex.objects.filter(mac="001565a1b2c3").exists()


def test_too_many_lines_for_the_model(admin):
    response = admin.post(
        "/api/v1/devices/",
        {
            "mac": "001565a1b2c3",
            "model_id": "yealink-t31p",
            "lines": [
                {"index": i, "extension": n} for i, n in ((1, "301"), (2, "302"), (3, "303"))
            ],
        },
    )
    assert response.status_code == 400
    assert "lines" in error_fields(response)


def test_duplicate_mac_is_409_across_tenants(admin, api, pw):
    assert (
        admin.post("/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "auto"}).status_code
        == 201
    )
    again = admin.post("/api/v1/devices/", {"mac": "00:15:65:a1:b2:c3", "model_id": "auto"})
    assert again.status_code == 409
    other = api(pw.b_admin, host=HOST_B).post(
        "/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "auto"}
    )
    assert other.status_code == 409
    assert "already registered" in other.json()["message"]
    assert "Phones A" not in other.json()["message"]


def test_device_quota(admin, pw, in_tenant):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=pw.tenant_a.pk).update(provisioning_settings={"max_devices": 1})
    assert (
        admin.post("/api/v1/devices/", {"mac": "001565000001", "model_id": "auto"}).status_code
        == 201
    )
    second = admin.post("/api/v1/devices/", {"mac": "001565000002", "model_id": "auto"})
    assert second.status_code == 409
    assert second.json()["code"] == "QUOTA_EXCEEDED"


def test_update_lines_blf_settings_and_read_effective_settings(admin, pw):
    created = admin.post(
        "/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "yealink-t54w"}
    ).json()
    url = f"/api/v1/devices/{created['id']}/"
    changed = admin.patch(
        url,
        {
            "lines": [{"index": 1, "extension": "302", "label": "Desk"}],
            "blf_keys": [{"extension": "301"}],
            "settings": {"language": "fr", "transport": "tls"},
            "allowed_networks": ["10.0.0.0/8", "192.0.2.7"],
        },
    )
    assert changed.status_code == 200, changed.json()
    data = changed.json()
    assert data["lines"] == [{"index": 1, "extension": "302", "label": "Desk"}]
    assert data["blf_keys"] == [{"label": "301", "extension": "301"}]
    assert data["allowed_networks"] == ["10.0.0.0/8", "192.0.2.7/32"]
    settings = {s["key"]: s for s in admin.get(f"{url}settings/").json()}
    assert settings["language"] == {"key": "language", "value": "fr", "source": "device"}
    assert settings["time_zone"]["source"] == "tenant"
    assert settings["ntp_server"]["source"] == "system"
    bad = admin.patch(
        url, {"settings": {"transport": "carrier-pigeon", "time_zone": "Mars/Olympus"}}
    )
    assert bad.status_code == 400
    assert len(error_fields(bad)["settings"]) == 2


def test_credentials_need_manage_and_work(admin, api, pw, phone):
    created = admin.post(
        "/api/v1/devices/",
        {
            "mac": "001565a1b2c3",
            "model_id": "yealink-t54w",
            "lines": [{"index": 1, "extension": "301"}],
        },
    ).json()
    creds = admin.get(f"/api/v1/devices/{created['id']}/credentials/").json()
    assert creds["plain_url"] == f"http://{HOST_A}/prov/"
    ok = phone().get("/prov/001565a1b2c3.cfg", auth=(creds["username"], creds["password"]))
    assert ok.status_code == 200
    assert sip_password("301") in ok.content.decode()


def test_permissions_and_isolation(admin, api, pw):
    created = admin.post("/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "auto"}).json()
    url = f"/api/v1/devices/{created['id']}/"
    staff = api(pw.a_user)  # a tenant user without devices.* permissions
    assert staff.get("/api/v1/devices/").status_code == 403
    assert (
        staff.post("/api/v1/devices/", {"mac": "001565a1b2c4", "model_id": "auto"}).status_code
        == 403
    )
    assert api().get("/api/v1/devices/").status_code == 401
    other = api(pw.b_admin, host=HOST_B)
    assert other.get(url).status_code == 404
    assert other.get("/api/v1/devices/").json()["total"] == 0
    assert other.post(f"{url}reboot/").status_code == 404
    # B's admin token on A's host is not valid at all.
    assert api(pw.b_admin, host=HOST_A).get("/api/v1/devices/").status_code == 401


def test_list_search_and_filter(admin):
    for mac, label, model in (
        ("001565000001", "Reception", "yealink-t54w"),
        ("0c383e000002", "Kitchen", "fanvil-x6u"),
    ):
        admin.post("/api/v1/devices/", {"mac": mac, "model_id": model, "label": label})
    assert admin.get("/api/v1/devices/").json()["total"] == 2
    found = admin.get("/api/v1/devices/?q=kitch").json()
    assert [d["label"] for d in found["items"]] == ["Kitchen"]
    by_model = admin.get("/api/v1/devices/?model_id=yealink-t54w").json()
    assert [d["mac"] for d in by_model["items"]] == ["001565000001"]


def test_delete_frees_the_mac(admin, api, pw):
    created = admin.post("/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "auto"}).json()
    assert admin.delete(f"/api/v1/devices/{created['id']}/").status_code == 204
    assert not DeviceIndex.objects.filter(mac="001565a1b2c3").exists()
    moved = api(pw.b_admin, host=HOST_B).post(
        "/api/v1/devices/", {"mac": "001565a1b2c3", "model_id": "auto"}
    )
    assert moved.status_code == 201


def test_reprovision_and_reboot_endpoints(admin, pw, in_tenant):
    created = admin.post(
        "/api/v1/devices/",
        {
            "mac": "001565a1b2c3",
            "model_id": "yealink-t54w",
            "lines": [{"index": 1, "extension": "301"}],
        },
    ).json()
    response = admin.post(f"/api/v1/devices/{created['id']}/reprovision/")
    assert response.status_code == 202
    assert response.json() == {"notified": 1}
    assert admin.post(f"/api/v1/devices/{created['id']}/reboot/").json() == {"notified": 1}
    assert AuditEntry.objects.filter(action="device.reboot").exists()
    empty = admin.post("/api/v1/devices/", {"mac": "001565a1b2c4", "model_id": "auto"}).json()
    refused = admin.post(f"/api/v1/devices/{empty['id']}/reprovision/")
    assert refused.status_code == 400
    assert "lines" in error_fields(refused)


# --- templates ------------------------------------------------------------------------------


def test_shipped_templates_are_listed_and_read_only(admin):
    shipped = admin.get("/api/v1/phone-templates/?kind=shipped&model_id=yealink-t54w").json()
    assert [t["id"] for t in shipped["items"]] == ["yealink-t54w.0", "yealink-t54w.1"]
    one = admin.get("/api/v1/phone-templates/yealink-t54w.0/").json()
    assert one["source"] == template_source("yealink-t54w")
    assert one["kind"] == "shipped"
    assert (
        admin.patch("/api/v1/phone-templates/yealink-t54w.0/", {"source": "x"}).status_code == 400
    )
    assert admin.delete("/api/v1/phone-templates/yealink-t54w.0/").status_code == 400


def test_custom_template_crud_with_validation(admin, pw, in_tenant):
    cloned = admin.post(
        "/api/v1/phone-templates/", {"model_id": "yealink-t54w", "file_pattern": "{mac}.cfg"}
    )
    assert cloned.status_code == 201, cloned.json()
    tid = cloned.json()["id"]
    assert cloned.json()["source"] == template_source("yealink-t54w")
    broken = admin.patch(f"/api/v1/phone-templates/{tid}/", {"source": "{% if %}"})
    assert broken.status_code == 400
    assert any("syntax error" in p for p in error_fields(broken)["source"])
    not_yealink = admin.patch(f"/api/v1/phone-templates/{tid}/", {"source": "hello = {{ mac }}\n"})
    assert not_yealink.status_code == 400
    assert any("#!version" in p for p in error_fields(not_yealink)["source"])
    unsafe = admin.patch(
        f"/api/v1/phone-templates/{tid}/",
        {"source": "#!version:1.0.0.1\nx = {{ ctx.__class__.__mro__ }}\n"},
    )
    assert unsafe.status_code == 400
    edited = template_source("yealink-t54w") + "# edited by the tenant\n"
    assert admin.patch(f"/api/v1/phone-templates/{tid}/", {"source": edited}).status_code == 200
    with in_tenant(pw.tenant_a):
        assert CustomTemplate.objects.get(pk=int(tid)).source == edited
    custom = admin.get("/api/v1/phone-templates/?kind=custom").json()
    assert [t["id"] for t in custom["items"]] == [tid]
    assert api_other_sees_nothing(pw, tid)
    assert admin.delete(f"/api/v1/phone-templates/{tid}/").status_code == 204


def api_other_sees_nothing(pw, tid) -> bool:
    from .conftest import Api

    other = Api(HOST_B, pw.b_admin)
    return (
        other.get(f"/api/v1/phone-templates/{tid}/").status_code == 404
        and other.get("/api/v1/phone-templates/?kind=custom").json()["total"] == 0
    )


def test_preview_and_validate(admin, pw, add_device):
    device = add_device("001565a1b2c3", "yealink-t54w", lines=("301",))
    preview = admin.post("/api/v1/phone-templates/yealink-t54w.0/preview/", {"device": device.pk})
    assert preview.status_code == 200, preview.json()
    assert preview.json()["filename"] == "001565a1b2c3.cfg"
    assert sip_password("301") in preview.json()["content"]
    trial = admin.post(
        "/api/v1/phone-templates/yealink-t54w.0/preview/",
        {"device": device.pk, "source": "#!version:1.0.0.1\nx = {{ lines[0].extension }}\n"},
    )
    assert trial.json()["content"] == "#!version:1.0.0.1\nx = 301\n"
    wrong_model = admin.post("/api/v1/phone-templates/fanvil-x6u.0/preview/", {"device": device.pk})
    assert wrong_model.status_code == 400
    checked = admin.post(
        "/api/v1/phone-templates/validate/",
        {"model_id": "yealink-t54w", "source": "#!version:1.0.0.1\na = {{ nothing }}\n"},
    ).json()
    assert checked["problems"]
    assert "nothing" in checked["problems"][0]


def test_template_write_needs_manage(api, pw):
    staff = api(pw.a_user)
    assert (
        staff.post(
            "/api/v1/phone-templates/", {"model_id": "yealink-t54w", "file_pattern": "{mac}.cfg"}
        ).status_code
        == 403
    )


def test_actions_can_run_without_api(pw, in_tenant):
    """The portal and importer call the same actions: one quick direct check."""
    from provisioning.actions import do_add_device, do_assign_line

    with in_tenant(pw.tenant_a):
        device = do_add_device(mac="0015.65a1.b2c3", model_id="yealink-t54w", actor=SYSTEM)
        line = do_assign_line(device, index=3, extension="303", label="Third", actor=SYSTEM)
        assert (line.index, line.extension.number, line.label) == (3, "303", "Third")


def test_provision_path_is_an_alias_of_prov(admin, pw, phone):
    """Phones and DHCP scopes set up for PortSIP fetch from /provision/: the same files."""
    created = admin.post(
        "/api/v1/devices/",
        {
            "mac": "001565a1b2c3",
            "model_id": "yealink-t54w",
            "lines": [{"index": 1, "extension": "301"}],
        },
    ).json()
    token_path = created["provisioning_url"].split(HOST_A, 1)[1]
    assert token_path.startswith("/prov/")
    alias = token_path.replace("/prov/", "/provision/", 1)
    first = phone().get(f"{token_path}001565a1b2c3.cfg")
    second = phone().get(f"{alias}001565a1b2c3.cfg")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert sip_password("301") in second.content.decode()
    creds = admin.get(f"/api/v1/devices/{created['id']}/credentials/").json()
    auth = (creds["username"], creds["password"])
    assert phone().get("/provision/001565a1b2c3.cfg", auth=auth).status_code == 200
    assert phone().get("/provision/001565a1b2c3.cfg").status_code == 401


def test_an_admin_on_the_own_https_listener_is_shown_the_plain_http_url(admin, pw, settings):
    """``make run`` serves the portal over HTTPS with a self-signed certificate, which desk
    phones refuse: the URL an admin copies into a phone names the plain HTTP listener."""
    settings.PBX_HTTPS, settings.PBX_HTTP_PORT = True, 8000
    created = admin.post(
        "/api/v1/devices/",
        {"mac": "001565a1b2c5", "model_id": "yealink-t54w"},
        secure=True,
        HTTP_HOST=f"{HOST_A}:8443",
    ).json()
    assert created["provisioning_url"].startswith(f"http://{HOST_A}:8000/prov/")
    creds = admin.get(
        f"/api/v1/devices/{created['id']}/credentials/", secure=True, HTTP_HOST=f"{HOST_A}:8443"
    ).json()
    assert creds["plain_url"] == f"http://{HOST_A}:8000/prov/"
    # Behind a TLS proxy (the server's own HTTPS off) the request's listener still counts.
    settings.PBX_HTTPS = False
    again = admin.get(
        f"/api/v1/devices/{created['id']}/", secure=True, HTTP_HOST=f"{HOST_A}:8443"
    ).json()
    assert again["provisioning_url"].startswith(f"https://{HOST_A}:8443/prov/")


def test_explicit_public_url_setting_wins(admin, pw, settings):
    """Behind a TLS proxy the operator names the public scheme (and port)."""
    settings.PBX_PROV_URL_SCHEME = "https"
    settings.PBX_PROV_URL_PORT = 8443
    created = admin.post(
        "/api/v1/devices/",
        {"mac": "001565a1b2c4", "model_id": "yealink-t54w"},
    ).json()
    assert created["provisioning_url"].startswith(f"https://{HOST_A}:8443/prov/")
