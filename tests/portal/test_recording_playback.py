"""Call recordings in the portal's call history and in an end user's "My calls": the player,
the downloads, the states of a recording not stored yet, the admin's delete, and who may
fetch which recording. Recordings are stored through ``audio.storage`` (this server's disk,
or a real S3 server: moto in server mode) exactly as the upload task stores them.

User story: an admin opens the call history, sees the recorded call with a player and plays
it (the MP3 streamed after the permission check, or from a short-lived signed S3 URL),
downloads the WAV, and deletes it; Dana, an end user, plays the recording of her own call
from "My calls" but gets nothing of a colleague's call or of another tenant's."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest
from django.utils import timezone

from audio.models import Recording, RecordingSettings, RecordingStatus
from pbx.crypto import encrypt
from pbx.models import AuditEntry
from tests.audio.media import tone
from tests.portal.calls_helpers import add_cdr

pytestmark = pytest.mark.django_db

SETTINGS_PAGE = "/portal/recordings/settings/"


@pytest.fixture
def local_storage(settings, tmp_path):
    """The provider's default storage: a directory of this test's."""
    root = tmp_path / "stored"
    root.mkdir()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PBX_RECORDING_STORAGE = {"kind": "local", "location": str(root)}
    return root


@pytest.fixture
def audio_files(tmp_path):
    """A real WAV and MP3 of a short tone, as the conversion leaves them."""
    wav = tone(tmp_path / "call.wav", seconds=0.5, rate=8000, channels=2)
    mp3 = tone(tmp_path / "call.mp3", seconds=0.5, rate=8000, channels=2, kind="mp3")
    return wav, mp3


@pytest.fixture
def record(in_tenant, audio_files, tmp_path):
    """``record(tenant, cdr_id, caller, callee, status=...)``: a recording of that call; a
    stored one uploaded through ``audio.storage.save_recording`` (the task's own upload)."""
    from audio.storage import save_recording

    def make(tenant, cdr_id, caller, callee, *, status=RecordingStatus.STORED, error=""):
        wav, mp3 = audio_files
        with in_tenant(tenant):
            rec = Recording.objects.create(
                recording_id=uuid.uuid4().hex,
                call_id=f"call-{uuid.uuid4().hex[:8]}",
                cdr_id=cdr_id,
                status=status,
                caller=caller,
                callee=callee,
                seconds=0.5,
                error=error,
            )
            if status == RecordingStatus.STORED:
                # Copies: a stored recording's local files are gone after the upload.
                rec.local_wav = str(tmp_path / f"{rec.pk}.wav")
                rec.local_mp3 = str(tmp_path / f"{rec.pk}.mp3")
                with open(rec.local_wav, "wb") as f:
                    f.write(wav.read_bytes())
                with open(rec.local_mp3, "wb") as f:
                    f.write(mp3.read_bytes())
                save_recording(rec)
                rec.stored_at = timezone.now()
                os.remove(rec.local_wav)
                os.remove(rec.local_mp3)
                rec.local_wav = rec.local_mp3 = ""
                rec.save()
            return rec

    return make


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_admin_plays_downloads_and_deletes_a_recording(
    portal, world, in_tenant, local_storage, audio_files, record
):
    wav, mp3 = audio_files
    cdr = add_cdr(world.tenant_a, "rec-1", "101", "102")
    rec = record(world.tenant_a, cdr, "101", "102")
    p = portal(world.a_admin, world.tenant_a)
    mp3_url = f"/portal/recordings/{rec.pk}/audio.mp3"
    wav_url = f"/portal/recordings/{rec.pk}/audio.wav"

    for page in ("/portal/cdrs/", f"/portal/cdrs/{cdr}/"):
        html = p.get(page).content.decode()
        assert f'<audio controls preload="none" src="{mp3_url}"' in html
        assert f'href="{wav_url}?download=1"' in html
    assert "Delete recording" in p.get(f"/portal/cdrs/{cdr}/").content.decode()

    r = p.get(mp3_url)
    assert r.status_code == 200
    assert r["Content-Type"] == "audio/mpeg"
    assert "private" in r["Cache-Control"]
    assert _body(r) == mp3.read_bytes()
    r = p.get(wav_url, {"download": "1"})
    assert r["Content-Type"] == "audio/wav"
    assert r["Content-Disposition"].startswith("attachment;")
    assert _body(r) == wav.read_bytes()
    assert p.get(f"/portal/recordings/{rec.pk}/audio.ogg").status_code == 404

    # Someone who may read the history but not change it cannot delete.
    assert (
        portal(world.a_user, world.tenant_a)
        .post(f"/portal/recordings/{rec.pk}/delete/")
        .status_code
        == 404
    )
    r = p.post(f"/portal/recordings/{rec.pk}/delete/")
    assert r.status_code == 302
    assert r["Location"] == f"/portal/cdrs/{cdr}/"
    with in_tenant(world.tenant_a):
        assert not Recording.objects.filter(pk=rec.pk).exists()
    assert not [f for _, _, files in os.walk(local_storage) for f in files]
    assert AuditEntry.objects.filter(action="recording.delete", tenant=world.tenant_a).exists()
    assert p.get(mp3_url).status_code == 404


def test_a_recording_not_stored_yet_says_so(portal, world, local_storage, record):
    cdr = add_cdr(world.tenant_a, "rec-2", "101", "102")
    pending = record(world.tenant_a, cdr, "101", "102", status=RecordingStatus.PENDING)
    failed = record(
        world.tenant_a, cdr, "101", "102", status=RecordingStatus.FAILED, error="no RTP in pcap"
    )
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/cdrs/{cdr}/").content.decode()
    assert "Recording being processed" in html
    assert 'data-testid="recording-failed"' in html
    assert "no RTP in pcap" in html
    assert "<audio" not in html
    assert p.get(f"/portal/recordings/{pending.pk}/audio.mp3").status_code == 404
    assert p.get(f"/portal/recordings/{failed.pk}/audio.mp3").status_code == 404


def test_another_tenants_recording_is_not_found(portal, world, in_tenant, local_storage, record):
    theirs_cdr = add_cdr(world.tenant_b, "rec-b", "201", "202")
    theirs = record(world.tenant_b, theirs_cdr, "201", "202")
    with in_tenant(world.tenant_a):
        assert not Recording.objects.filter(pk=theirs.pk).exists()
    p = portal(world.a_admin, world.tenant_a)
    for path in (
        f"/portal/recordings/{theirs.pk}/audio.mp3",
        f"/portal/me/recordings/{theirs.pk}/audio.mp3",
    ):
        assert p.get(path).status_code == 404
    assert p.post(f"/portal/recordings/{theirs.pk}/delete/").status_code == 404
    # B's admin on A's host is nobody there.
    assert (
        portal(world.b_admin, world.tenant_a)
        .get(f"/portal/recordings/{theirs.pk}/audio.mp3")
        .status_code
        == 302
    )
    with in_tenant(world.tenant_b):
        assert Recording.objects.filter(pk=theirs.pk).exists()


def test_an_end_user_hears_only_recordings_of_own_calls(
    portal, world, in_tenant, local_storage, audio_files, record, me
):
    _wav, mp3 = audio_files
    own_cdr = add_cdr(world.tenant_a, "rec-own", "103", "101")
    own = record(world.tenant_a, own_cdr, "103", "101")
    other_cdr = add_cdr(world.tenant_a, "rec-other", "101", "102")
    other = record(world.tenant_a, other_cdr, "101", "102")
    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/calls/").content.decode()
    mine = f"/portal/me/recordings/{own.pk}/audio.mp3"
    assert f'<audio controls preload="none" src="{mine}"' in html
    assert f"/portal/me/recordings/{other.pk}/" not in html
    assert "Delete recording" not in p.get(f"/portal/me/calls/{own_cdr}/").content.decode()
    # Her recorded calls only: not the unrecorded one she also made.
    plain_cdr = add_cdr(world.tenant_a, "rec-none", "103", "102")
    html = p.get("/portal/me/calls/", {"recorded": "on"}).content.decode()
    assert f'data-testid="cdr-{own_cdr}"' in html
    assert f'data-testid="cdr-{plain_cdr}"' not in html
    assert f'data-testid="cdr-{plain_cdr}"' in p.get("/portal/me/calls/").content.decode()
    assert _body(p.get(mine)) == mp3.read_bytes()
    # A colleague's call: not through her own URL, and the admin's URL is not hers.
    assert p.get(f"/portal/me/recordings/{other.pk}/audio.mp3").status_code == 404
    assert p.get(f"/portal/recordings/{other.pk}/audio.mp3").status_code == 404
    assert p.get(f"/portal/recordings/{own.pk}/audio.mp3").status_code == 404
    assert p.post(f"/portal/recordings/{own.pk}/delete/").status_code == 404
    # A user without an extension has no calls and so no recordings.
    staff = portal(world.a_user, world.tenant_a)
    assert staff.get(mine).status_code == 404


# --- a real S3 server ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 in server mode on a free port, for this module's tests."""
    import sys
    from pathlib import Path

    port = _free_port()
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(  # noqa: S603
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bucket(s3_server):
    import boto3

    name = f"acme-rec-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )
    client.create_bucket(Bucket=name)
    return name


def _use_s3(in_tenant, tenant, url: str, bucket: str, secret: str = "testing") -> None:  # noqa: S107
    with in_tenant(tenant):
        rs = RecordingSettings.load()
        rs.storage = "s3"
        rs.bucket = bucket
        rs.region = "us-east-1"
        rs.endpoint_url = url
        rs.access_key = "testing"
        rs.secret_encrypted = encrypt(secret)
        rs.save()


def test_a_recording_in_s3_plays_from_a_signed_url(
    portal, world, in_tenant, local_storage, audio_files, record, s3_server, bucket
):
    _wav, mp3 = audio_files
    _use_s3(in_tenant, world.tenant_a, s3_server, bucket)
    cdr = add_cdr(world.tenant_a, "rec-s3", "101", "102")
    rec = record(world.tenant_a, cdr, "101", "102")
    assert rec.storage == f"tenant:s3:{bucket}"
    r = portal(world.a_admin, world.tenant_a).get(f"/portal/recordings/{rec.pk}/audio.mp3")
    assert r.status_code == 302
    signed = r["Location"]
    assert signed.startswith(f"{s3_server}/{bucket}/")
    assert "X-Amz-Signature=" in signed
    assert "X-Amz-Expires=300" in signed
    with urllib.request.urlopen(signed, timeout=10) as answer:  # noqa: S310 - http to moto
        assert answer.read() == mp3.read_bytes()


def test_connection_test_button_against_s3(
    portal, world, in_tenant, local_storage, s3_server, bucket
):
    import boto3

    p = portal(world.a_admin, world.tenant_a)
    form = {
        "policy": "on_demand",
        "retention_days": "30",
        "storage": "s3",
        "bucket": bucket,
        "region": "us-east-1",
        "endpoint_url": s3_server,
        "access_key": "testing",
        "secret": "testing",
        "prefix": "pbx",
        "announcement": "",
        "test": "1",
    }
    r = p.post(SETTINGS_PAGE, form)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="storage-test"' in html
    assert "Connection works" in html, html[html.find("storage-test") - 200 :][:600]
    # Nothing saved by a test, and nothing left in the bucket.
    with in_tenant(world.tenant_a):
        assert RecordingSettings.load().storage == "platform"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    # A bucket that does not exist: the storage's error, never the secret.
    r = p.post(SETTINGS_PAGE, {**form, "bucket": "no-such-bucket-here", "secret": "s3cr3t-XYZ"})
    html = r.content.decode()
    assert "Connection failed" in html
    assert "s3cr3t-XYZ" not in html

    # The provider's storage is not the tenant's to test.
    r = p.post(SETTINGS_PAGE, {**form, "storage": "platform"})
    assert "run and checked by the provider" in r.content.decode()
