"""Calls the engine places itself: an extension's phones ring with the media server's offer,
and the one that answers becomes a caller the media server answered.

The automatic callback (its requester), a queue's callback (the agent) and the wallboard's
supervision (the supervisor) all start so: every registered phone of the extension rings
(forks of one call, showing ``shown`` as the caller; the extension shows ringing on BLF and
counts as busy meanwhile), the first to answer wins and the others are CANCELled, and the
result is a :class:`Call` whose A leg is our own INVITE, answered by a media-server session
(``call.media``, ``call.answered_a``): from there on the machinery of taken callers applies
(``MediaFeatures.hand_off`` and routing, ``join``, hang-up, the CDR).

The media server speaks plain RTP: a phone of another profile (a browser, an SRTP phone) is
offered rtpengine's conversion of its offer, one pairing per profile, and the one that answers
keeps its pairing (the others are deleted). Without rtpengine such phones are not rung.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from telephony.media.client import MediaError
from telephony.sip.contract import DialogView, EventType, ExtensionSnapshot, TenantSnapshot
from telephony.sip.message import Response
from telephony.sip.registrar import Binding
from telephony.sip.transaction import new_tag

from .call import Call, Leg
from .profiles import Profile, of_binding
from .services import CallServices

__all__ = ["ring_phones"]

log = logging.getLogger(__name__)


class _Refused(Exception):
    """Every phone refused the call."""


def _always() -> bool:
    return True


async def ring_phones(
    s: CallServices,
    tenant: TenantSnapshot,
    caller: ExtensionSnapshot,
    bindings: list[Binding],
    *,
    shown: ExtensionSnapshot,
    callee: str,
    seconds: float,
    name: str,
    wanted: Callable[[], bool] = _always,
) -> Call | None:
    """Ring ``caller``'s phones (``bindings``) for at most ``seconds`` with a call from
    ``shown``; the answered call, added and announced (``call.started``, internal, to
    ``callee``), or None: no media server, every phone refused, nobody answered in time, or
    ``wanted()`` turned false meanwhile (the answering phone is hung up). ``name`` tells the
    media session apart in the media server's logs."""
    media = s.media
    client = media.client
    if client is None or not media.available or not bindings:
        return None
    calls = s.calls
    call_id = secrets.token_hex(12)
    call = Call(id=call_id, tenant=tenant, caller=caller, callee=callee, media_id=call_id)
    try:
        session, offer = await client.open(f"{call_id}-{name}", tenant=tenant.schema)
    except MediaError as exc:
        log.warning("call to %s's phones: no media session: %s", caller.number, exc)
        return None
    offers, ms_tag = await _offers(s, call_id, offer, caller, tenant, bindings)
    bindings = [b for b in bindings if of_binding(b, caller, tenant) in offers]
    if not bindings:
        _forget(s, call_id, offers)
        await session.close()
        return None
    won: asyncio.Future[tuple[Leg, Response]] = asyncio.get_running_loop().create_future()
    forks: list[Leg] = []

    def settle(leg: Leg, resp: Response) -> None:
        status = resp.status
        if status < 200:
            return
        if status < 300:
            if won.done():
                # Answered too, as the winner's CANCEL crossed it: that phone is hung up.
                calls.spawn(_late(s, leg, resp))
            else:
                won.set_result((leg, resp))
            return
        leg.gone = True
        calls.drop_leg(leg)
        if not won.done() and all(f.gone for f in forks):
            won.set_exception(_Refused())

    for binding in bindings:
        remote, _flow = s.ctx.locations.target_for(binding)
        leg = Leg(
            call=call,
            name=call.next_leg_name("a"),
            user=caller.number,
            target=remote,
            local_tag=new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=calls.contact(shown.caller_id_number, remote.kind),
        )
        leg.profile = of_binding(binding, caller, tenant)
        leg.media_id, leg_offer = offers[leg.profile]
        leg.invite = calls.invite(leg, binding.contact, shown, leg_offer)
        forks.append(leg)
        calls.add_leg(leg)

        def answered(resp: Response, leg: Leg = leg) -> None:
            settle(leg, resp)

        leg.client_tx = calls.send(leg, leg.invite, on_response=answered)
    ringing = DialogView(
        id=f"o-{call_id}", state="early", direction="recipient", call_id=call_id,
        remote=shown.caller_id_number,
    )  # fmt: skip
    s.states.put(tenant.schema, caller.number, call_id, ringing)
    try:
        leg, resp = await asyncio.wait_for(asyncio.shield(won), seconds)
    except (TimeoutError, _Refused):
        for other in forks:
            calls.cancel_fork(other)
        _forget(s, call_id, offers)
        await session.close()
        return None
    finally:
        s.states.put(tenant.schema, caller.number, call_id, None)
    for other in forks:
        if other is not leg:
            calls.cancel_fork(other, answered_elsewhere=True)
    _forget(s, call_id, {p: o for p, o in offers.items() if p is not leg.profile})
    if not await calls.confirm(leg, resp):
        _forget(s, call_id, offers)
        await session.close()
        return None
    answer: bytes | None = leg.remote_sdp
    if leg.media_id:
        answer = await s.anchor.answer(
            leg.remote_sdp, leg.media_id, ms_tag, leg.local_tag, to=Profile.RTP,
            failure=f"call to {caller.number}'s phones: rtpengine answer failed",
        )  # fmt: skip
        call.media_id, call.anchored = leg.media_id, True
        leg.media_id = ""
    try:
        if not wanted():
            raise MediaError("no longer wanted")
        if answer is None:
            raise MediaError("rtpengine could not convert the phone's answer")
        await session.answer(answer)
    except MediaError as exc:
        log.info("call to %s's phones: answered but dropped (%s)", caller.number, exc)
        if call.anchored:
            s.anchor.delete(call.media_id)
        calls.bye(leg)
        await session.close()
        return None
    call.a = leg
    call.media = session
    call.answered_a = True
    call.state = "answered"
    call.answered_at = time.time()
    calls.add(call)
    calls.emit(
        call,
        EventType.CALL_STARTED,
        direction="internal",
        caller=caller.caller_id_number,
        caller_name=caller.caller_id_name,
        callee=callee,
    )
    calls.changed(call)
    return call


