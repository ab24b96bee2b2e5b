"""SDP offer/answer of the media server: what it reads from phones and what it writes back.

User story: whatever a phone or rtpengine offers (codec order, session- or media-level c=,
hold), the media server answers with a codec both sides have, or says clearly why it cannot.
"""

import pytest

from telephony.media import sdp

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 18 8 0 96\r\na=rtpmap:18 G729/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-15\r\na=ptime:30\r\na=sendrecv\r\n"
)


def test_parse_an_offer():
    remote = sdp.parse(OFFER)
    assert (remote.address, remote.port) == ("10.0.0.1", 49170)
    assert remote.payload_types == [18, 8, 0, 96]
    assert remote.codec_name(8) == "PCMA"  # static, no rtpmap needed
    assert remote.ptime == 30
    assert remote.sends
    assert remote.receives


def test_answer_takes_the_first_g711_and_the_offers_event_type():
    chosen = sdp.negotiate(sdp.parse(OFFER))
    assert chosen == sdp.Answer(codec=8, telephone_event=96, direction="sendrecv")
    text = sdp.build("127.0.0.1", 20000, session_id=5, version=1, codecs=(8,), telephone_event=96)
    assert text == (
        "v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 20000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def test_our_offer():
    text = sdp.build("127.0.0.1", 20002, session_id=1, version=1)
    assert "m=audio 20002 RTP/AVP 0 8 101\r\n" in text
    assert "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert text.endswith("a=ptime:20\r\na=sendrecv\r\n")
    # Our own offer reads back as an offer we can answer.
    assert sdp.negotiate(sdp.parse(text)) == sdp.Answer(0, 101, "sendrecv")


def test_media_level_connection_and_direction_win():
    text = OFFER.replace("a=sendrecv\r\n", "c=IN IP4 10.0.0.9\r\na=sendonly\r\n").replace(
        "t=0 0\r\n", "t=0 0\r\na=inactive\r\n"
    )
    remote = sdp.parse(text)
    assert remote.address == "10.0.0.9"
    assert remote.direction == "sendonly"
    assert not remote.receives
    assert sdp.negotiate(remote).direction == "recvonly"


@pytest.mark.parametrize(
    ("direction", "ours", "receives", "sends"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),
    ],
)
def test_directions(direction, ours, receives, sends):
    remote = sdp.parse(OFFER.replace("a=sendrecv", f"a={direction}"))
    assert (remote.receives, remote.sends) == (receives, sends)
    assert sdp.negotiate(remote).direction == ours


def test_session_level_direction_and_old_style_hold():
    text = OFFER.replace("a=sendrecv\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n")
    assert sdp.parse(text).direction == "inactive"
    held = sdp.parse(OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0"))
    assert not held.receives


def test_only_the_first_audio_stream_counts():
    text = OFFER.replace("m=audio", "m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.9.9.9\r\nm=audio") + (
        "m=audio 6000 RTP/AVP 0\r\n"
    )
    remote = sdp.parse(text)
    assert (remote.address, remote.port) == ("10.0.0.1", 49170)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no audio stream in SDP"),
        ("v=0\r\nm=video 5000 RTP/AVP 96\r\n", "no audio stream in SDP"),
        (OFFER.replace("49170", "0"), "audio stream rejected (port 0)"),
        (OFFER.replace("RTP/AVP 18 8 0 96", "RTP/AVP 18 96"), "no common codec"),
        (OFFER.replace("RTP/AVP 18 8 0 96", "RTP/SAVP 0"), "unsupported transport RTP/SAVP"),
        (
            OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 phone.example"),
            "c= address is not an IP address",
        ),
        (OFFER.replace("c=IN IP4 10.0.0.1\r\n", ""), "no connection address in SDP"),
        (OFFER.replace("49170", "port"), "malformed m=audio line"),
        (OFFER.replace("49170", "70000"), "malformed m=audio line"),
        (b"v=0\r\n\xff\xfe", "SDP is not UTF-8"),
    ],
)
def test_bad_sdp_is_a_clear_error(text, error):
    with pytest.raises(sdp.SdpError) as exc:
        sdp.negotiate(sdp.parse(text))
    assert str(exc.value) == error


def test_a_pcmu_at_another_rate_is_not_g711():
    text = OFFER.replace("RTP/AVP 18 8 0 96", "RTP/AVP 97 0").replace(
        "a=rtpmap:18 G729/8000", "a=rtpmap:97 PCMU/16000"
    )
    assert sdp.negotiate(sdp.parse(text)).codec == 0
