"""Call recordings end to end: a call recorded by a real rtpengine (pcap), the engine's
``recording.ready`` request applied as the CDR drain applies it, the conversion to a stereo
WAV (caller left, callee right) and an MP3, the upload to local disk, to an S3 server (moto)
and to Azurite, the download back through the API with the tones found in the audio; a
storage outage retried until it is back, nothing lost; retention per tenant; the conversion
of a hand-made capture with loss, reordering, an SSRC change, DTMF and garbage."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import time
import urllib.request
import wave
from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from audio import pipeline
from audio.models import Recording, RecordingSettings, RecordingStatus, StorageKind
from audio.recordings import pcap_to_wav, read_pcap, wav_to_mp3
from pbx import crypto
from telephony.engine import requests
from telephony.sip.contract import EventType
from tests.conftest import Api

from .rtpcall import record_call, rtp
from .storage_servers import AZURITE_ACCOUNT, AZURITE_KEY

pytestmark = pytest.mark.django_db

CALLER_HZ, CALLEE_HZ = 440.0, 1000.0


# ----------------------------------------------------------------------------- helpers


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[spectrum.argmax()])


def channels(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)


def assert_tones(data: bytes) -> None:
    stereo = channels(data)
    assert len(stereo) > 8000
    assert abs(peak_hz(stereo[:, 0]) - CALLER_HZ) < 10
    assert abs(peak_hz(stereo[:, 1]) - CALLEE_HZ) < 10


def assert_mp3_tones(data: bytes) -> None:
    """An MPEG audio frame first; decoded (sox), the caller's tone left, the callee's right."""
    assert data[0] == 0xFF
    assert data[1] & 0xE0 == 0xE0
    decoded = subprocess.run(
        ["sox", "-t", "mp3", "-", "-t", "wav", "-b", "16", "-"],
        input=data, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert_tones(decoded)


def recorded_call(engine, dirs, seconds: float = 1.5) -> tuple[str, str]:
    """A pcap of a real call, moved into the test's source directory as the engine's."""
    path, caller = record_call(
        engine.ng_port,
        engine.recording_dir,
        seconds=seconds,
        caller_hz=CALLER_HZ,
        callee_hz=CALLEE_HZ,
    )
    target = dirs.source / os.path.basename(path)
    shutil.move(path, target)
    return str(target), caller


def ready(tenant, path: str, caller: str, call_id: str = "call-1", started: float | None = None):
    """Apply ``recording.ready`` as the CDR drain does; returns the Recording."""
    event = {
        "type": EventType.RECORDING_READY,
        "schema": tenant.schema_name,
        "call_id": call_id,
        "path": path,
        "format": "pcap",
        "caller": caller,
        "started": str(started if started is not None else time.time()),
    }
    with schema_context(tenant.schema_name), transaction.atomic():
        requests.handle(event)
        return Recording.objects.filter(call_id=call_id).order_by("-id").first()


def process(tenant, pk: int, capture) -> str | None:
    """Run the pipeline on one recording, its on-commit work (local files removed) done."""
    with schema_context(tenant.schema_name), capture(execute=True):
        return pipeline.process(pk)


def use_storage(tenant, **fields) -> None:
    secret = fields.pop("secret", "")
    with schema_context(tenant.schema_name):
        rs = RecordingSettings.load()
        for k, v in fields.items():
            setattr(rs, k, v)
        rs.secret_encrypted = crypto.encrypt(secret) if secret else ""
        rs.save()


def s3_settings(server, **extra) -> dict:
    return {
        "storage": StorageKind.S3,
        "bucket": server.bucket,
        "region": server.REGION,
        "endpoint_url": server.endpoint,
        "access_key": server.KEY,
        "secret": server.SECRET,
        **extra,
    }


def get(tenant, pk) -> Recording:
    with schema_context(tenant.schema_name):
        return Recording.objects.select_related("cdr").get(pk=pk)


def download(world, pk, fmt="wav") -> bytes:
    """Through the API as tenant A's admin: streamed, or fetched from the signed URL."""
    response = Api("acme.test", world.a_admin).get(
        f"/api/v1/recordings/{pk}/download/?format={fmt}"
    )
    if response.status_code == 302:
        with urllib.request.urlopen(response["Location"], timeout=10) as f:  # noqa: S310
            return f.read()
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


# ------------------------------------------------------------------------- conversion


