"""baresip, a real softphone, registers to the engine headless (temp config dir, account file).

baresip 1.0 (libre) fails the whole registration ("Function not implemented") as soon as one of
the challenges uses an algorithm it lacks, even when an MD5 challenge is also offered; so the
engine offers MD5 only by default (SHA-256 first is a tenant's opt-in), and these engines run on
the defaults ``make run`` gives them. baresip also takes a call from a pjsua2 phone (answering
by itself) and places one to it.
"""

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from telephony.sip.transaction import Timers
from tests.sip.engine_fixtures import SIP_PASSWORD, wait_until, worker_redis_url

CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:0
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module_app\t\taccount.so
audio_player\t\taufile,/dev/null
audio_source\t\taufile,/dev/null
"""


def test_baresip_registers_and_unregisters(
    sip_engine_factory: Any, tmp_path: Path, api: Any, world: Any
) -> None:
    """Story: a softphone configured with extension 102's credentials registers; the tenant
    admin sees it in the registrations API; when the softphone quits, it unregisters."""
    engine = sip_engine_factory(digest_algorithms=None)  # the defaults, as `make run`
    (tmp_path / "config").write_text(CONFIG)
    (tmp_path / "accounts").write_text(
        f"<sip:102@acme.test;transport=udp>;auth_pass={SIP_PASSWORD};"
        f'outbound="sip:127.0.0.1:{engine.udp_port}";regint=120\n'
    )
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    phone = subprocess.Popen(
        ["baresip", "-f", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        raw = wait_until(lambda: r.hgetall("sip:loc:acme.test:102"), timeout=10)
        [binding] = [json.loads(v) for v in raw.values()]
        assert binding["user_agent"].startswith("baresip")
        assert binding["transport"] == "UDP"
        assert binding["contact"].startswith("sip:102-")
        assert 100 < binding["expires_at"] - binding["registered_at"] <= 120

        items = api(world.a_admin, world.tenant_a).get("/api/v1/registrations/").json()["items"]
        [listed] = [i for i in items if i["extension"] == "102"]
        assert listed["user_agent"].startswith("baresip")
        assert listed["source_port"] == binding["source_port"]

        phone.send_signal(signal.SIGINT)  # baresip unregisters on its way out
        wait_until(lambda: not r.exists("sip:loc:acme.test:102"), timeout=10)
        phone.wait(10)
    finally:
        if phone.poll() is None:
            phone.kill()
            phone.wait(5)
        r.close()


CALL_CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:0
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module_app\t\taccount.so
module_app\t\tmenu.so
audio_player\t\taufile,/dev/null
audio_source\t\tausine,440
# ausine only makes 48 kHz stereo; baresip resamples it to the call's 8 kHz mono.
ausrc_srate\t\t48000
ausrc_channels\t\t2
"""


def test_pjsua2_calls_baresip_and_they_talk(
    pbx: Any, phones: Any, tmp_path: Path, world: Any
) -> None:
    """Story: 101 (a pjsua2 phone) calls 102, a baresip softphone set to answer by itself, on
    the engine's defaults (which baresip 1.0 can answer). baresip answers, 101 hears baresip's
    tone through the PBX, 101 hangs up and baresip's side of the call ends with it."""
    from tests.sip.callkit import dial, ended, events, register

    # RFC 3261 timers (T1 = 0.5 s) rather than the suite's short ones: baresip takes its time.
    engine = pbx(engine={"digest_algorithms": None, "timers": Timers()})
    (tmp_path / "config").write_text(CALL_CONFIG)
    (tmp_path / "accounts").write_text(
        f"<sip:102@acme.test;transport=udp>;auth_pass={SIP_PASSWORD};answermode=auto;"
        f'outbound="sip:127.0.0.1:{engine.udp_port}";regint=120\n'
    )
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    phone = subprocess.Popen(
        ["baresip", "-f", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: r.hgetall("sip:loc:acme.test:102"), timeout=10)
        a = phones("101")
        acc_a = register(a, engine, "101")
        ca = dial(a, acc_a, "102")
        a.wait_state(ca, "CONFIRMED")
        assert a.wait_audio(ca) > 10  # baresip's 440 Hz tone, relayed by nobody but the PBX
        a.hangup(ca)
        assert ended(a, ca) == 200
        wait_until(lambda: [e for e in events(engine) if e["type"] == "call.ended"])
        [end] = [e for e in events(engine) if e["type"] == "call.ended"]
        assert (end["status"], end["reason"]) == ("answered", "bye caller")
    finally:
        _stop(phone)
        r.close()


def test_baresip_calls_pjsua2_on_make_run_defaults(
    pbx: Any, phones: Any, tmp_path: Path, world: Any, monkeypatch: Any
) -> None:
    """Story: with the engine started as ``make run`` starts it (no digest setting: MD5 only),
    a baresip softphone registers as 102 and calls 101, a pjsua2 phone, answering the 407 with
    its own credentials; 101 answers and hears baresip's tone; 101 hangs up."""
    from telephony.management.commands.sipengine import digest_algorithms
    from telephony.sip.app import PbxConfig
    from tests.sip.callkit import ended, events, register

    monkeypatch.delenv("PBX_SIP_DIGEST_ALGORITHMS", raising=False)
    assert digest_algorithms() == PbxConfig().digest_algorithms == ("MD5",)
    engine = pbx(engine={"digest_algorithms": None, "timers": Timers()})
    a = phones("101")
    register(a, engine, "101")
    (tmp_path / "config").write_text(CALL_CONFIG)
    (tmp_path / "accounts").write_text(
        f"<sip:102@acme.test;transport=udp>;auth_pass={SIP_PASSWORD};"
        f'outbound="sip:127.0.0.1:{engine.udp_port}";regint=120\n'
    )
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    phone = subprocess.Popen(
        ["baresip", "-f", str(tmp_path), "-e", "/dial sip:101@acme.test"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: r.hgetall("sip:loc:acme.test:102"), timeout=10)
        inc = a.incoming()
        assert "<sip:102@acme.test>" in inc["msg"]
        ca = inc["call"]
        a.answer(ca, 200)
        a.wait_state(ca, "CONFIRMED")
        assert a.wait_audio(ca) > 10  # baresip's 440 Hz tone
        a.hangup(ca)
        assert ended(a, ca) == 200
        wait_until(lambda: [e for e in events(engine) if e["type"] == "call.ended"])
        [start] = [e for e in events(engine) if e["type"] == "call.started"]
        [end] = [e for e in events(engine) if e["type"] == "call.ended"]
        assert (start["caller"], start["callee"], end["status"]) == ("102", "101", "answered")
    finally:
        _stop(phone)
        r.close()


def _stop(phone: subprocess.Popen) -> None:
    """Quit baresip as a user would (SIGINT: it un-registers), killing it if it hangs."""
    if phone.poll() is None:
        phone.send_signal(signal.SIGINT)
        try:
            phone.wait(10)
        except subprocess.TimeoutExpired:
            phone.kill()
            phone.wait(5)
