"""Media profiles (``telephony/sip/calls/profiles.py``): what an SDP is, what a phone we call
gets, the ng parameters of each profile and when rtpengine must transcode. Pure functions on
real SDP (a Chrome offer, a pjsua2 offer, an SDES offer)."""

from __future__ import annotations

import json

import pytest

from telephony.sip.calls.profiles import (
    Profile,
    codec_names,
    ng_params,
    of_binding,
    of_sdp,
    transcoding,
)
from telephony.sip.contract import ExtensionSnapshot, TenantSnapshot
from telephony.sip.registrar import Binding
from tests.sip.webrtc import chrome_offer

PHONE = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)
SDES = PHONE.replace(b"RTP/AVP", b"RTP/SAVP") + (
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
)
OSRTP = PHONE + b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9\r\n"


def test_profile_of_an_offer():
    assert of_sdp(chrome_offer()) is Profile.WEBRTC
    assert of_sdp(PHONE) is Profile.RTP
    assert of_sdp(SDES) is Profile.SRTP
    assert of_sdp(OSRTP) is Profile.OSRTP
    assert of_sdp(b"") is Profile.RTP  # a late offer


def _binding(transport: str) -> Binding:
    return Binding(
        aor="103@acme.test",
        contact="sip:103@127.0.0.1:5062",
        expires_at=0.0,
        transport=transport,
        source_host="127.0.0.1",
        source_port=5062,
        flow=None,
        user_agent="test",
        instance=None,
        reg_id=None,
    )


@pytest.mark.parametrize(
    ("transport", "srtp", "tenant_srtp", "expected"),
    [
        ("WSS", "", "off", Profile.WEBRTC),
        ("WS", "required", "off", Profile.WEBRTC),  # a browser is always DTLS-SRTP
        ("TLS", "required", "off", Profile.SRTP),
        ("TLS", "", "required", Profile.SRTP),  # the tenant's default
        ("TLS", "optional", "required", Profile.OSRTP),  # the extension's own wins
        ("TLS", "", "off", Profile.RTP),
        ("UDP", "required", "required", Profile.RTP),  # keys in clear text protect nothing
        ("TCP", "required", "off", Profile.RTP),
    ],
)
def test_profile_of_a_phone_we_call(transport, srtp, tenant_srtp, expected):
    ext = ExtensionSnapshot.from_dict("103", {"srtp": srtp})
    tenant = TenantSnapshot.from_json(
        json.dumps({"tenant_id": 1, "schema": "t", "domain": "acme.test", "srtp": tenant_srtp})
    )
    assert of_binding(_binding(transport), ext, tenant) is expected


def test_ng_parameters_per_profile():
    web = ng_params(Profile.WEBRTC)
    assert web["transport-protocol"] == "UDP/TLS/RTP/SAVPF"
    assert web["ICE"] == "force"
    assert web["rtcp-mux"] == ["require"]
    assert web["SDES"] == ["off"]  # DTLS-SRTP only
    plain = ng_params(Profile.RTP)
    assert plain == {"transport-protocol": "RTP/AVP", "ICE": "remove", "rtcp-mux": ["demux"]}
    sdes = ng_params(Profile.SRTP)
    assert sdes["transport-protocol"] == "RTP/SAVP"
    assert sdes["DTLS"] == "off"
    assert "no-NULL_HMAC_SHA1_80" in sdes["SDES"]  # never authentication without encryption
    assert ng_params(Profile.OSRTP)["OSRTP"] == ["offer"]
    assert ng_params(Profile.OSRTP, answer=True)["OSRTP"] == ["accept"]
    ng_params(Profile.WEBRTC)["flags"].append("x")  # a copy: the map stays as it is
    assert ng_params(Profile.WEBRTC)["flags"] == ["generate-mid"]


def test_codecs_and_transcoding():
    assert codec_names(chrome_offer()) == ["OPUS", "PCMU", "PCMA"]
    opus = chrome_offer(opus_only=True)
    assert codec_names(opus) == ["OPUS"]
    # G.711 offered: nobody transcodes, whatever the target.
    assert transcoding(chrome_offer(), Profile.RTP, recorded=True) is None
    assert transcoding(PHONE, Profile.WEBRTC, recorded=False) is None
    # Opus alone: a phone, a trunk or the media server get G.711 from rtpengine.
    assert transcoding(opus, Profile.RTP, recorded=False) == {
        "transcode": ["PCMU", "PCMA"],
        "mask": ["OPUS"],
    }
    assert transcoding(opus, Profile.WEBRTC, recorded=False) is None  # browser to browser
    assert transcoding(opus, Profile.WEBRTC, recorded=True) is not None  # recorded as G.711