def test_rtpengine_pcap_to_stereo_wav_and_mp3(rtpengine_recorder, recording_dirs, tmp_path):
    path, caller = recorded_call(rtpengine_recorder, recording_dirs)
    packets = list(read_pcap(path))
    # rtpengine's capture: each packet once, as received, from its sender's own address.
    assert {p.src for p in packets} >= {caller}
    assert len({p.src for p in packets}) == 2
    seconds = pcap_to_wav(path, str(tmp_path / "call.wav"), caller=caller)
    assert 1.3 < seconds < 1.8
    assert_tones((tmp_path / "call.wav").read_bytes())
    wav_to_mp3(str(tmp_path / "call.wav"), str(tmp_path / "call.mp3"))
    head = (tmp_path / "call.mp3").read_bytes()[:3]
    assert head == b"ID3" or head[0] == 0xFF
    # The other party named as caller: the channels swap.
    other = next(p.src for p in packets if p.src != caller)
    pcap_to_wav(path, str(tmp_path / "swapped.wav"), caller=other)
    stereo = channels((tmp_path / "swapped.wav").read_bytes())
    assert abs(peak_hz(stereo[:, 0]) - CALLEE_HZ) < 10


def _pcap(path, packets) -> None:
    """A raw-IP pcap (rtpengine's link type 101) of (time, src, dst, payload) UDP packets."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for t, (sip, sport), (dip, dport), payload in packets:
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0,
                64,
                17,
                0,
                bytes(map(int, sip.split("."))),
                bytes(map(int, dip.split("."))),
            )
            frame = ip + udp
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)))
            f.write(frame)


def test_conversion_keeps_time_through_loss_reordering_ssrc_change_and_junk(tmp_path):
    from telephony.media.codecs import alaw_encode, ulaw_encode

    from .rtpcall import tone

    a, b, engine = ("10.0.0.1", 4000), ("10.0.0.2", 5000), ("10.0.0.9", 30000)
    ulaw = ulaw_encode(np.frombuffer(tone(CALLER_HZ, 4.0), "<i2"))
    alaw = alaw_encode(np.frombuffer(tone(CALLEE_HZ, 4.0), "<i2"))
    t0 = 1_700_000_000.0
    packets = []
    for i in range(200):  # 4 s of 20 ms frames
        t = t0 + i * 0.02
        frame = slice(i * 160, (i + 1) * 160)
        if not 50 <= i < 100:  # the caller is silent (nothing sent) from 1 s to 2 s
            ssrc, ts = (0xAAAA, 1000 + i * 160) if i < 150 else (0xBBBB, 77 + (i - 150) * 160)
            packets.append((t, a, engine, rtp(i, ts, ssrc, ulaw[frame], 0)))
        if i != 20:  # one packet of the callee lost
            packets.append(
                (t, b, engine, rtp(500 + i, 2**32 - 3200 + i * 160, 0xCCCC, alaw[frame], 8))
            )
        if i == 30:  # DTMF, RTCP, not RTP, a cut-short packet
            packets.append(
                (t, a, engine, rtp(9000, 1000 + i * 160, 0xAAAA, b"\x01\x0a\x00\xa0", 101))
            )
            packets.append((t, a, engine, b"\x81\xc8\x00\x06" + b"\x00" * 24))
            packets.append((t, a, engine, b"hello"))
            packets.append((t, a, engine, b"\x80\x00\x00"))
    # Two caller packets swapped in arrival order.
    i, j = next(k for k, p in enumerate(packets) if p[1] == a and p[0] >= t0 + 2.5), None
    j = next(k for k in range(i + 1, len(packets)) if packets[k][1] == a)
    packets[i], packets[j] = packets[j], packets[i]
    _pcap(tmp_path / "t.pcap", packets)
    seconds = pcap_to_wav(str(tmp_path / "t.pcap"), str(tmp_path / "t.wav"), caller="10.0.0.1:4000")
    assert abs(seconds - 4.0) < 0.05
    stereo = channels((tmp_path / "t.wav").read_bytes())
    left, right = stereo[:, 0].astype(float), stereo[:, 1].astype(float)
    assert np.abs(left[8000 + 200 : 16000 - 200]).max() == 0  # the pause kept its second
    assert abs(peak_hz(left[:8000]) - CALLER_HZ) < 10
    assert abs(peak_hz(left[16000:]) - CALLER_HZ) < 10
    assert abs(peak_hz(left[24000:]) - CALLER_HZ) < 10  # after the SSRC change
    assert np.abs(left[24000:32000]).min() >= 0
    assert np.abs(left[24000:32000]).max() > 4000
    assert np.abs(right[20 * 160 : 21 * 160]).max() == 0  # the lost packet is silence
    assert abs(peak_hz(right) - CALLEE_HZ) < 10  # A-law, timestamps wrapping past 2**32


def test_not_a_capture_fails_the_recording_with_its_reason(
    world, recording_dirs, django_capture_on_commit_callbacks
):
    bad = recording_dirs.source / "junk.pcap"
    bad.write_bytes(b"this is no pcap at all")
    rec = ready(world.tenant_a, str(bad), "127.0.0.1:4000", call_id="bad-1")
    assert process(world.tenant_a, rec.pk, django_capture_on_commit_callbacks) == "failed"
    rec = get(world.tenant_a, rec.pk)
    assert rec.status == RecordingStatus.FAILED
    assert "not a pcap" in rec.error
    assert bad.exists()  # kept for a look
    silent = recording_dirs.source / "dtmf-only.pcap"
    engine = ("10.0.0.9", 30000)
    _pcap(silent, [(1.0, ("10.0.0.1", 4000), engine, rtp(1, 160, 7, b"\x01\x0a\x00\xa0", 101))])
    rec = ready(world.tenant_a, str(silent), "10.0.0.1:4000", call_id="bad-2")
    assert process(world.tenant_a, rec.pk, django_capture_on_commit_callbacks) == "failed"
    assert "no G.711 audio" in get(world.tenant_a, rec.pk).error


def test_request_refuses_paths_outside_the_recording_directories(world, recording_dirs, tmp_path):
    outside = tmp_path / "elsewhere.pcap"
    outside.write_bytes(b"x")
    assert ready(world.tenant_a, str(outside), "1.2.3.4:5", call_id="evil") is None
    link = recording_dirs.source / "link.pcap"
    link.symlink_to(outside)
    assert ready(world.tenant_a, str(link), "1.2.3.4:5", call_id="evil") is None


# ---------------------------------------------------------------------------- storage


def _store_and_download(world, engine, dirs, capture, call_id: str) -> Recording:
    path, caller = recorded_call(engine, dirs)
    rec = ready(world.tenant_a, path, caller, call_id=call_id)
    again = ready(world.tenant_a, path, caller, call_id=call_id)  # delivered twice
    assert again.pk == rec.pk
    assert process(world.tenant_a, rec.pk, capture) == RecordingStatus.STORED
    rec = get(world.tenant_a, rec.pk)
    assert rec.seconds > 1.3
    assert rec.size > 0
    assert rec.stored_at is not None
    assert not os.path.exists(path), "the raw file goes once stored"
    assert list(dirs.work.rglob("*.*")) == [], "the local WAV and MP3 go once stored"
    assert_tones(download(world, rec.pk))
    assert_mp3_tones(download(world, rec.pk, "mp3"))
    return rec


def test_local_storage(
    world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks
):
    rec = _store_and_download(
        world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks, "local-1"
    )
    assert rec.storage == f"platform:local:{recording_dirs.local}"
    stored = recording_dirs.local / rec.wav_key
    assert stored.is_file()
    assert rec.wav_key.startswith(f"{world.tenant_a.schema_name}/")


def test_s3_storage(
    world, rtpengine_recorder, recording_dirs, s3_server, django_capture_on_commit_callbacks
):
    use_storage(world.tenant_a, **s3_settings(s3_server, prefix="pbx"))
    rec = _store_and_download(
        world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks, "s3-1"
    )
    assert rec.storage == f"tenant:s3:{s3_server.bucket}"
    response = Api("acme.test", world.a_admin).get(f"/api/v1/recordings/{rec.pk}/download/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{s3_server.endpoint}/{s3_server.bucket}/pbx/")
    assert "X-Amz-Expires=300" in response["Location"]


def test_azure_storage(
    world, rtpengine_recorder, recording_dirs, azurite, django_capture_on_commit_callbacks
):
    use_storage(
        world.tenant_a,
        storage=StorageKind.AZURE,
        bucket=azurite.container,
        account_name=AZURITE_ACCOUNT,
        endpoint_url=azurite.endpoint,
        secret=AZURITE_KEY,
    )
    rec = _store_and_download(
        world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks, "az-1"
    )
    assert rec.storage == f"tenant:azure:{azurite.container}"
    response = Api("acme.test", world.a_admin).get(f"/api/v1/recordings/{rec.pk}/download/")
    assert response.status_code == 302
    assert "sig=" in response["Location"]


def test_platform_azure_by_connection_string(
    world, rtpengine_recorder, recording_dirs, azurite, settings, django_capture_on_commit_callbacks
):
    settings.PBX_RECORDING_STORAGE = {
        "kind": "azure",
        "bucket": azurite.container,
        "secret": f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={azurite.endpoint};",
    }
    rec = _store_and_download(
        world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks, "az-2"
    )
    assert rec.storage == f"platform:azure:{azurite.container}"


def test_storage_outage_is_retried_and_loses_nothing(
    world, rtpengine_recorder, recording_dirs, django_capture_on_commit_callbacks
):
    from .storage_servers import MotoS3

    server = MotoS3(bucket="outage")  # not started: the storage is down
    use_storage(world.tenant_a, **s3_settings(server))
    path, caller = recorded_call(rtpengine_recorder, recording_dirs)
    rec = ready(world.tenant_a, path, caller, call_id="down-1")
    capture = django_capture_on_commit_callbacks
    for attempt in (1, 2):
        assert process(world.tenant_a, rec.pk, capture) == RecordingStatus.CONVERTED
        rec = get(world.tenant_a, rec.pk)
        assert rec.attempts == attempt
        assert rec.error.startswith("upload:")
        wait = (rec.next_attempt_at - timezone.now()).total_seconds()
        assert pipeline.backoff(attempt) - 5 < wait <= pipeline.backoff(attempt)
        assert os.path.isfile(rec.local_wav)
        assert os.path.isfile(rec.local_mp3)
        assert os.path.isfile(path)
    # Not due yet; due once its time came.
    assert (world.tenant_a.schema_name, rec.pk) not in pipeline.sweep().due
    later = rec.next_attempt_at + timedelta(seconds=1)
    assert (world.tenant_a.schema_name, rec.pk) in pipeline.sweep(now=later).due
    # Meanwhile the API streams the local copy.
    assert_tones(download(world, rec.pk))
    server.start()
    try:
        assert process(world.tenant_a, rec.pk, capture) == RecordingStatus.STORED
        rec = get(world.tenant_a, rec.pk)
        assert (rec.error, rec.next_attempt_at) == ("", None)
        assert not os.path.exists(path)
        assert not os.path.exists(rec.local_wav or "/nonexistent")
        assert_tones(download(world, rec.pk))
    finally:
        server.stop()
    assert (world.tenant_a.schema_name, rec.pk) not in pipeline.sweep(now=later).due


def test_lost_tasks_are_swept(world, recording_dirs):
    old = timezone.now() - timedelta(hours=1)
    with schema_context(world.tenant_a.schema_name):
        lost = Recording.objects.create(recording_id="lost-1", call_id="c", created_at=old)
        fresh = Recording.objects.create(recording_id="fresh-1", call_id="c")
        done = Recording.objects.create(
            recording_id="done-1", call_id="c", created_at=old, status=RecordingStatus.STORED
        )
    due = pipeline.sweep().due
    schema = world.tenant_a.schema_name
    assert (schema, lost.pk) in due
    assert (schema, fresh.pk) not in due
    assert (schema, done.pk) not in due


def _cdr(tenant, call_id: str, caller: str, callee: str) -> None:
    from telephony.engine.cdr import apply_events

    common = {"call_id": call_id, "schema": tenant.schema_name, "segment": "1"}
    t0 = time.time() - 10
    with schema_context(tenant.schema_name):
        apply_events(
            call_id,
            [
                {"type": "call.started", "ts": f"{t0}", "caller": caller, "callee": callee,
                 **common},
                {"type": "call.ended", "ts": f"{t0 + 5}", "status": "answered", **common},
            ],
        )  # fmt: skip


def test_the_calls_cdr_is_linked_whenever_it_comes(
    world, recording_dirs, rtpengine_recorder, django_capture_on_commit_callbacks
):
    from audio.tasks import process_recording

    capture = django_capture_on_commit_callbacks
    # The CDR first: linked by the request.
    _cdr(world.tenant_a, "early-cdr", "101", "103")
    path, caller = recorded_call(rtpengine_recorder, recording_dirs, seconds=0.5)
    early = ready(world.tenant_a, path, caller, call_id="early-cdr")
    assert (early.cdr_id is not None, early.caller, early.callee) == (True, "101", "103")
    # The recording first: the task links the CDR written meanwhile.
    path, caller = recorded_call(rtpengine_recorder, recording_dirs, seconds=0.5)
    rec = ready(world.tenant_a, path, caller, call_id="late-cdr")
    assert rec.cdr_id is None
    _cdr(world.tenant_a, "late-cdr", "101", "102")
    with capture(execute=True):
        assert process_recording(world.tenant_a.schema_name, rec.pk) == RecordingStatus.STORED
    rec = get(world.tenant_a, rec.pk)
    assert rec.cdr.call_id == "late-cdr"
    assert (rec.caller, rec.callee) == ("101", "102")
    # Stored before its CDR: the sweeper links it.
    path, caller = recorded_call(rtpengine_recorder, recording_dirs, seconds=0.5)
    last = ready(world.tenant_a, path, caller, call_id="last-cdr")
    assert process(world.tenant_a, last.pk, capture) == RecordingStatus.STORED
    _cdr(world.tenant_a, "last-cdr", "102", "101")
    assert pipeline.sweep().linked == 1
    last = get(world.tenant_a, last.pk)
    assert last.cdr.call_id == "last-cdr"
    assert (last.caller, last.callee) == ("102", "101")


# -------------------------------------------------------------------------- retention


def test_retention_deletes_old_recordings_of_that_tenant_only(
    world, recording_dirs, django_capture_on_commit_callbacks
):
    now = timezone.now()
    made = {}
    for tenant in (world.tenant_a, world.tenant_b):
        with schema_context(tenant.schema_name):
            for age in (40, 10):
                src = recording_dirs.source / f"{tenant.schema_name}-{age}.wav"
                with wave.open(str(src), "wb") as w:
                    w.setnchannels(2)
                    w.setsampwidth(2)
                    w.setframerate(8000)
                    w.writeframes(b"\x00\x00" * 1600)
                rec = Recording.objects.create(
                    recording_id=f"ret-{tenant.slug}-{age}",
                    call_id=f"ret-{age}",
                    started_at=now - timedelta(days=age),
                    source_path=str(src),
                    source_format="wav",
                )
                made[tenant.schema_name, age] = rec
        for (schema, _), rec in made.items():
            if schema == tenant.schema_name:
                process(tenant, rec.pk, django_capture_on_commit_callbacks)
    use_storage(world.tenant_a, retention_days=30)
    old_file = (
        recording_dirs.local / get(world.tenant_a, made[world.tenant_a.schema_name, 40].pk).wav_key
    )
    assert old_file.is_file()
    deleted = pipeline.purge_expired()
    assert deleted[world.tenant_a.schema_name] == 1
    assert world.tenant_b.schema_name not in deleted  # no retention: kept for ever
    with schema_context(world.tenant_a.schema_name):
        assert set(Recording.objects.values_list("recording_id", flat=True)) >= {"ret-acme-10"}
        assert not Recording.objects.filter(recording_id="ret-acme-40").exists()
    with schema_context(world.tenant_b.schema_name):
        assert (
            Recording.objects.filter(recording_id__in=["ret-beta-40", "ret-beta-10"]).count() == 2
        )
    assert not old_file.exists()


def test_azure_at_a_wrong_address_is_retried_once_it_is_right(
    world, rtpengine_recorder, recording_dirs, azurite, django_capture_on_commit_callbacks
):
    from tests.conftest import closed_port

    wrong = f"http://127.0.0.1:{closed_port()}/{AZURITE_ACCOUNT}"
    common = {"storage": StorageKind.AZURE, "bucket": azurite.container,
              "account_name": AZURITE_ACCOUNT, "secret": AZURITE_KEY}  # fmt: skip
    use_storage(world.tenant_a, endpoint_url=wrong, **common)
    path, caller = recorded_call(rtpengine_recorder, recording_dirs)
    rec = ready(world.tenant_a, path, caller, call_id="az-down")
    capture = django_capture_on_commit_callbacks
    assert process(world.tenant_a, rec.pk, capture) == RecordingStatus.CONVERTED
    rec = get(world.tenant_a, rec.pk)
    assert rec.attempts == 1
    assert "upload:" in rec.error
    assert os.path.isfile(rec.local_wav)
    use_storage(world.tenant_a, endpoint_url=azurite.endpoint, **common)
    assert process(world.tenant_a, rec.pk, capture) == RecordingStatus.STORED
    assert_tones(download(world, rec.pk))


def test_the_sweeper_asks_each_tenant_once(world, recording_dirs, django_assert_num_queries):
    """The sweep runs every minute: one query for the tenants, then one per tenant, whether or
    not anything waits there."""
    from tenants.access import live_tenants

    tenants = live_tenants().count()
    with django_assert_num_queries(1 + tenants):
        assert pipeline.sweep() == pipeline.Sweep([], 0)
