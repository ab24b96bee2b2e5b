"""The rtpengine ng client against a real rtpengine (userspace, loopback), and bencode."""

import asyncio
from collections.abc import Iterator

import pytest

from telephony.sip.media import MediaError, RtpEngine, bdecode, bencode, connection_address
from tests.sip.pjphone import RtpEngineProcess, free_port

OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 10.9.8.7\r\ns=-\r\nc=IN IP4 10.9.8.7\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
ANSWER = OFFER.replace(b"10.9.8.7", b"10.9.8.8").replace(b"40000", b"42000")


@pytest.fixture(scope="module")
def rtpengine() -> Iterator[RtpEngineProcess]:
    proc = RtpEngineProcess()
    yield proc
    proc.close()


def test_bencode_round_trip() -> None:
    value = {"command": "offer", "flags": ["trust-address", "x"], "n": -3, "sdp": "v=0\r\n"}
    raw = bencode(value)
    assert raw.startswith(b"d7:command5:offer")  # keys sorted, as rtpengine expects
    assert bdecode(raw) == value
    with pytest.raises(ValueError, match="trailing"):
        bdecode(raw + b"x")
    with pytest.raises(ValueError, match="truncated"):
        bdecode(b"5:ab")


def test_offer_answer_query_delete(rtpengine: RtpEngineProcess) -> None:
    """Story: the engine anchors a call; both parties are told rtpengine's address, rtpengine
    knows the call until it is deleted."""

    async def main() -> None:
        ng = RtpEngine("127.0.0.1", rtpengine.ng_port)
        try:
            assert await ng.ping()
            offer = await ng.offer(OFFER, "call-1", "tag-a")
            assert connection_address(offer) == "127.0.0.1"
            answer = await ng.answer(ANSWER, "call-1", "tag-a", "tag-b")
            assert connection_address(answer) == "127.0.0.1"
            assert b"m=audio 40000" not in offer
            assert b"m=audio 42000" not in answer
            stats = await ng.query("call-1")
            assert set(stats["tags"]) == {"tag-a", "tag-b"}
            # Concurrent commands are matched to their answers by cookie.
            pongs = await asyncio.gather(*(ng.ping() for _ in range(20)))
            assert all(pongs)
            await ng.delete("call-1")
            await ng.delete("call-1")  # tearing down twice is not an error
            with pytest.raises(MediaError):
                await ng.query("call-1")
        finally:
            ng.close()

    asyncio.run(main())


def test_timeout_when_rtpengine_is_down() -> None:
    async def main() -> None:
        ng = RtpEngine("127.0.0.1", free_port(), timeout=0.3, retransmit=0.1)
        try:
            with pytest.raises(MediaError, match="did not answer"):
                await ng.ping()
        finally:
            ng.close()

    asyncio.run(main())
