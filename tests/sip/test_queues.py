"""Call queues in the engine, end to end with pjsua2 agents and callers (rtpengine and the media
server running): each strategy offers callers as it says, agents in wrap-up or on a call are
passed over, overflow after the longest wait and when full, VIP callers first, the blacklist,
the agents' feature codes, callback keeping the caller's place, music while waiting, and
another tenant's queue out of reach."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from telephony.sip import contract
from tests.sip.callkit import (
    add_extension,
    dial,
    ended,
    events,
    media_engine,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import Phone
from tests.sip.test_media_features import media_dir, media_pbx

__all__ = ["media_dir", "media_pbx"]  # fixtures, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

QUEUE = "700"
AGENTS = ("102", "103", "104")


def queue(*agents: Any, **fields: Any) -> dict[str, Any]:
    """A queue's snapshot; an agent is a number or (number, skills)."""
    listed = [
        {"number": a} if isinstance(a, str) else {"number": a[0], "skills": a[1]} for a in agents
    ]
    return {
        "number": QUEUE,
        "name": "Support",
        "agents": listed,
        "ring_seconds": 4,
        "wrap_up_seconds": 0,
        "announce_seconds": 0,
        **fields,
    }


def set_queues(engine: EngineHandle, *queues: dict[str, Any], domain: str = "acme.test") -> None:
    set_snapshot(engine, domain, lambda s: s.setdefault("callcenter", {}).update(queues=queues))


@pytest.fixture
def engine(media_pbx: EngineHandle) -> EngineHandle:
    for n in ("103", "104", "105"):
        set_snapshot(media_pbx, "acme.test", add_extension(n))
    return media_pbx


def agents_hash(engine: EngineHandle, schema: str = "t_acme") -> dict[str, dict[str, Any]]:
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        key = contract.key(engine.pbx.config.redis_prefix, contract.AGENTS, schema=schema)
        return {k: json.loads(v) for k, v in r.hgetall(key).items()}
    finally:
        r.close()


def set_agent(engine: EngineHandle, ext: str, state: str, schema: str = "t_acme") -> None:
    """As the Django side would: the hash written, the change published; the engine follows."""
    book = engine.pbx.calls.agents
    engine.run(book.ensure(schema))
    r = redis.Redis.from_url(worker_redis_url())
    prefix = engine.pbx.config.redis_prefix
    try:
        status = contract.AgentStatus(state=state, since=time.time(), by="api")
        r.hset(
            contract.key(prefix, contract.AGENTS, schema=schema),
            contract.agent_field(QUEUE, ext),
            status.to_json(),
        )
        r.publish(contract.key(prefix, contract.AGENTS_CHANGED), schema)
    finally:
        r.close()
    wait_until(
        lambda: engine.call(
            lambda: (
                book.book.get(schema, {}).get(contract.agent_field(QUEUE, ext)) is not None
                and book.book[schema][contract.agent_field(QUEUE, ext)].state == state
            )
        )
    )


def agent_phones(engine: EngineHandle, phones: Any, *numbers: str) -> dict[str, Phone]:
    out = {}
    for n in numbers:
        out[n] = phones(n)
        register(out[n], engine, n)
    return out


