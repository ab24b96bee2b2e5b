"""The recordings API: who sees which recordings (an admin all of its tenant's, an end user
those of its own extension's calls, another tenant nothing), the filters, download of a
recording still waiting for its upload, delete, bad input; and the live recording control of
a call (``RecordCall`` on the engines' control channel, tenant-scoped)."""

from __future__ import annotations

import json
import time
import wave
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.conf import settings
from django_tenants.utils import schema_context

from audio.models import Recording, RecordingStatus
from pbx.audit import SYSTEM

pytestmark = pytest.mark.django_db


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def dana(world, in_tenant):
    """Extension 103 of tenant A with its own portal user."""
    from telephony.actions import do_create_extension
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        do_create_extension(
            number="103",
            display_name="Dana",
            email="dana@acme.test",
            web_password="Correct-Horse-Desk-42x",
            sip_password="Sip-Secret-Pass-77",
            actor=SYSTEM,
        )
        return Extension.objects.select_related("user").get(number="103").user


def _rows(tenant, rows) -> dict[str, Recording]:
    made = {}
    with schema_context(tenant.schema_name):
        for rid, caller, callee, started in rows:
            made[rid] = Recording.objects.create(
                recording_id=rid, call_id=f"call-{rid}", caller=caller, callee=callee,
                started_at=started, status=RecordingStatus.STORED,
            )  # fmt: skip
    return made


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["recording_id"] for item in response.json()["items"]]


def test_admins_see_all_end_users_their_own_other_tenants_nothing(world, api, dana):
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    a = _rows(world.tenant_a, [
        ("a1", "101", "103", t), ("a2", "103", "+12125550100", t + timedelta(days=1)),
        ("a3", "101", "102", t + timedelta(days=2)),
    ])  # fmt: skip
    b = _rows(world.tenant_b, [("b1", "201", "202", t)])
    admin = api(world.a_admin, world.tenant_a)
    assert ids(admin.get("/api/v1/recordings/")) == ["a3", "a2", "a1"]
    assert ids(admin.get("/api/v1/recordings/", {"extension": "103"})) == ["a2", "a1"]
    assert ids(admin.get("/api/v1/recordings/", {"call": "call-a3"})) == ["a3"]
    assert ids(
        admin.get(
            "/api/v1/recordings/",
            {"started_after": "2026-03-02T00:00:00Z", "started_before": "2026-03-03T00:00:00Z"},
        )
    ) == ["a2"]
    bad = admin.get("/api/v1/recordings/", {"started_after": "yesterday"})
    assert bad.status_code == 400
    assert "started_after" in bad.json()["fields"]
    # Dana (extension 103) sees the calls she was in, never 101's call with 102.
    own = api(dana, world.tenant_a)
    assert ids(own.get("/api/v1/recordings/")) == ["a2", "a1"]
    assert own.get(f"/api/v1/recordings/{a['a3'].pk}/").status_code == 404
    assert own.get(f"/api/v1/recordings/{a['a3'].pk}/download/").status_code == 404
    assert own.get(f"/api/v1/recordings/{a['a1'].pk}/").status_code == 200
    assert own.delete(f"/api/v1/recordings/{a['a1'].pk}/").status_code == 403
    # Tenant B's admin: only B's; A's rows are not there on B's host, and A's host refuses.
    other = api(world.b_admin, world.tenant_b)
    assert ids(other.get("/api/v1/recordings/")) == ["b1"]
    with schema_context(world.tenant_b.schema_name):
        b_ids = set(Recording.objects.values_list("pk", flat=True))
    for rec in a.values():
        if rec.pk not in b_ids:
            assert other.get(f"/api/v1/recordings/{rec.pk}/").status_code == 404
            assert other.get(f"/api/v1/recordings/{rec.pk}/download/").status_code == 404
            assert other.delete(f"/api/v1/recordings/{rec.pk}/").status_code == 404
    assert api(world.b_admin, world.tenant_a).get("/api/v1/recordings/").status_code == 401
    assert b["b1"].pk in b_ids