async def _offers(
    s: CallServices,
    call_id: str,
    offer: bytes,
    caller: ExtensionSnapshot,
    tenant: TenantSnapshot,
    bindings: list[Binding],
) -> tuple[dict[Profile, tuple[str, bytes]], str]:
    """The offer per profile of the phones to ring: the media server's own for plain RTP,
    rtpengine's conversion (a pairing of its own: ``(media_id, sdp)``) for the others; a
    profile rtpengine cannot serve is left out (logged). And the media server's tag in those
    pairings."""
    anchor = s.anchor
    ms_tag = new_tag()
    offers: dict[Profile, tuple[str, bytes]] = {Profile.RTP: ("", offer)}
    for profile in {of_binding(b, caller, tenant) for b in bindings} - {Profile.RTP}:
        if anchor.media is None:
            log.warning("call to %s's phones: no rtpengine for its %s phones", caller.number,
                        profile)  # fmt: skip
            continue
        media_id = f"{call_id}-{profile.value}"
        converted = await anchor.offer(
            offer, media_id, ms_tag, to=profile,
            failure=f"call to {caller.number}'s {profile} phones: rtpengine offer failed",
        )  # fmt: skip
        if converted is not None:
            offers[profile] = (media_id, converted)
    return offers, ms_tag


def _forget(s: CallServices, call_id: str, offers: dict[Profile, tuple[str, bytes]]) -> None:
    """End the rtpengine pairings of ``offers`` (none for plain RTP)."""
    for media_id, _ in offers.values():
        s.anchor.delete(media_id)


async def _late(s: CallServices, leg: Leg, resp: Response) -> None:
    leg.gone = False
    if await s.calls.confirm(leg, resp):
        s.calls.bye(leg)
    s.calls.drop_leg(leg)
