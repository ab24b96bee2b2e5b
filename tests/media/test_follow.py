"""``follow``: a media server session sends what other sessions receive (a page's fan-out, and
the mixing conferences, listen and whisper build on), with raw RTP "phones" on loopback.

User story: someone pages a group; the pager's audio reaches every listener, each in its own
codec, paced every 20 ms, while the pager hears nothing back from them; a listener that
follows two talkers hears both; one tenant's sessions never follow another's.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from telephony.media.client import MediaError
from telephony.media.protocol import MAX_SOURCES, ProtocolError, parse_request
from tests.media.phone import RtpPhone, peak_frequency, sdp_offer, tone
from tests.media.test_server import _ask, _control, call, client_for, run

_seq = iter(range(1, 1_000_000))


def _sid(name: str) -> str:
    return f"f{os.getpid()}-{next(_seq)}-{name}"


async def listener(client, phone: RtpPhone, *, pt: int = 0, tenant: str = "t1"):
    """A page's listener: the server offers sendonly, the phone answers recvonly."""
    session, offer = await client.open(_sid("l"), tenant=tenant, direction="sendonly")
    await session.answer(sdp_offer(phone.port, pts=(pt,), direction="recvonly"))
    phone.connect(offer)
    return session, offer


async def paged(media_server):
    """A pager's call and a listener that follows it: ``(client, pager, ear, source, session)``
    (the pager's and the listener's phones and sessions)."""
    client = await client_for(media_server)
    pager, ear = await RtpPhone.create(), await RtpPhone.create()
    source, _ = await call(client, pager)
    session, _ = await listener(client, ear)
    await session.follow(source)
    return client, pager, ear, source, session


def _spectrum_peaks(pcm: np.ndarray, near: tuple[float, ...]) -> list[float]:
    """The spectrum's magnitude near each frequency of ``near``, relative to its maximum."""
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    top = float(spectrum.max()) or 1.0
    return [float(spectrum[np.abs(freqs - f) < 15].max()) / top for f in near]


def test_a_page_reaches_every_listener_in_its_codec_and_the_pager_hears_nothing(media_server):
    async def main():
        client = await client_for(media_server)
        pager, pcmu, pcma = [await RtpPhone.create() for _ in range(3)]
        source, _ = await call(client, pager)
        one, offer = await listener(client, pcmu, pt=0)
        two, _ = await listener(client, pcma, pt=8)
        await one.follow(source)
        await two.follow(source)
        stats = await client.stats()
        await pager.stream(tone(1000, 1.0))
        await pcmu.quiet()
        await pcma.quiet()
        await client.stop()
        return offer, stats, pager, pcmu, pcma

    offer, stats, pager, pcmu, pcma = run(main())
    assert b"a=sendonly" in offer
    assert stats["following"] >= 2
    assert pager.received == []  # one-way: nothing goes back to the pager
    for phone, pt in ((pcmu, 0), (pcma, 8)):
        headers = phone.headers()
        assert 40 <= len(headers) <= 51, len(headers)  # 1 s of 20 ms frames, a few in flight
        assert {h[1] for h in headers} == {pt}
        assert headers[0][0] == 1  # the marker bit: a talkspurt starts
        # The server's clock: 160 per frame; a frame the pager was late with is left out
        # (its timestamp passes), never sent twice.
        steps = [(b[3] - a[3]) & 0xFFFFFFFF for a, b in zip(headers, headers[1:], strict=False)]
        assert all(step and step % 160 == 0 for step in steps), steps
        assert steps.count(160) >= 0.9 * len(steps), steps
        assert abs(peak_frequency(phone.audio()) - 1000) < 10
        gaps = phone.gaps_ms()
        assert 17 <= np.median(gaps) <= 23, gaps  # paced by the server's tick, not relayed raw


def test_a_follower_of_two_sources_hears_both_mixed(media_server):
    async def main():
        client = await client_for(media_server)
        a, b, ear = await RtpPhone.create(), await RtpPhone.create(), await RtpPhone.create()
        sa, _ = await call(client, a)
        sb, _ = await call(client, b)
        mixed, _ = await listener(client, ear)
        await mixed.follow(sa, sb)
        await asyncio.gather(
            a.stream(tone(600, 1.0, amplitude=6000)), b.stream(tone(1400, 1.0, amplitude=6000))
        )
        await ear.quiet()
        await client.stop()
        return ear.audio()

    pcm = run(main())
    assert len(pcm) >= 40 * 160
    low, high = _spectrum_peaks(pcm, (600, 1400))
    assert low > 0.5, (low, high)
    assert high > 0.5, (low, high)


