"""The recording settings in the snapshots the engines read: the tenant's policy and its
announcement (``audio.RecordingSettings``), each extension's and each trunk's policy; a change
of the settings republishes the tenant's snapshot."""

from __future__ import annotations

import secrets

import pytest
import redis
from django.conf import settings

from audio.models import Prompt, RecordingSettings, media_path
from audio.recording_settings import do_update_recording_settings
from pbx.audit import SYSTEM
from telephony.engine.carriers import build_carriers
from telephony.engine.snapshots import build_snapshot, published_snapshot
from telephony.models import Extension
from telephony.sip.contract import RecordingPolicy, RecordingSnapshot
from trunks.models import Trunk


@pytest.fixture
def prefix(settings):
    settings.SIP_REDIS_PREFIX = f"pbx{secrets.token_hex(3)}:"
    yield settings.SIP_REDIS_PREFIX
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=settings.SIP_REDIS_PREFIX + "*"):
        client.delete(key)
    client.close()


def test_the_snapshot_carries_the_tenants_and_extensions_policies(world, in_tenant):
    """Story: acme records always, with its announcement; one extension records on demand."""
    tenant = world.tenant_a
    with in_tenant(tenant):
        prompt = Prompt.objects.create(name="recorded-notice", file="prompts/own/notice.wav")
        rec = RecordingSettings.load()
        rec.policy, rec.announce, rec.announcement = "always", True, prompt
        rec.save()
        ext = Extension.objects.order_by("number").first()
        Extension.objects.filter(pk=ext.pk).update(recording=RecordingPolicy.ON_DEMAND)
    snap = build_snapshot(tenant)
    assert snap.recording == RecordingSnapshot(
        policy="always", announcement=media_path("prompts/own/notice.wav")
    )
    assert snap.extensions[ext.number].recording == "on_demand"
    assert {e.recording for n, e in snap.extensions.items() if n != ext.number} == {""}
    with in_tenant(tenant):
        RecordingSettings.objects.filter(pk=1).update(announce=False)
    assert build_snapshot(tenant).recording.announcement == ""  # turned off: none


def test_a_tenant_without_settings_never_records(world):
    assert build_snapshot(world.tenant_b).recording == RecordingSnapshot(policy="never")


def test_a_trunks_policy_is_in_the_carrier_snapshot(world):
    trunk = Trunk.objects.create(
        name="Carrier", host="sip.carrier.test", tenant=world.tenant_a, recording="always"
    )
    other = Trunk.objects.create(name="Other", host="sip.other.test", tenant=world.tenant_b)
    carriers = build_carriers()
    assert carriers.trunks[trunk.pk].recording == "always"
    assert carriers.trunks[other.pk].recording == ""


def test_changing_the_settings_republishes_the_snapshot(
    world, in_tenant, prefix, django_capture_on_commit_callbacks
):
    """Story: an admin switches acme to on-demand recording; the engines see it."""
    tenant = world.tenant_a
    with in_tenant(tenant), django_capture_on_commit_callbacks(execute=True):
        do_update_recording_settings(actor=SYSTEM, fields={"policy": RecordingPolicy.ON_DEMAND})
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        published = published_snapshot(client, tenant.sip_domain)
    finally:
        client.close()
    assert published is not None
    assert published.recording.policy == "on_demand"
    # Only acme's snapshot was rebuilt: beta's is not even published under this prefix.
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert published_snapshot(client, world.tenant_b.sip_domain) is None
    finally:
        client.close()
