"""What a phone's fetch costs, and the caches that keep it cheap staying correct.

User story: after a power cut every phone of a site fetches its files at once. Each fetch must
cost a fixed, small number of queries (pinned here so it cannot creep back), repeated fetches
must not each commit a write — and yet an admin's change (model settings, a custom template,
the dealer's settings) is in the very next file a phone fetches, and the portal shows when each
phone last fetched within seconds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pbx.audit import SYSTEM
from provisioning.delivery import FETCHES_KEY, flush_fetches
from provisioning.models import Device, DeviceStatus

from .conftest import USER_AGENTS

pytestmark = pytest.mark.django_db

MAC = "0c383ea1b2c9"
MODEL = "fanvil-x6u"


def _fetch(phone, device, *, address="192.0.2.10"):
    response = phone(address=address, user_agent=USER_AGENTS[MODEL]).get(
        f"/prov/{device.token}/{device.mac}.cfg"
    )
    assert response.status_code == 200
    return response.content.decode()


def _plain(phone, device):
    response = phone(user_agent=USER_AGENTS[MODEL]).get(
        f"/prov/{device.mac}.cfg", auth=(device.http_username, device.http_password)
    )
    assert response.status_code == 200
    return response.content.decode()


def _queries(fn) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return [q["sql"] for q in ctx.captured_queries]


def test_a_repeated_fetch_costs_two_queries_and_no_write(pw, add_device, phone, settings):
    from dealers.actions import do_update_dealer

    settings.PBX_HOST_CACHE_SECONDS = 60  # as served: the host table cached in the process

    do_update_dealer(pw.dealer, provisioning_settings={"ntp_server": "ntp.d.test"}, actor=SYSTEM)
    device = add_device(MAC, MODEL, lines=("301", "302"))
    _fetch(phone, device)  # the first fetch: status becomes "provisioned", layers cached
    token_path = _queries(lambda: _fetch(phone, device))
    plain_path = _queries(lambda: _plain(phone, device))
    # The device (by token / by user name) and its lines with their extensions; the layers
    # (model settings, custom templates, the dealer chain) come from the process cache, and
    # the last fetch goes to Redis.
    reads = [q for q in token_path if not q.startswith("SET search_path")]
    assert len(reads) == 2, token_path
    assert len([q for q in plain_path if not q.startswith("SET search_path")]) == 2, plain_path
    assert len(token_path) <= 3
    assert len(plain_path) <= 3
    assert not any(q.startswith(("UPDATE", "INSERT")) for q in token_path + plain_path)


def test_changes_through_the_actions_reach_the_next_fetch(pw, add_device, phone, in_tenant):
    from dealers.actions import do_update_dealer
    from provisioning.actions import (
        do_delete_custom_template,
        do_save_custom_template,
        do_set_model_settings,
    )
    from provisioning.vendors import template_source

    device = add_device(MAC, MODEL)
    before = _fetch(phone, device)
    assert "ntp.model.test" not in before
    assert "ntp.dealer.test" not in before
    _fetch(phone, device)  # served from the cache now

    do_update_dealer(
        pw.dealer, provisioning_settings={"ntp_server": "ntp.dealer.test"}, actor=SYSTEM
    )
    assert "ntp.dealer.test" in _fetch(phone, device)

    with in_tenant(pw.tenant_a):
        do_set_model_settings(MODEL, {"ntp_server": "ntp.model.test"}, actor=SYSTEM)
    assert "ntp.model.test" in _fetch(phone, device)

    source = template_source(MODEL).replace(
        "<<END OF FILE>>", "Custom Note        :cached {{ mac }}\n<<END OF FILE>>"
    )
    with in_tenant(pw.tenant_a):
        row = do_save_custom_template(
            model_id=MODEL, file_pattern="{mac}.cfg", source=source, actor=SYSTEM
        )
    assert f"Custom Note        :cached {device.mac}" in _fetch(phone, device)
    edited = source.replace(":cached", ":edited")
    with in_tenant(pw.tenant_a):
        do_save_custom_template(
            model_id=MODEL, file_pattern="{mac}.cfg", source=edited, actor=SYSTEM
        )
    assert f"Custom Note        :edited {device.mac}" in _fetch(phone, device)
    with in_tenant(pw.tenant_a):
        row.refresh_from_db()
        do_delete_custom_template(row, actor=SYSTEM)
    assert "Custom Note" not in _fetch(phone, device)


def test_the_cache_is_per_tenant(pw, add_device, phone, in_tenant):
    from provisioning.actions import do_set_model_settings

    device_a = add_device(MAC, MODEL)
    device_b = add_device("0c383ea1b2ca", MODEL, lines=("401",), tenant=pw.tenant_b)
    with in_tenant(pw.tenant_a):
        do_set_model_settings(MODEL, {"ntp_server": "ntp.only-a.test"}, actor=SYSTEM)
    assert "ntp.only-a.test" in _fetch(phone, device_a)
    response = phone(host="phoneb.test", user_agent=USER_AGENTS[MODEL]).get(
        f"/prov/{device_b.token}/{device_b.mac}.cfg"
    )
    assert response.status_code == 200
    assert "ntp.only-a.test" not in response.content.decode()


def test_a_layer_commit_invalidates_again(
    pw, add_device, phone, in_tenant, django_capture_on_commit_callbacks
):
    """A reader that reloaded between the change and its commit cannot keep the old rows."""
    from django_redis import get_redis_connection

    from provisioning.actions import do_set_model_settings
    from provisioning.layers import TENANT_KEY

    key = TENANT_KEY.format(schema=pw.tenant_a.schema_name, pk=pw.tenant_a.pk)
    client = get_redis_connection("default")
    with in_tenant(pw.tenant_a):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            do_set_model_settings(MODEL, {"ntp_server": "ntp.x.test"}, actor=SYSTEM)
        token = client.get(key)
        assert token is not None
        assert callbacks
        for callback in callbacks:
            callback()
        assert client.get(key) != token


def test_repeated_fetches_are_written_in_batches(pw, add_device, phone, in_tenant):
    from django_redis import get_redis_connection

    device = add_device(MAC, MODEL)
    _fetch(phone, device, address="198.51.100.1")  # first fetch: written at once
    with in_tenant(pw.tenant_a):
        row = Device.objects.get(pk=device.pk)
    assert row.status == DeviceStatus.PROVISIONED
    assert row.last_fetch_address == "198.51.100.1"
    first_at = row.last_fetch_at

    _fetch(phone, device, address="198.51.100.2")
    _plain(phone, device)  # from 192.0.2.10, the newest
    with in_tenant(pw.tenant_a):
        assert Device.objects.get(pk=device.pk).last_fetch_address == "198.51.100.1"
    assert get_redis_connection("default").hlen(FETCHES_KEY) == 1  # one entry per device

    assert flush_fetches() == 1
    with in_tenant(pw.tenant_a):
        row = Device.objects.get(pk=device.pk)
    assert row.last_fetch_address == "192.0.2.10"
    assert row.last_fetch_file == f"{device.mac}.cfg"
    assert row.last_fetch_user_agent == USER_AGENTS[MODEL]
    assert first_at <= row.last_fetch_at <= timezone.now() + timedelta(seconds=1)
    assert flush_fetches() == 0  # nothing noted since


def test_the_flush_skips_deleted_devices_and_runs_from_beat(pw, add_device, phone, in_tenant):
    from pbx.celery import app
    from provisioning.actions import do_delete_device
    from provisioning.tasks import flush_fetches as task

    device = add_device(MAC, MODEL)
    other = add_device("0c383ea1b2cb", MODEL, lines=("302",))
    for d in (device, other):
        _fetch(phone, d)
        _fetch(phone, d, address="198.51.100.9")
    with in_tenant(pw.tenant_a):
        do_delete_device(Device.objects.get(pk=other.pk), actor=SYSTEM)
    assert task.apply().get() == 1
    with in_tenant(pw.tenant_a):
        assert Device.objects.get(pk=device.pk).last_fetch_address == "198.51.100.9"
    entry = app.conf.beat_schedule["provisioning.flush_fetches"]
    assert entry["task"] == "provisioning.flush_fetches"
    assert entry["schedule"].run_every.total_seconds() <= 10