def rung(agents: dict[str, Phone], timeout: float = 10.0) -> tuple[str, int]:
    """The agent whose phone rings next (the others must not ring meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n, p in agents.items():
            try:
                inc = p.incoming(timeout=0.2)
            except AssertionError:
                continue
            return n, inc["call"]
    raise AssertionError("no agent rang")


def not_rung(*phones: Phone, seconds: float = 1.5) -> bool:
    time.sleep(seconds)
    for p in phones:
        p.drain()
    return not any(e == "incoming" for p in phones for e, _ in p.events)


def answer(agent: Phone, call: int) -> None:
    agent.answer(call, 200)
    agent.wait_state(call, "CONFIRMED")


def caller(engine: EngineHandle, phones: Any, number: str = "101") -> tuple[Phone, int]:
    p = phones(number)
    return p, register(p, engine, number)


def waiting(engine: EngineHandle) -> list[str]:
    """The callers waiting in the queue now (callers' numbers, in queue order)."""
    q = engine.pbx.calls.router.handler("queue")
    return engine.call(
        lambda: [w.caller for w in q.lines.get(("t_acme", QUEUE), _Empty).waiting]  # type: ignore[union-attr]
    )


class _Empty:
    waiting: list[Any] = []


def test_caller_hears_music_then_longest_idle_agent_answers_and_they_talk(engine, phones):
    """Story: 102 and 103 are agents of the support queue (longest idle). 103 has just
    finished a call, 102 has been idle longer. 101 calls the queue: answered by the media
    server, it hears music; 102's phone rings (not 103's), 102 answers and they talk. The
    queue's events say 101 joined at position 1 and 102 answered within the service level;
    the call carries the queue's number."""
    set_queues(engine, queue("102", "103", strategy="longest_idle"))
    agents = agent_phones(engine, phones, "102", "103")
    q = engine.pbx.calls.router.handler("queue")
    now = time.time()
    engine.call(lambda: engine.pbx.calls.states.idle_since.update(
        {("t_acme", "102"): now - 100, ("t_acme", "103"): now - 5}))  # fmt: skip
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    a.wait_state(ca, "CONFIRMED")
    assert a.wait_audio(ca) > 10  # the music
    who, cb = rung(agents)
    assert who == "102"
    assert a.wait_audio(ca) > 10  # still music while the agent rings
    answer(agents["102"], cb)
    two_way_audio(a, ca, agents["102"], cb)
    calls = engine.call(lambda: list(engine.pbx.calls.calls.by_id.values()))
    assert [c.queue for c in calls] == [QUEUE]
    a.hangup(ca)
    assert ended(agents["102"], cb) == 200
    evs = events(engine, kind="queue.")
    joined = [e for e in evs if e["type"] == "queue.joined"]
    answered = [e for e in evs if e["type"] == "queue.answered"]
    assert [(e["caller"], e["position"], e["vip"]) for e in joined] == [("101", "1", "0")]
    assert [(e["agent"], e["sla"], e["queue"]) for e in answered] == [("102", "1", QUEUE)]
    assert engine.call(lambda: q.by_call) == {}


def test_hunt_offers_in_order_and_passes_on_after_ring_seconds(engine, phones):
    """Story: a hunt queue (104, 102, 103): 104 rings first; it does not answer within the
    queue's ring time, so 102 rings next and answers."""
    set_queues(engine, queue("104", "102", "103", strategy="hunt", ring_seconds=2))
    agents = agent_phones(engine, phones, "102", "103", "104")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "104"
    who2, cb2 = rung(agents, timeout=6)
    assert who2 == "102"
    answer(agents["102"], cb2)
    a.wait_state(ca, "CONFIRMED")
    two_way_audio(a, ca, agents["102"], cb2)
    a.hangup(ca)
    ended(agents["102"], cb2)


def test_ring_all_rings_every_available_agent_and_skips_one_on_a_call(engine, phones):
    """Story: ring all (102, 103, 104), but 104 is on a call with 105: 102 and 103 ring at
    once, 104 is not offered; 103 answers and 102 stops ringing."""
    set_queues(engine, queue("102", "103", "104", strategy="ring_all"))
    agents = agent_phones(engine, phones, "102", "103", "104")
    e = phones("105")
    acc_e = register(e, engine, "105")
    ce = dial(e, acc_e, "104")
    c104 = agents["104"].incoming()["call"]
    answer(agents["104"], c104)
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    c102 = agents["102"].incoming()["call"]
    c103 = agents["103"].incoming()["call"]
    answer(agents["103"], c103)
    assert ended(agents["102"], c102) == 487
    assert not_rung(agents["104"], seconds=0.5)
    two_way_audio(a, ca, agents["103"], c103)
    a.hangup(ca)
    e.hangup(ce)


def test_round_robin_and_fewest_calls(engine, phones):
    """Story: round robin (102, 103, 104) offers three callers one after the other to 102,
    103, 104. Then the queue becomes fewest calls: each has one answered call, 102 gets
    another; the next caller goes to 103 (fewest, first in order)."""
    set_queues(engine, queue("102", "103", "104", strategy="round_robin"))
    agents = agent_phones(engine, phones, *AGENTS)
    a, acc = caller(engine, phones)
    order = []
    for _ in range(3):
        ca = dial(a, acc, QUEUE)
        who, cb = rung(agents)
        order.append(who)
        answer(agents[who], cb)
        a.wait_state(ca, "CONFIRMED")
        a.hangup(ca)
        ended(agents[who], cb)
    assert order == ["102", "103", "104"]
    set_queues(engine, queue("102", "103", "104", strategy="fewest_calls"))
    book = engine.pbx.calls.agents
    engine.call(lambda: book.count_answer("t_acme", QUEUE, "102"))
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "103"
    answer(agents[who], cb)
    a.hangup(ca)
    ended(agents[who], cb)


def test_skills_offers_only_qualifying_agents_most_skilled_first(engine, phones):
    """Story: the queue needs German at 5. 102 has German 3 (not offered), 103 German 6,
    104 German 9: 104 rings first; it declines, 103 rings; 102 never."""
    set_queues(
        engine,
        queue(
            ("102", {"german": 3}),
            ("103", {"german": 6}),
            ("104", {"german": 9}),
            strategy="skills",
            required_skills={"german": 5},
        ),
    )
    agents = agent_phones(engine, phones, *AGENTS)
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "104"
    agents["104"].answer(cb, 486)
    who, cb = rung(agents)
    assert who == "103"
    answer(agents["103"], cb)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(agents["103"], cb)
    assert not_rung(agents["102"], seconds=0.2)


def test_wrap_up_is_honoured_then_the_next_caller_is_offered(engine, phones):
    """Story: one agent, 102, with 3 s of wrap-up. 101's call is answered and ends: 102 is in
    wrap-up (the AGENTS hash says so). 105 calls meanwhile: it waits, 102 is not offered it
    until the wrap-up is over; then 102 rings and answers, and is ready again (event)."""
    set_queues(engine, queue("102", wrap_up_seconds=3))
    agents = agent_phones(engine, phones, "102")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    _, cb = rung(agents)
    answer(agents["102"], cb)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(agents["102"], cb)
    wait_until(lambda: agents_hash(engine).get(f"{QUEUE}:102", {}).get("state") == "wrap_up")
    ended_at = time.monotonic()
    e, acc_e = caller(engine, phones, "105")
    ce = dial(e, acc_e, QUEUE)
    e.wait_state(ce, "CONFIRMED")
    _, cb = rung(agents, timeout=8)
    assert time.monotonic() - ended_at > 2.0
    answer(agents["102"], cb)
    e.hangup(ce)
    ended(agents["102"], cb)
    states = [(s["agent"], s["state"], s["by"]) for s in events(engine, kind="agent.state")]
    assert states[:2] == [("102", "wrap_up", "engine"), ("102", "ready", "engine")]


def test_max_wait_overflows_to_an_extension(engine, phones):
    """Story: nobody answers within 3 s of waiting (102 is not ready): the caller leaves the
    queue (max_wait) to its overflow, extension 105, which rings and talks to it."""
    set_queues(
        engine,
        queue("102", max_wait_seconds=3, overflow={"kind": "extension", "target": "105"}),
    )
    set_agent(engine, "102", "not_ready")
    agents = agent_phones(engine, phones, "102")
    f = phones("105")
    register(f, engine, "105")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    a.wait_state(ca, "CONFIRMED")
    cf = f.incoming(timeout=10)["call"]
    answer(f, cf)
    two_way_audio(a, ca, f, cf)
    assert not_rung(agents["102"], seconds=0.1)
    a.hangup(ca)
    ended(f, cf)
    [left] = events(engine, kind="queue.left")
    assert (left["reason"], left["position"]) == ("max_wait", "1")
    assert float(left["waited"]) >= 2.9


def test_max_callers_and_no_agents_overflow_at_once(engine, phones):
    """Story: a queue of one caller at most: 101 waits, 105 overflows at once to 104. And a
    queue whose only agent logged out sends its caller to the overflow too, as does one
    whose only agent is logged in with no phone registered."""
    set_queues(engine, queue("102", max_callers=1, overflow={"kind": "extension",
                                                             "target": "104"}))  # fmt: skip
    set_agent(engine, "102", "not_ready")
    b = phones("102")
    acc_b = register(b, engine, "102")  # logged in (not ready) with a phone: callers wait
    d = phones("104")
    register(d, engine, "104")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    a.wait_state(ca, "CONFIRMED")
    wait_until(lambda: waiting(engine) == ["101"])
    e, acc_e = caller(engine, phones, "105")
    ce = dial(e, acc_e, QUEUE)
    cd = d.incoming()["call"]
    answer(d, cd)
    e.wait_state(ce, "CONFIRMED")
    e.hangup(ce)
    ended(d, cd)
    a.hangup(ca)
    set_agent(engine, "102", "logged_out")
    ce = dial(e, acc_e, QUEUE)
    cd = d.incoming()["call"]
    d.answer(cd, 486)
    ended(e, ce)
    set_agent(engine, "102", "ready")
    b.unregister(acc_b)
    wait_until(lambda: not engine.run(engine.pbx.locations.lookup("acme.test", "102")))
    ce = dial(e, acc_e, QUEUE)
    cd = d.incoming()["call"]
    d.answer(cd, 486)
    ended(e, ce)
    reasons = [x["reason"] for x in events(engine, kind="queue.left")]
    assert reasons == ["max_callers", "abandoned", "no_agents", "no_agents"]


def test_vip_jumps_the_line_and_the_blacklist_is_refused(engine, phones):
    """Story: 102 is not ready; 101 calls and waits, then 103 (a VIP) calls: it is first in
    line. 102 becomes ready: 103's call is offered to it first. 104 is blacklisted: 603."""
    set_queues(engine, queue("102", vip=["103"], blacklist=["104"]))
    set_agent(engine, "102", "not_ready")
    agents = agent_phones(engine, phones, "102")
    a, acc = caller(engine, phones)
    c, acc_c = caller(engine, phones, "103")
    ca = dial(a, acc, QUEUE)
    wait_until(lambda: waiting(engine) == ["101"])
    cc = dial(c, acc_c, QUEUE)
    wait_until(lambda: waiting(engine) == ["103", "101"])
    live = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        key = contract.key(engine.pbx.config.redis_prefix, contract.QUEUE_LIVE, schema="t_acme")
        field = f"{QUEUE}|{engine.call(lambda: engine.pbx.engine_id)}"
        wait_until(lambda: [w.caller for w in contract.QueueLive.read(live.hget(key, field))
                            .waiting] == ["103", "101"])  # fmt: skip
    finally:
        live.close()
    set_agent(engine, "102", "ready")
    _, cb = rung(agents)
    answer(agents["102"], cb)
    c.wait_state(cc, "CONFIRMED")
    two_way_audio(c, cc, agents["102"], cb)
    c.hangup(cc)
    a.hangup(ca)
    d, acc_d = caller(engine, phones, "104")
    cd = dial(d, acc_d, QUEUE)
    assert ended(d, cd) == 603
    assert events(engine, kind="queue.left")[-1]["reason"] == "blacklisted"


def test_agent_codes_change_the_state_and_a_logged_out_agent_is_not_offered(engine, phones):
    """Story: 102 and 103 are agents. 102 dials *39700 (log out of 700): the AGENTS hash says
    logged out (by phone) and a caller rings 103 only. 102 dials *38 (log in, all its
    queues), *37 (not ready: reason "phone"), then *36 (ready). 105, no agent, dialling
    *38700 changes nothing."""
    set_queues(engine, queue("102", "103", strategy="hunt"))
    p102 = phones("102")
    acc102 = register(p102, engine, "102")
    agents = {"102": p102, **agent_phones(engine, phones, "103")}
    cx = dial(p102, acc102, "*39" + QUEUE)
    assert ended(p102, cx) == 200
    assert agents_hash(engine)[f"{QUEUE}:102"]["state"] == "logged_out"
    assert agents_hash(engine)[f"{QUEUE}:102"]["by"] == "phone"
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "103"
    answer(agents["103"], cb)
    a.hangup(ca)
    ended(agents["103"], cb)
    for code, state in (("*38", "ready"), ("*37", "not_ready"), ("*36", "ready")):
        cx = dial(p102, acc102, code)
        assert ended(p102, cx) == 200
        stored = agents_hash(engine)[f"{QUEUE}:102"]
        assert stored["state"] == state
        assert stored["reason"] == ("phone" if state == "not_ready" else "")
    e, acc_e = caller(engine, phones, "105")
    cx = dial(e, acc_e, "*38" + QUEUE)
    assert ended(e, cx) == 200
    assert f"{QUEUE}:105" not in agents_hash(engine)


def test_callback_keeps_the_place_and_joins_the_agent_to_the_caller(engine, phones):
    """Story: 102 is not ready; 101 waits in a callback queue, keys 3 then # (its own
    number), hears the confirmation and is hung up, keeping its place. 102 becomes ready:
    its phone rings first; it answers, then 101's phone rings, answers and they talk."""
    set_queues(engine, queue("102", callback=True))
    set_agent(engine, "102", "not_ready")
    agents = agent_phones(engine, phones, "102")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    a.wait_state(ca, "CONFIRMED")
    time.sleep(0.5)
    a.dtmf(ca, "3")
    time.sleep(0.8)
    a.dtmf(ca, "#")
    assert ended(a, ca) == 200
    assert waiting(engine) == ["101"]
    set_agent(engine, "102", "ready")
    _, cb = rung(agents)
    answer(agents["102"], cb)
    back = a.incoming(timeout=10)["call"]
    answer(a, back)
    two_way_audio(a, back, agents["102"], cb)
    a.hangup(back)
    ended(agents["102"], cb)
    states = [e["state"] for e in events(engine, kind="queue.callback")]
    assert states == ["requested", "calling", "answered"]
    assert events(engine, kind="queue.left")[-1]["reason"] == "callback"


def test_another_tenants_queue_is_out_of_reach(engine, phones):
    """Story: beta has queue 700; acme has none: acme's 101 dialling 700 never reaches it."""
    set_queues(engine, queue("102"), domain="beta.test")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    assert ended(a, ca) in (404, 480, 484)
    assert events(engine, kind="queue.") == []


def test_sipp_callers_wait_and_are_answered_by_pjsua_agents(pbx, media_dir, phones, tmp_path):
    """Story: two SIPp callers (101, as a softphone would, twice at once) call the queue; the
    media server answers both, they wait; agents 102 and 103 (longest idle) answer them one
    after the other; each SIPp caller accepts the re-INVITE that joins it to its agent, talks
    and hangs up. SIPp counts two successful calls and no failure."""

    def md5_first(**kw: Any) -> EngineHandle:  # SIPp 3.6 answers MD5 challenges only
        return pbx(engine={"digest_algorithms": ("MD5", "SHA-256")}, **kw)

    with media_engine(md5_first, media_dir) as engine:
        set_snapshot(engine, "acme.test", add_extension("103"))
        _sipp_callers(engine, phones, tmp_path)


def _sipp_callers(engine: EngineHandle, phones: Any, tmp_path: Any) -> None:
    import threading

    from tests.sip.pjphone import free_port
    from tests.sip.test_sipp_call import sipp, users_file

    set_queues(engine, queue("102", "103", strategy="longest_idle"))
    agents = agent_phones(engine, phones, "102", "103")
    users = users_file(tmp_path / "callers.csv", ("101", "acme.test", QUEUE))
    port = free_port()
    result: dict[str, Any] = {}

    def run() -> None:
        result["stats"] = sipp(engine, port, "queue_caller.xml", users, tmp_path,
                               "-m", "2", "-l", "2", "-r", "2", "-d", "1500")  # fmt: skip

    t = threading.Thread(target=run)
    t.start()
    try:
        answered = 0
        deadline = time.monotonic() + 40
        while answered < 2 and time.monotonic() < deadline and t.is_alive():
            for p in agents.values():
                try:
                    inc = p.incoming(timeout=0.3)
                except AssertionError:
                    continue
                p.answer(inc["call"], 200)
                answered += 1
                break
        assert answered == 2
    finally:
        t.join(90)
    stats = result["stats"]
    assert int(stats["SuccessfulCall(C)"]) == 2
    assert int(stats["FailedCall(C)"]) == 0
    answered_events = events(engine, kind="queue.answered")
    assert len(answered_events) == 2


def test_sticky_offers_the_last_agent_first(engine, phones):
    """Story: a sticky hunt queue (102, 103). 101's first call: 102 declines, 103 answers;
    QUEUE_STICKY remembers 103 for 101. 101 calls again: 103 rings first."""
    set_queues(engine, queue("102", "103", strategy="hunt", sticky=True))
    agents = agent_phones(engine, phones, "102", "103")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "102"
    agents["102"].answer(cb, 486)
    who, cb = rung(agents)
    assert who == "103"
    answer(agents["103"], cb)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(agents["103"], cb)
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        key = contract.key(engine.pbx.config.redis_prefix, contract.QUEUE_STICKY, schema="t_acme")
        wait_until(lambda: r.hget(key, f"{QUEUE}:101") == "103")
    finally:
        r.close()
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    assert who == "103"
    answer(agents["103"], cb)
    a.hangup(ca)
    ended(agents["103"], cb)


def test_an_ivr_option_leads_to_the_queue_and_the_sla_alert_fires_once(engine, phones):
    """Story: the menu's option 1 is the queue. The caller presses 1 and waits; its agent
    102 is not ready, so after the queue's 1 s service level the wallboard's alert
    (queue.sla) fires, once. 102 becomes ready, answers and they talk; the answer is out of
    the service level."""
    from tests.sip.test_media_features import menu, set_media

    set_queues(engine, queue("102", sla_seconds=1))
    option = {"digit": "1", "target": {"kind": "queue", "target": QUEUE}}
    set_media(engine, ivrs=[menu(options=[option])])
    set_agent(engine, "102", "not_ready")
    agents = agent_phones(engine, phones, "102")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "1")
    wait_until(lambda: waiting(engine) == ["101"])
    wait_until(lambda: len(events(engine, kind="queue.sla")) == 1)
    time.sleep(1.5)
    assert len(events(engine, kind="queue.sla")) == 1
    set_agent(engine, "102", "ready")
    _, cb = rung(agents)
    answer(agents["102"], cb)
    two_way_audio(a, ca, agents["102"], cb)
    a.hangup(ca)
    ended(agents["102"], cb)
    [answered] = events(engine, kind="queue.answered")
    assert (answered["agent"], answered["sla"]) == ("102", "0")


def test_an_agent_that_lets_an_offer_go_rests_before_the_next(engine, phones):
    """Story: 102 is the only agent and declines the caller (486): the queue does not ring it
    again at once, over and over, while the caller waits; after the rest (RETRY_SECONDS) it
    is offered the caller again, answers, and the queue shows it ringing meanwhile
    (call.ringing names it)."""
    from telephony.sip.calls.destinations.queue import RETRY_SECONDS

    set_queues(engine, queue("102", strategy="hunt"))
    agents = {"102": phones("102", auto_ring=True)}  # its phone sends 180
    register(agents["102"], engine, "102")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    who, cb = rung(agents)
    declined = time.monotonic()
    agents["102"].answer(cb, 486)
    assert not_rung(agents["102"], seconds=RETRY_SECONDS - 1.5)
    who, cb = rung(agents)
    assert who == "102"
    assert time.monotonic() - declined >= RETRY_SECONDS - 0.5
    answer(agents["102"], cb)
    a.wait_state(ca, "CONFIRMED")
    ringing = events(engine, kind="call.ringing")
    assert [e["callee"] for e in ringing][-1:] == ["102"]
    a.hangup(ca)
    ended(agents["102"], cb)
