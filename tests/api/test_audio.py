"""Prompts, music on hold, mailboxes and voicemail in the REST API, on the tenant's host:
uploads converted (a bad file is a 400 field error, never a 500), recordings streamed back,
writes audited through ``audio.actions``; an end user reaches its own mailbox and messages
and nothing else; another tenant's objects are 404."""

import shutil

import pytest
from django.db import connection

from audio.models import Mailbox, VoicemailMessage
from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.sip.contract import pin_matches
from tests.audio.media import tone
from tests.audio.test_engine_side import engine_request
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def multipart(client, method, path, data):
    response = getattr(client.client, method)(path, data, format="multipart")
    connection.set_schema_to_public()
    return response


def wav(tmp_path, name="t.wav", **kw):
    return open(tone(tmp_path / name, **kw), "rb")  # noqa: SIM115 - the client reads it


def leave(tenant, media, tmp_path, box, message):
    folder = media / "tenants" / tenant.schema_name / "voicemail" / box
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(tone(tmp_path / f"{message}.wav", rate=8000, channels=1), folder / f"{message}.wav")
    engine_request(tenant, type="voicemail.left", box=box, message=message,
                   path=folder / f"{message}.wav", caller="+12125550100", seconds="1")  # fmt: skip


def test_prompts(api, world, media, tmp_path):
    admin = api(world.a_admin, world.tenant_a)
    r = multipart(admin, "post", "/api/v1/prompts/",
                  {"name": "welcome", "description": "Ours", "file": wav(tmp_path)})  # fmt: skip
    assert r.status_code == 201, r.content
    prompt = r.json()
    assert (prompt["name"], prompt["seconds"], prompt["original_name"]) == ("welcome", 1.0, "t.wav")
    assert "file" not in prompt
    r = multipart(admin, "post", "/api/v1/prompts/",
                  {"name": "ivr-main", "file": open(__file__, "rb")})  # noqa: SIM115  # fmt: skip
    assert r.status_code == 400
    assert r.json()["fields"] == {"file": ["not a WAV or MP3 file we can read"]}
    r = multipart(admin, "post", "/api/v1/prompts/", {"name": "x y", "file": wav(tmp_path)})
    assert (r.status_code, list(r.json()["fields"])) == (400, ["name"])
    r = multipart(admin, "post", "/api/v1/prompts/", {"name": "welcome", "file": wav(tmp_path)})
    assert r.status_code == 409
    assert admin.get("/api/v1/prompts/").json()["total"] == 1

    r = admin.get(f"/api/v1/prompts/{prompt['id']}/audio/")
    assert (r.status_code, r["Content-Type"]) == (200, "audio/wav")
    assert b"".join(r.streaming_content)[:4] == b"RIFF"
    r = multipart(admin, "patch", f"/api/v1/prompts/{prompt['id']}/",
                  {"file": wav(tmp_path, "long.mp3", seconds=2, kind="mp3")})  # fmt: skip
    assert (r.status_code, r.json()["seconds"]) == (200, pytest.approx(2.0, abs=0.05))
    r = admin.patch(f"/api/v1/prompts/{prompt['id']}/", {"description": "Changed"})
    assert r.json()["description"] == "Changed"
    assert admin.delete(f"/api/v1/prompts/{prompt['id']}/").status_code == 204
    assert {"prompt.create", "prompt.update", "prompt.delete"} <= set(
        AuditEntry.objects.filter(actor=world.a_admin).values_list("action", flat=True)
    )


def test_music_classes_and_tracks(api, world, media, tmp_path):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/music-classes/", {"name": "Jazz", "is_default": True})
    assert r.status_code == 201, r.content
    jazz = r.json()["id"]
    ids = []
    for n in range(2):
        r = multipart(admin, "post", f"/api/v1/music-classes/{jazz}/tracks/",
                      {"file": wav(tmp_path, f"{n}.wav")})  # fmt: skip
        assert r.status_code == 201, r.content
        ids.append(r.json()["id"])
    r = multipart(admin, "post", f"/api/v1/music-classes/{jazz}/tracks/",
                  {"file": open(__file__, "rb")})  # noqa: SIM115  # fmt: skip
    assert (r.status_code, list(r.json()["fields"])) == (400, ["file"])
    r = admin.post(f"/api/v1/music-classes/{jazz}/order/", {"tracks": ids[::-1]})
    assert [t["id"] for t in r.json()["tracks"]] == ids[::-1]
    assert (
        admin.post(f"/api/v1/music-classes/{jazz}/order/", {"tracks": [ids[0]]}).status_code == 400
    )
    r = admin.delete(f"/api/v1/music-classes/{jazz}/tracks/{ids[0]}/")
    assert r.status_code == 204
    r = admin.patch(f"/api/v1/music-classes/{jazz}/", {"name": "Smooth", "is_default": False})
    assert (r.json()["name"], r.json()["is_default"], len(r.json()["tracks"])) == (
        "Smooth",
        False,
        1,
    )
    assert admin.delete(f"/api/v1/music-classes/{jazz}/").status_code == 204


