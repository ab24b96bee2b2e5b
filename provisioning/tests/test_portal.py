"""The portal's phone pages, through Django's full stack on the tenant's host.

User story: a tenant admin adds a phone with the MAC as printed on its box, puts extensions on
its lines and a BLF key, sees where each effective setting comes from, edits the model's
template with validation and a preview for that phone, re-provisions it, and imports more
phones from a CSV file. A user without the devices permissions, or another tenant, sees none.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from provisioning.models import CustomTemplate, Device
from provisioning.vendors import template_source
from telephony.models import ImportJob

from .conftest import HOST_A, HOST_B

pytestmark = pytest.mark.django_db


class Browser:
    def __init__(self, host: str, user) -> None:
        self.client = Client(HTTP_HOST=host)
        self.client.force_login(user, backend="tenants.auth.HostScopedBackend")

    def get(self, path, **kw):
        response = self.client.get(path, **kw)
        connection.set_schema_to_public()
        return response

    def post(self, path, data=None, **kw):
        response = self.client.post(path, data or {}, **kw)
        connection.set_schema_to_public()
        return response


@pytest.fixture
def browser(pw):
    return Browser(HOST_A, pw.a_admin)


def key_rows(prefix: str, rows: list[tuple[str, str]]) -> dict:
    """The POST of a phone's line or BLF rows (a Django formset: its management form and one
    extension + label pair per row)."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "256",
    }
    for n, (extension, label) in enumerate(rows):
        data[f"{prefix}-{n}-extension"] = extension
        data[f"{prefix}-{n}-label"] = label
    return data