def test_a_play_goes_first_then_the_following_resumes(media_server):
    async def main():
        client, pager, ear, source, session = await paged(media_server)
        talk = asyncio.create_task(pager.stream(tone(600, 1.5)))
        assert await session.play([{"tone": "beep", "seconds": 0.4}]) == "done"
        beep = len(ear.received)
        await talk
        await ear.quiet()
        await client.stop()
        return beep, ear.audio()

    beep, pcm = run(main())
    assert 18 <= beep <= 22  # the beep's 20 frames
    assert abs(peak_frequency(pcm[: beep * 160]) - 1000) < 10  # the beep (1 kHz) first
    assert abs(peak_frequency(pcm[beep * 160 :]) - 600) < 10  # then the talker


def test_a_closed_source_drops_out_and_the_follower_lives_on(media_server):
    async def main():
        client, pager, ear, source, session = await paged(media_server)
        await pager.stream(tone(1000, 0.4))
        await source.close()
        await ear.quiet()
        heard = len(ear.received)
        await session.play([{"tone": "beep", "seconds": 0.2}])  # still a live session
        await ear.quiet()
        stats = await client.stats()
        await client.stop()
        return heard, len(ear.received) - heard, stats

    heard, after, stats = run(main())
    assert heard >= 10
    assert 9 <= after <= 11
    assert stats["following"] >= 1


def test_following_stops_with_an_empty_list(media_server):
    async def main():
        client, pager, ear, source, session = await paged(media_server)
        await session.follow()
        await pager.stream(tone(1000, 0.4))
        await asyncio.sleep(0.1)
        await client.stop()
        return ear.received

    assert run(main()) == []


def test_another_tenants_or_an_unknown_session_cannot_be_followed(media_server):
    async def main():
        client = await client_for(media_server)
        other = await client_for(media_server)
        pager, ear, spy = await RtpPhone.create(), await RtpPhone.create(), await RtpPhone.create()
        source, _ = await call(client, pager)  # tenant t1
        foreign, _ = await listener(client, spy, tenant="t2")
        mine, _ = await listener(client, ear)
        elsewhere, _ = await listener(other, await RtpPhone.create())
        errors = []
        for session, sources in ((foreign, [source]), (elsewhere, [source])):
            try:
                await session.follow(*sources)
            except MediaError as exc:
                errors.append(str(exc))
        await mine.follow(source)
        await pager.stream(tone(1000, 0.4))
        await ear.quiet()
        await client.stop()
        await other.stop()
        return errors, spy.received, len(ear.received)

    errors, spied, heard = run(main())
    assert len(errors) == 2
    assert all("unknown source session" in e for e in errors)
    assert spied == []
    assert heard >= 10


def test_follow_requests_are_checked(media_server):
    sock, reader = _control(media_server.control)
    try:
        opened = _ask(sock, reader, {"id": 1, "op": "open", "session": _sid("x"), "offer": None})
        assert opened["ok"]
        bad_direction = {"id": 2, "op": "open", "session": _sid("y"), "direction": "sideways"}
        assert not _ask(sock, reader, bad_direction)["ok"]
        unknown = {"id": 3, "op": "follow", "session": _sid("z"), "sources": []}
        assert _ask(sock, reader, unknown)["error"] == "unknown session"
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("sources", "error"),
    [
        ("a", "sources must be a list"),
        ([1], "a source is a session id"),
        (["s"], "a session cannot follow itself"),
        ([f"x{i}" for i in range(MAX_SOURCES + 1)], "sources must be a list"),
    ],
)
def test_follow_parsing_refuses(sources, error):
    with pytest.raises(ProtocolError, match=error):
        parse_request({"id": 1, "op": "follow", "session": "s", "sources": sources})


def test_follow_parsing_keeps_each_source_once():
    req = parse_request({"id": 1, "op": "follow", "session": "s", "sources": ["a", "b", "a"]})
    assert req.args == {"sources": ["a", "b"]}
    opened = parse_request({"id": 2, "op": "open", "session": "s", "direction": "sendonly"})
    assert opened.args["direction"] == "sendonly"
    assert "direction" not in parse_request({"id": 3, "op": "open", "session": "s"}).args


def test_our_answer_never_does_more_than_the_session_may(media_server):
    async def main():
        client = await client_for(media_server)
        phone = await RtpPhone.create()
        _, answer = await client.open(
            _sid("c"), offer=phone.offer(), tenant="t1", direction="sendonly"
        )
        _, held = await client.open(
            _sid("d"), offer=phone.offer(direction="sendonly"), tenant="t1", direction="sendonly"
        )
        await client.stop()
        return answer, held

    answer, held = run(main())
    assert b"a=sendonly" in answer
    assert b"a=inactive" in held  # the remote only sends, the session only sends: nothing