def test_mailboxes_and_messages_for_admins(api, world, media, tmp_path):
    a = world.tenant_a
    admin = api(world.a_admin, a)
    assert [b["extension"] for b in admin.get("/api/v1/mailboxes/").json()["items"]] == [
        "101",
        "102",
    ]
    r = admin.patch("/api/v1/mailboxes/101/", {"pin": "2580", "busy": False, "max_seconds": 60})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["has_pin"], body["busy"], body["max_seconds"]) == (True, False, 60)
    assert "pin" not in body
    r = admin.patch("/api/v1/mailboxes/101/", {"pin": "1111", "max_seconds": 9000, "attach": "ogg"})
    assert (r.status_code, set(r.json()["fields"])) == (400, {"pin", "max_seconds", "attach"})
    r = multipart(admin, "put", "/api/v1/mailboxes/101/greetings/busy/", {"file": wav(tmp_path)})
    assert (r.status_code, r.json()["greeting_busy"]) == (200, True)
    with open(__file__, "rb") as text:
        r = multipart(admin, "put", "/api/v1/mailboxes/101/greetings/busy/", {"file": text})
    assert r.status_code == 400
    assert admin.delete("/api/v1/mailboxes/101/greetings/busy/").status_code == 204
    assert admin.delete("/api/v1/mailboxes/101/greetings/holiday/").status_code == 404
    assert admin.get("/api/v1/mailboxes/999/").status_code == 404

    leave(a, media, tmp_path, "101", "m-101")
    leave(a, media, tmp_path, "102", "m-102")
    items = admin.get("/api/v1/voicemail/").json()["items"]
    assert {m["box"] for m in items} == {"101", "102"}
    assert admin.get("/api/v1/voicemail/", {"box": "102"}).json()["total"] == 1
    assert admin.get("/api/v1/voicemail/", {"folder": "saved"}).json()["total"] == 0
    assert admin.get("/api/v1/voicemail/", {"folder": "junk"}).status_code == 400
    message = next(m for m in items if m["box"] == "101")
    r = admin.get(f"/api/v1/voicemail/{message['id']}/audio/")
    assert (r.status_code, r["Content-Type"]) == (200, "audio/wav")
    r = admin.post(f"/api/v1/voicemail/{message['id']}/save/")
    assert (r.json()["folder"], r.json()["heard_at"] is not None) == ("saved", True)
    assert admin.delete(f"/api/v1/voicemail/{message['id']}/").status_code == 204
    assert admin.get(f"/api/v1/voicemail/{message['id']}/").status_code == 404


def test_an_end_user_reaches_only_its_own_mailbox(api, world, in_tenant, media, tmp_path):
    from telephony.actions import do_create_extension

    a = world.tenant_a
    with in_tenant(a):
        do_create_extension(number="160", display_name="Eve", email="eve@acme.test",
                            web_password=PASSWORD, actor=SYSTEM)  # fmt: skip
    from tenants.models import User

    eve = api(User.objects.get(email="eve@acme.test", tenant=a), a)
    leave(a, media, tmp_path, "160", "eve-1")
    leave(a, media, tmp_path, "101", "other-1")
    assert [b["extension"] for b in eve.get("/api/v1/mailboxes/").json()["items"]] == ["160"]
    assert eve.get("/api/v1/mailboxes/101/").status_code == 404
    assert eve.patch("/api/v1/mailboxes/101/", {"always": True}).status_code == 404
    r = eve.patch("/api/v1/mailboxes/160/", {"pin": "8642", "email_enabled": True})
    assert r.status_code == 200, r.content
    with in_tenant(a):
        box = Mailbox.objects.get(extension__number="160")
        assert pin_matches(box.pin, "8642")
        assert box.email_enabled  # mailed to Eve's sign-in address
        other = VoicemailMessage.objects.get(message_id="other-1")
    items = eve.get("/api/v1/voicemail/").json()["items"]
    assert [m["message_id"] for m in items] == ["eve-1"]
    for method, path in (("get", ""), ("get", "audio/"), ("post", "save/"), ("delete", "")):
        r = getattr(eve, method)(f"/api/v1/voicemail/{other.pk}/{path}")
        assert r.status_code == 404, (method, path)
    assert eve.post(f"/api/v1/voicemail/{items[0]['id']}/save/").status_code == 200
    assert eve.delete(f"/api/v1/voicemail/{items[0]['id']}/").status_code == 204
    # Prompts and music are the admins'.
    assert eve.get("/api/v1/prompts/").status_code == 403
    # A user without an extension has no mailbox to reach.
    staff = api(world.a_user, a)
    assert staff.get("/api/v1/mailboxes/").status_code == 403
    assert staff.get("/api/v1/voicemail/").status_code == 403


def test_another_tenants_objects_are_404(api, world, media, tmp_path):
    a_admin = api(world.a_admin, world.tenant_a)
    prompt = multipart(a_admin, "post", "/api/v1/prompts/",
                       {"name": "welcome", "file": wav(tmp_path)}).json()  # fmt: skip
    music = a_admin.post("/api/v1/music-classes/", {"name": "Jazz"}).json()
    leave(world.tenant_a, media, tmp_path, "101", "iso-1")
    message = a_admin.get("/api/v1/voicemail/").json()["items"][0]
    b_admin = api(world.b_admin, world.tenant_b)
    for method, path in (
        ("get", f"prompts/{prompt['id']}/"), ("get", f"prompts/{prompt['id']}/audio/"),
        ("delete", f"prompts/{prompt['id']}/"), ("get", f"music-classes/{music['id']}/"),
        ("delete", f"music-classes/{music['id']}/"), ("get", "mailboxes/101/"),
        ("patch", "mailboxes/101/"), ("get", f"voicemail/{message['id']}/"),
        ("get", f"voicemail/{message['id']}/audio/"), ("delete", f"voicemail/{message['id']}/"),
    ):  # fmt: skip
        r = getattr(b_admin, method)(f"/api/v1/{path}")
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND"), (method, path)
    # Tenant A's admin on tenant B's host: not its tenant at all.
    stranger = api(world.a_admin, world.tenant_b)
    assert stranger.get("/api/v1/voicemail/").status_code in (401, 404)
    assert a_admin.get(f"/api/v1/voicemail/{message['id']}/").status_code == 200