def test_add_edit_and_see_effective_settings(browser, pw, in_tenant):
    added = browser.post(
        "/portal/phones/add/",
        {"mac": "0015.65A1.B2C3", "model_id": "yealink-t54w", "label": "Desk", "extension": "301"},
    )
    assert added.status_code == 302
    with in_tenant(pw.tenant_a):
        device = Device.objects.get(mac="001565a1b2c3")
    page = browser.get(f"/portal/phones/{device.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/prov/{device.token}/" in html
    assert device.http_username in html
    saved = browser.post(
        f"/portal/phones/{device.pk}/",
        {
            "model_id": "yealink-t54w",
            "label": "Desk",
            **key_rows("line", [("301", "Me"), ("302", "")]),
            **key_rows("blf", [("303", "Boss"), ("", "")]),
            "settings": "language fr",
            "allowed_networks": "",
            "provisioning_until": "",
        },
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with in_tenant(pw.tenant_a):
        device = Device.objects.get(pk=device.pk)
        assert [(li.index, li.extension.number) for li in device.lines.order_by("index")] == [
            (1, "301"),
            (2, "302"),
        ]
    assert device.blf_keys == [{"label": "Boss", "extension": "303"}]
    html = browser.get(f"/portal/phones/{device.pk}/").content.decode()
    # The rows show what is stored: one row per account of the T54W, the keys plus spare rows,
    # every box suggesting the tenant's extensions from one list on the page.
    assert re.search(r'name="line-0-extension"[^>]*value="301"', html)
    assert re.search(r'name="line-1-extension"[^>]*value="302"', html)
    assert 'name="line-15-extension"' in html
    assert 'name="line-16-extension"' not in html
    assert re.search(r'name="blf-0-extension"[^>]*value="303"', html)
    assert 'name="blf-4-extension"' in html
    assert html.count('list="tenant-extensions"') == 16 + 5
    assert '<option value="303">303 · ' in html
    assert '<td>language</td><td>fr</td><td><span class="badge">device</span>' in html
    assert '<td>time_zone</td><td>Europe/Berlin</td><td><span class="badge">tenant</span>' in html
    listing = browser.get("/portal/phones/?q=desk").content.decode()
    assert 'data-testid="phone-001565a1b2c3"' in listing


@pytest.mark.parametrize("rows", ["line", "blf"])
def test_an_unknown_extension_in_a_row_is_shown_there_and_nothing_is_saved(
    browser, add_device, pw, in_tenant, rows
):
    """An extension that is not this tenant's (tenant B's 401, or a typo) is the action's
    refusal, shown above the rows it concerns; the phone keeps what it had."""
    device = add_device("001565a1b2c4", "yealink-t54w")
    with in_tenant(pw.tenant_a):
        lines_before = list(device.lines.values_list("index", "extension__number"))
    other = {"line": "blf", "blf": "line"}[rows]
    response = browser.post(
        f"/portal/phones/{device.pk}/",
        {
            "model_id": "yealink-t54w",
            "label": "Desk",
            **key_rows(rows, [("999", "Nobody")]),
            **key_rows(other, []),
            "settings": "",
            "allowed_networks": "",
            "provisioning_until": "",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    testid = {"line": "line-rows", "blf": "blf-rows"}[rows]
    assert re.search(rf'<p data-field="{testid}">[^<]*999', html), html[-3000:]
    with in_tenant(pw.tenant_a):
        device = Device.objects.get(pk=device.pk)
        assert device.blf_keys == []
        assert list(device.lines.values_list("index", "extension__number")) == lines_before


def test_bad_mac_is_shown_on_the_field(browser, pw, in_tenant):
    response = browser.post("/portal/phones/add/", {"mac": "00:15:65", "model_id": "auto"})
    assert response.status_code == 200
    assert 'data-field="mac"' in response.content.decode()
    with in_tenant(pw.tenant_a):
        assert Device.objects.count() == 0


def test_reprovision_button(browser, add_device, pw, in_tenant):
    import json
    import time

    import redis
    from django.conf import settings

    from telephony.engine.store import redis_key
    from telephony.sip.contract import LOCATION

    device = add_device("001565a1b2c3", "yealink-t54w")
    # Never registered: the button says so and pretends nothing.
    response = browser.post(f"/portal/phones/{device.pk}/reprovision/", follow=True)
    assert "This phone has never registered" in response.content.decode()
    with in_tenant(pw.tenant_a):
        assert Device.objects.get(pk=device.pk).status == "new"
    # Registered (line 301 has a binding in the location store): the check-sync goes out.
    rds = redis.Redis.from_url(settings.REDIS_URL)
    key = redis_key(LOCATION, domain=pw.tenant_a.sip_domain, user="301")
    binding = {
        "contact": "sip:301@192.0.2.1",
        "transport": "udp",
        "source_host": "192.0.2.1",
        "source_port": 5060,
        "user_agent": "Yealink",
        "expires_at": time.time() + 600,
        "registered_at": time.time(),
    }
    rds.hset(key, "sip:301@192.0.2.1", json.dumps(binding))
    try:
        response = browser.post(f"/portal/phones/{device.pk}/reprovision/")
    finally:
        rds.delete(key)
        rds.close()
    assert response.status_code == 302
    with in_tenant(pw.tenant_a):
        assert Device.objects.get(pk=device.pk).status == "reprovision"


def test_template_validate_preview_save_revert(browser, add_device, pw, in_tenant):
    device = add_device("001565a1b2c3", "yealink-t54w")
    url = "/portal/phones/templates/yealink-t54w/0/"
    assert template_source("yealink-t54w")[:20] in browser.get(url).content.decode()
    bad = browser.post(url, {"source": "{% if %}", "intent": "validate"})
    assert 'data-testid="problems"' in bad.content.decode()
    preview = browser.post(
        url,
        {
            "source": "#!version:1.0.0.1\nx = {{ lines[0].extension }}\n",
            "intent": "preview",
            "device": device.pk,
        },
    )
    assert "x = 301" in preview.content.decode()
    source = template_source("yealink-t54w") + "# ours\n"
    assert browser.post(url, {"source": source, "intent": "save"}).status_code == 302
    with in_tenant(pw.tenant_a):
        assert CustomTemplate.objects.get().source == source
    assert browser.post(url, {"source": source, "intent": "revert"}).status_code == 302
    with in_tenant(pw.tenant_a):
        assert not CustomTemplate.objects.exists()


def test_csv_import_dry_run(browser, pw, in_tenant):
    upload = SimpleUploadedFile(
        "phones.csv", b"mac,model,extension,label\n001565a1b2c3,yealink-t54w,301,Desk\n"
    )
    response = browser.post("/portal/phones/import/", {"file": upload})
    assert response.status_code == 302
    with in_tenant(pw.tenant_a):
        job = ImportJob.objects.get(kind="phones")
    assert job.status == ImportJob.Status.VALIDATED
    assert response["Location"] == f"/portal/imports/{job.pk}/"


def test_pages_are_hidden_without_permission_or_on_another_tenant(pw, add_device):
    device = add_device("001565a1b2c3", "yealink-t54w")
    staff = Browser(HOST_A, pw.a_user)
    assert staff.get("/portal/phones/").status_code == 404
    other = Browser(HOST_B, pw.b_admin)
    assert other.get(f"/portal/phones/{device.pk}/").status_code == 404
    assert other.get("/portal/phones/").status_code == 200