def test_download_of_a_local_copy_bad_format_and_delete(world, api, tmp_path, settings):
    settings.PBX_RECORDING_STORAGE = {"kind": "local", "location": str(tmp_path / "stored")}
    wav, mp3 = tmp_path / "x.wav", tmp_path / "x.mp3"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x00" * 3200)
    mp3.write_bytes(b"\xff\xe3" + b"\x00" * 100)
    with schema_context(world.tenant_a.schema_name):
        rec = Recording.objects.create(
            recording_id="dl-1", call_id="dl", status=RecordingStatus.CONVERTED,
            local_wav=str(wav), local_mp3=str(mp3),
        )  # fmt: skip
        failed = Recording.objects.create(
            recording_id="dl-2", call_id="dl2", status=RecordingStatus.FAILED,
            error="conversion: not a pcap file",
        )  # fmt: skip
    admin = api(world.a_admin, world.tenant_a)
    got = admin.get(f"/api/v1/recordings/{rec.pk}/download/")
    assert got.status_code == 200
    assert got["Content-Type"] == "audio/wav"
    assert b"".join(got.streaming_content) == wav.read_bytes()
    got = admin.get(f"/api/v1/recordings/{rec.pk}/download/", {"format": "mp3"})
    assert got["Content-Type"] == "audio/mpeg"
    bad = admin.get(f"/api/v1/recordings/{rec.pk}/download/", {"format": "ogg"})
    assert bad.status_code == 400
    assert "format" in bad.json()["fields"]
    gone = admin.get(f"/api/v1/recordings/{failed.pk}/download/")
    assert gone.status_code == 404
    assert "not a pcap" in gone.json()["message"]
    assert admin.delete(f"/api/v1/recordings/{rec.pk}/").status_code == 204
    assert not wav.exists()
    assert not mp3.exists()
    with schema_context(world.tenant_a.schema_name):
        assert not Recording.objects.filter(pk=rec.pk).exists()


def _control(r, pubsub, call_id: str) -> dict | None:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.5)
        if m and m["type"] == "message" and call_id.encode() in m["data"]:
            return json.loads(m["data"])
    return None


def test_recording_control_of_a_live_call(world, api, r, dana):
    ka = f"sip:calls:{world.tenant_a.schema_name}"
    kb = f"sip:calls:{world.tenant_b.schema_name}"
    call = {"call_id": "rec-a", "state": "answered", "caller": "101", "callee": "102",
            "started_at": time.time(), "answered_at": time.time(), "legs": []}  # fmt: skip
    r.hset(ka, "rec-a", json.dumps(call))
    r.hset(ka, "rec-dana", json.dumps({**call, "call_id": "rec-dana", "callee": "103"}))
    r.hset(kb, "rec-b", json.dumps({**call, "call_id": "rec-b", "caller": "201"}))
    pubsub = r.pubsub()
    pubsub.subscribe("sip:control")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    try:
        admin = api(world.a_admin, world.tenant_a)
        answer = admin.post("/api/v1/calls/rec-a/recording/", {"action": "start"})
        assert answer.status_code == 202
        assert _control(r, pubsub, "rec-a") == {
            "op": "record", "schema": world.tenant_a.schema_name, "call_id": "rec-a",
            "action": "start", "by": "api",
        }  # fmt: skip
        bad = admin.post("/api/v1/calls/rec-a/recording/", {"action": "explode"})
        assert bad.status_code == 400
        assert "action" in bad.json()["fields"]
        # Another tenant's call, an unknown one: 404, nothing sent.
        assert admin.post("/api/v1/calls/rec-b/recording/", {"action": "stop"}).status_code == 404
        assert admin.post("/api/v1/calls/nope/recording/", {"action": "stop"}).status_code == 404
        assert _control(r, pubsub, "rec-b") is None
        # An end user: its own call only.
        own = api(dana, world.tenant_a)
        assert own.post("/api/v1/calls/rec-a/recording/", {"action": "pause"}).status_code == 404
        assert own.post("/api/v1/calls/rec-dana/recording/", {"action": "pause"}).status_code == 202
        assert _control(r, pubsub, "rec-dana")["action"] == "pause"
        assert (
            api(None, world.tenant_a)
            .post("/api/v1/calls/rec-a/recording/", {"action": "stop"})
            .status_code
            == 401
        )
    finally:
        pubsub.close()
        r.hdel(ka, "rec-a", "rec-dana")
        r.hdel(kb, "rec-b")
