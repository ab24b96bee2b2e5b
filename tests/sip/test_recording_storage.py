"""Call recording from the phone to object storage and back, every part real: pjsua2 phones
call through the engine, rtpengine records the call (pcap), the engine reports it
(``recording.ready``), the CDR drain turns that into a recording, the pipeline converts it
to a stereo WAV and an MP3 and uploads both to S3 (moto's server) or Azure Blob (Azurite), and
the tenant's admin downloads them through the API. Only the caller plays a tone (1 kHz), so
the recording must have it on the left (caller) channel and silence on the right."""

from __future__ import annotations

import io
import subprocess
import wave
from collections.abc import Iterator

import numpy as np
import pytest
from django_tenants.utils import schema_context

from audio import pipeline
from audio.models import Recording, RecordingStatus, StorageKind
from telephony.sip import contract
from telephony.sip.calls.anchor import recordable_codecs
from tests.audio.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, MotoS3
from tests.audio.test_recordings import download, s3_settings, use_storage
from tests.sip.callkit import connect, drain_cdr_stream, ended, register
from tests.sip.engine_fixtures import EngineHandle, wait_until
from tests.sip.test_recording import policy, recording_pbx, requests

__all__ = ["recording_pbx"]  # a fixture, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

TONE_HZ = 1000.0


@pytest.fixture(scope="module")
def s3_server() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    server = Azurite()
    server.start()
    yield server
    server.stop()


def recorded_call(engine: EngineHandle, phones, settings) -> dict[str, str]:
    """101 calls 102 and plays its tone for a while; 102 stays silent. The engine's
    ``recording.ready`` once both have hung up."""
    settings.PBX_RECORDING_SOURCE_DIRS = [str(engine.recording_dir)]  # type: ignore[attr-defined]
    policy(engine, "always")
    # The phones offer what pjsua does by default (wideband codecs first): a recorded call
    # is steered to G.711, which the recording is decoded from.
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    a.play(ca)
    assert b.wait_audio(cb) > 10
    pcaps = engine.recording_dir / "pcaps"  # type: ignore[attr-defined]
    # About two seconds of the caller's audio on disk (G.711: 216 bytes a packet, 50 a second).
    wait_until(lambda: sum(p.stat().st_size for p in pcaps.iterdir()) > 100 * 216, timeout=10)
    a.hangup(ca)
    ended(b, cb)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    return ready


def drain_and_store(world, capture, call_id: str) -> Recording:
    """The CDR drain applies the engine's events (the call's CDR and the recording request);
    then the pipeline's task converts and uploads it."""
    drain_cdr_stream()
    with schema_context(world.tenant_a.schema_name):
        rec = Recording.objects.get(call_id=call_id)
        with capture(execute=True):
            assert pipeline.process(rec.pk) == RecordingStatus.STORED
        return Recording.objects.select_related("cdr").get(pk=rec.pk)


def stereo(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)


def assert_caller_tone_left(wav: bytes) -> None:
    samples = stereo(wav).astype(float)
    assert len(samples) > 8000  # over a second
    left, right = samples[:, 0], samples[:, 1]
    spectrum = np.abs(np.fft.rfft(left * np.hanning(len(left))))
    peak = float(np.fft.rfftfreq(len(left), 1 / 8000)[spectrum.argmax()])
    assert abs(peak - TONE_HZ) < 10
    # The callee said nothing: its channel is near silence beside the caller's tone.
    assert np.sqrt(np.mean(right**2)) < np.sqrt(np.mean(left**2)) / 20


def as_wav(mp3: bytes) -> bytes:
    assert mp3[0] == 0xFF  # an MPEG audio frame
    assert mp3[1] & 0xE0 == 0xE0
    return subprocess.run(
        ["sox", "-t", "mp3", "-", "-t", "wav", "-b", "16", "-"],
        input=mp3, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip


def test_a_call_is_recorded_into_s3_and_downloaded_through_the_api(
    recording_pbx, phones, world, settings, s3_server, django_capture_on_commit_callbacks
):
    """Story: acme keeps its recordings in its own S3 bucket. A recorded call between 101 and
    102 ends up there as WAV and MP3, linked to the call's CDR; the admin's download (a
    short-lived signed URL) has 101's tone on the left channel, and no local copy is left."""
    use_storage(world.tenant_a, **s3_settings(s3_server, prefix="calls"))
    ready = recorded_call(recording_pbx, phones, settings)
    rec = drain_and_store(world, django_capture_on_commit_callbacks, ready["call_id"])
    assert rec.storage == f"tenant:s3:{s3_server.bucket}"
    assert rec.cdr is not None
    assert rec.cdr.callee_number == "102"
    assert (rec.caller, rec.callee) == ("101", "102")
    assert_caller_tone_left(download(world, rec.pk))
    assert_caller_tone_left(as_wav(download(world, rec.pk, "mp3")))
    assert list(recording_pbx.recording_dir.glob("pcaps/*")) == []


def test_a_call_is_recorded_into_azure_blob_and_downloaded_through_the_api(
    recording_pbx, phones, world, settings, azurite, django_capture_on_commit_callbacks
):
    """Story: the same with acme's Azure Blob container (Azurite, Azure's own emulator)."""
    use_storage(
        world.tenant_a,
        storage=StorageKind.AZURE,
        bucket=azurite.container,
        account_name=AZURITE_ACCOUNT,
        endpoint_url=azurite.endpoint,
        secret=AZURITE_KEY,
    )
    ready = recorded_call(recording_pbx, phones, settings)
    rec = drain_and_store(world, django_capture_on_commit_callbacks, ready["call_id"])
    assert rec.storage == f"tenant:azure:{azurite.container}"
    assert_caller_tone_left(download(world, rec.pk))
    assert_caller_tone_left(as_wav(download(world, rec.pk, "mp3")))


def test_a_recorded_calls_offer_keeps_g711_when_the_caller_has_it():
    offer = (
        b"v=0\r\nm=audio 4000 RTP/AVP 96 9 0 101\r\na=rtpmap:96 opus/48000/2\r\n"
        b"a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    assert recordable_codecs(offer) == {
        "strip": ["all"],
        "except": ["PCMU", "PCMA", "telephone-event"],
    }
    dynamic = b"m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:97 pcma/8000\r\n"
    assert recordable_codecs(dynamic) is not None
    opus_only = b"m=audio 4000 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    assert recordable_codecs(opus_only) is None  # stripping would leave it nothing
