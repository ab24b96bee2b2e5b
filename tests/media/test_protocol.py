"""The control protocol's requests: defaults filled in, anything malformed refused with a reason.

User story: an engine with a bug (or a stray client on the port) sends a bad request; the media
server answers with what is wrong instead of acting on half of it or crashing.
"""

import pytest

from telephony.media import protocol


def test_encode_decode_round_trip():
    line = protocol.encode(protocol.event("dtmf", "s1", digit="#"))
    assert line == b'{"event":"dtmf","session":"s1","digit":"#"}\n'
    assert protocol.decode(line) == {"event": "dtmf", "session": "s1", "digit": "#"}
    assert protocol.encode(protocol.reply(3, sdp="v=0")) == b'{"id":3,"ok":true,"sdp":"v=0"}\n'
    assert protocol.error_reply(4, "no")["ok"] is False


def test_requests_get_their_defaults():
    req = protocol.parse_request({"id": 1, "op": "open", "session": "a", "offer": None})
    assert req.args == {"offer": None, "tenant": "", "inband": False}
    req = protocol.parse_request(
        {"id": 2, "op": "record", "session": "a", "path": "/v/m.wav", "max_seconds": 60}
    )
    assert req.args == {
        "path": "/v/m.wav",
        "max_seconds": 60.0,
        "silence_seconds": 0.0,
        "stop_digits": "#",
        "beep": False,
    }
    req = protocol.parse_request(
        {"id": 3, "op": "play", "session": "a", "items": [{"tone": "ringback"}, {"silence": 1}]}
    )
    assert req.args == {
        "items": [{"tone": "ringback", "seconds": None}, {"silence": 1.0}],
        "loop": False,
        "barge": False,
    }
    assert protocol.parse_request({"id": 4, "op": "stats"}).args == {"reset": False}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"op": "stats"}, "id must be an integer"),
        ({"id": True, "op": "stats"}, "id must be an integer"),
        ({"id": 1}, "unknown op 'None'"),
        ({"id": 1, "op": "play"}, "session must be a string"),
        ({"id": 1, "op": "stop", "session": ""}, "session must not be empty"),
        ({"id": 1, "op": "stop", "session": "x" * 201}, "bad session"),
        ({"id": 1, "op": "open", "session": "a", "offer": 5}, "offer must be SDP text or null"),
        ({"id": 1, "op": "answer", "session": "a"}, "sdp must be a string"),
        ({"id": 1, "op": "play", "session": "a", "items": "x"}, "items must be a non-empty list"),
        ({"id": 1, "op": "play", "session": "a", "items": [5]}, "an item is an object"),
        (
            {"id": 1, "op": "play", "session": "a", "items": [{}]},
            "an item is a file, a tone or silence",
        ),
        ({"id": 1, "op": "play", "session": "a", "items": [{"file": "/a\x00b"}]}, "bad file"),
        (
            {"id": 1, "op": "play", "session": "a", "items": [{"tone": "beep", "seconds": "2"}]},
            "seconds must be a number",
        ),
        (
            {"id": 1, "op": "play", "session": "a", "items": [{"silence": float("nan")}]},
            "silence out of range",
        ),
        (
            {"id": 1, "op": "play", "session": "a", "items": [{"silence": 1e9}]},
            "silence out of range",
        ),
        (
            {
                "id": 1,
                "op": "record",
                "session": "a",
                "path": "/x.wav",
                "max_seconds": 5,
                "stop_digits": "x",
            },
            "stop_digits: only 0-9 * # A-D",
        ),
        (
            {"id": 1, "op": "record", "session": "a", "path": "x.wav", "max_seconds": 5},
            "path must be an absolute path",
        ),
        (
            {"id": 1, "op": "record", "session": "a", "path": "/x.wav"},
            "max_seconds must be a number",
        ),
    ],
)
def test_bad_requests(message, error):
    with pytest.raises(protocol.ProtocolError) as exc:
        protocol.parse_request(message)
    assert str(exc.value) == error


@pytest.mark.parametrize("line", [b"{", b"[]", b"\xff\n", b"null"])
def test_bad_lines(line):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(line)
