"""``intercom`` and ``paging``: calls the phones answer by themselves (on their speaker).

- **Intercom** (``*46`` + extension, ``Feature.INTERCOM``): a two-way call to that extension's
  phones whose INVITEs ask for auto-answer (:func:`auto_answer_headers`); otherwise it is an
  extension call (no answer, refusal and no phone registered lead where they lead for one).
  A DND extension refuses it (486), as it refuses any call.
- **Paging group** (a number of ``tenant.team.paging``): every member's registered phones are
  called with auto-answer. Members that are busy on this engine (``services.states``), in DND,
  disabled or the pager itself are left out.

  - A page (``duplex`` off) is one-way: the PBX answers the pager at once (``media.take``: the
    pager talks to the media server and hears a beep when the page opens), and each member's
    phone gets a media-server session of its own that *follows* the pager's (``follow``:
    what the pager says reaches every listener, each in its own codec) and is offered
    ``sendonly`` (the phones answer ``recvonly``: the pager hears nothing of them). A member
    that hangs up leaves the page (``Leg.on_bye``); the page ends when the pager hangs up,
    or when no member is left listening or ringing.
  - An intercom group (``duplex``) rings the members with auto-answer and the first to answer
    gets a two-way call with the pager; the others are cancelled.

Only an extension's own phone pages: a call from a trunk to a paging group is refused (403),
so nobody outside can speak through the office's phones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from telephony.media.client import MediaError, MediaSession
from telephony.sip.calls import routing
from telephony.sip.calls.call import Call, Leg
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.profiles import Profile
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.calls.states import dialog_view
from telephony.sip.contract import (
    ExtensionSnapshot,
    Feature,
    PagingGroup,
    TenantSnapshot,
)
from telephony.sip.message import Response, SipURI
from telephony.sip.registrar import Binding
from telephony.sip.transaction import new_tag

from .base import register
from .extension import Extension
from .feature import handled_by

__all__ = ["Intercom", "Page", "Paging", "auto_answer_headers", "paging_groups"]

log = logging.getLogger(__name__)

handled_by("intercom", Feature.INTERCOM)


def auto_answer_headers(domain: str) -> list[tuple[str, str]]:
    """The headers that make a phone answer by itself, all at once: a phone acts on the one
    it knows and ignores the others.

    - ``Alert-Info: <…>;info=alert-autoanswer;delay=0``: Yealink (its support FAQ "Intercom
      Auto Answer" and admin guides list ``info=alert-autoanswer``), Snom D series (the value
      its own intercom key sends, wiki "Intercom - Paging feature"; answered when the phone's
      ``answer_after_policy`` allows it), Gigaset Pro. Poly matches an Alert-Info against its
      provisioned ``voIpProt.SIP.alertInfo.x.value`` for a ring class of type "answer": the
      provisioning template maps ``alert-autoanswer`` (no fixed value is documented).
    - ``Call-Info: <sip:domain>;answer-after=0``: Grandstream ("Allow Auto Answer by
      Call-Info": answered when Call-Info has ``answer-after=0``, GXP admin guides), the
      BroadWorks form Yealink, Snom and Gigaset read too.
    - ``Answer-Mode: Auto`` (RFC 5373), for the user agents that implement the standard.

    ``P-Auto-Answer`` is documented by none of these vendors and is not sent. ``domain`` is the
    tenant's, written as a SIP URI (escaped by :class:`SipURI`).
    """
    return [
        ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer;delay=0"),
        ("Call-Info", f"<{SipURI(domain)}>;answer-after=0"),
        ("Answer-Mode", "Auto"),
    ]


@routing.rule
def paging_groups(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """A number of one of the tenant's paging groups."""
    group = tenant.team.paging.get(number)
    if group is None:
        return None
    return Destination("paging", number, {"group": group})


@register("intercom")
class Intercom(Extension):
    """``*46`` + extension: an extension call whose phones answer by themselves."""

    async def connect(self, call: Call, destination: Destination) -> None:
        number = destination.target
        ext = call.tenant.extensions.get(number)
        if ext is None or not ext.enabled or number == call.caller.number:
            self.s.router.connect(call, reject(404, reason="intercom to no extension"))
            return
        if ext.dnd:
            self.s.router.connect(call, reject(486, reason="intercom to a DND extension"))
            return
        call.target = number
        call.visited.append(number)
        await super().connect(call, Destination("extension", number, {"extension": ext}))

    def fork(self, call: Call, binding: Binding, **options: Any) -> Leg:
        headers = auto_answer_headers(call.tenant.domain)
        return super().fork(call, binding, headers=headers, **options)


@dataclass(eq=False)
class Page:
    """A one-way page in progress: the pager's media session and each member's leg (ringing,
    then listening) with its own session and, when anchored, its rtpengine call-id."""

    call: Call
    source: MediaSession
    ringing: list[Leg] = field(default_factory=list)
    listening: list[Leg] = field(default_factory=list)
    sessions: dict[str, MediaSession] = field(default_factory=dict)  # by leg name
    anchors: dict[str, str] = field(default_factory=dict)  # leg name -> rtpengine call-id
    started: bool = False
    timer: asyncio.TimerHandle | None = None


@register("paging")
class Paging(Intercom):
    """A paging group's number: a one-way page to its members, or (``duplex``) an intercom
    call with the first member to answer."""

    def __init__(self, services: CallServices) -> None:
        super().__init__(services)
        self.pages: dict[str, Page] = {}
        services.calls.observers.append(self)  # a page ends with its call

    # --- who is paged --------------------------------------------------------------------
    def members(self, call: Call, group: PagingGroup) -> list[str]:
        """The members to call: enabled extensions, not the pager, not in DND, not busy."""
        tenant = call.tenant
        out: list[str] = []
        for number in group.members:
            ext = tenant.extensions.get(number)
            if ext is None or not ext.enabled or number == call.caller.number or number in out:
                continue
            if ext.dnd or self.s.states.busy(tenant.schema, number):
                log.info("call %s: paging %s skips %s (%s)", call.id, group.number, number,
                         "DND" if ext.dnd else "busy")  # fmt: skip
                continue
            out.append(number)
        return out

    async def connect(self, call: Call, destination: Destination) -> None:
        tenant = call.tenant
        group = destination.data.get("group") or tenant.team.paging.get(destination.target)
        if not isinstance(group, PagingGroup):
            self.s.router.connect(call, reject(404))
            return
        if call.inbound or tenant.extensions.get(call.caller.number) is None:
            self.s.router.connect(call, reject(403, reason="page from outside"))
            return
        members = self.members(call, group)
        found = await asyncio.gather(
            *(self.s.ctx.locations.lookup(tenant.domain, m) for m in members)
        )
        if call.state == "ended":
            return
        targets = [(m, b) for m, bindings in zip(members, found, strict=True) for b in bindings]
        if not targets:
            self.s.router.connect(call, reject(480, reason="no member of the group to page"))
            return
        if group.duplex:
            await self.intercom(call, targets)
        else:
            await self.page(call, targets)

    # --- duplex: the first member to answer talks with the pager -------------------------
    async def intercom(self, call: Call, targets: list[tuple[str, Binding]]) -> None:
        if not await self.offer(call, [b for _, b in targets], [m for m, _ in targets]):
            return
        call.state = "ringing"
        for member, binding in targets:
            self.fork(call, binding, user=member)
        self.calls.changed(call)
        timeout = self.s.config.no_answer_timeout
        call.timer = asyncio.get_running_loop().call_later(timeout, self.no_answer, call)

    # --- one-way page ----------------------------------------------------------------------
    async def page(self, call: Call, targets: list[tuple[str, Binding]]) -> None:
        media = self.s.media
        source = await media.take(call)
        if source is None:
            if call.state != "ended":
                self.calls.fail(call, 480, reason="paging needs the media server")
            return
        page = self.pages[call.id] = Page(call, source)
        self.calls.spawn(_quietly(source.start_play([{"tone": "beep"}])))
        for member, binding in targets:
            if call.state == "ended":
                return
            await self.invite(page, member, binding)
        page.started = True
        if call.state == "ended":
            return
        self.calls.changed(call)  # the members' phones ring (BLF)
        timeout = self.s.config.no_answer_timeout
        page.timer = asyncio.get_running_loop().call_later(timeout, self.ring_out, page)
        self.check(page)

    async def invite(self, page: Page, member: str, binding: Binding) -> None:
        """Call one phone of ``member`` to listen: a sendonly media-server session (through
        rtpengine when the phone needs it), offered with auto-answer."""
        call = page.call
        client = self.s.media.client
        if client is None:
            return
        name = call.next_leg_name("p")
        try:
            session, offer = await client.open(
                f"{call.id}-{name}", tenant=call.tenant.schema, direction="sendonly"
            )
        except MediaError as exc:
            log.warning("call %s: no media session to page %s: %s", call.id, member, exc)
            return
        if call.state == "ended":
            await session.close()
            return
        page.sessions[name] = session
        anchor = self.s.anchor
        tag = new_tag()
        profile = self.profile(call, binding, member)
        must = anchor.must(Profile.RTP, profile)  # a browser or an SRTP phone listens
        if anchor.media is not None and (must or anchor.needed(call, "", b"", [binding])):
            media_id = f"{call.id}-{name}"
            anchored = await anchor.offer(
                offer, media_id, tag, to=profile, failure="rtpengine offer (page)"
            )
            if anchored is not None:
                offer = anchored
                page.anchors[name] = media_id
        if must and name not in page.anchors:
            log.warning("call %s: no rtpengine to page %s's %s phone", call.id, member, profile)
            await session.close()
            page.sessions.pop(name, None)
            return
        if call.state == "ended":
            # The pager left meanwhile: stop() closed the session, the pairing is ours to end.
            anchor.delete(page.anchors.pop(name, ""))
            return
        leg = self.fork(
            call,
            binding,
            user=member,
            offer=offer,
            on_response=lambda leg, resp: self.response_of(page, leg, resp),
            name=name,
            tag=tag,
            on_bye=self.left,
        )
        page.ringing.append(leg)

    def response_of(self, page: Page, leg: Leg, resp: Response) -> None:
        status = resp.status
        if status < 200:
            return
        if status < 300:
            self.calls.spawn(self.listens(page, leg, resp))
            return
        cancelled = leg.gone
        self.forget(page, leg)
        if not cancelled:
            log.info("call %s: %s refused the page (%d)", page.call.id, leg.user, status)
            self.calls.changed(page.call)
        self.check(page)

    async def listens(self, page: Page, leg: Leg, resp: Response) -> None:
        """A phone answered the page: it hears the pager from now on."""
        call = page.call
        if not await self.calls.confirm(leg, resp):
            return
        assert leg.dialog is not None
        if call.state == "ended" or leg not in page.ringing:
            leg.gone = False  # answered as it was cancelled: hang it up
            self.calls.bye(leg)
            self.forget(page, leg)
            return
        page.ringing.remove(leg)
        if leg in call.forks:
            call.forks.remove(leg)
        page.listening.append(leg)
        # BLF: the member's line is in use from its answer on (ring groups and pages skip it).
        view = dialog_view(call, leg, "confirmed", "recipient", _view_id(leg))
        self.s.states.put(call.tenant.schema, leg.user, view.id, view)
        session = page.sessions[leg.name]
        answer = leg.remote_sdp
        media_id = page.anchors.get(leg.name)
        anchor = self.s.anchor
        if media_id and anchor.media is not None and answer:
            anchored = await anchor.answer(
                answer, media_id, leg.local_tag, leg.dialog.remote_tag, to=Profile.RTP
            )
            answer = answer if anchored is None else anchored
        try:
            await session.answer(answer)
            await session.follow(page.source)
        except MediaError as exc:
            log.warning("call %s: %s cannot listen to the page: %s", call.id, leg.user, exc)
            self.calls.bye(leg)
            self.forget(page, leg)
            self.check(page)
            return
        self.calls.changed(call)

    def left(self, leg: Leg) -> None:
        """A listener hung up (its BYE is answered): it leaves the page."""
        page = self.pages.get(leg.call.id)
        if page is None:
            self.calls.drop_leg(leg)
            return
        log.info("call %s: %s left the page", page.call.id, leg.user)
        self.forget(page, leg)
        self.calls.changed(page.call)
        self.check(page)

    def forget(self, page: Page, leg: Leg) -> None:
        """``leg`` is no longer part of the page: its session, pairing and dialog view go."""
        leg.gone = True
        self.calls.drop_leg(leg)
        call = page.call
        for legs in (page.ringing, page.listening, call.forks):
            if leg in legs:
                legs.remove(leg)
        session = page.sessions.pop(leg.name, None)
        if session is not None:
            self.calls.spawn(session.close())
        self.s.anchor.delete(page.anchors.pop(leg.name, ""))
        self.s.states.put(call.tenant.schema, leg.user, _view_id(leg), None)

    def check(self, page: Page) -> None:
        """A page nobody listens to, nor may still answer, ends."""
        call = page.call
        if page.started and not page.ringing and not page.listening and call.state != "ended":
            self.calls.end(call, "nobody listens to the page")

    def ring_out(self, page: Page) -> None:
        """Phones that did not answer by themselves in time stop ringing."""
        page.timer = None
        for leg in list(page.ringing):
            self.calls.cancel_fork(leg)
        if page.call.state != "ended":
            self.calls.changed(page.call)

    # --- the end ---------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        if call.state == "ended":
            page = self.pages.pop(call.id, None)
            if page is not None:
                self.stop(page)

    def stop(self, page: Page) -> None:
        """The pager hung up (or the call was ended): every member's leg ends with it."""
        if page.timer is not None:
            page.timer.cancel()
            page.timer = None
        for leg in list(page.ringing):
            if not leg.gone:
                self.calls.cancel_fork(leg)
        for leg in list(page.listening):
            self.calls.bye(leg)
        for leg in [*page.ringing, *page.listening]:
            self.forget(page, leg)
        for session in page.sessions.values():
            self.calls.spawn(session.close())
        page.sessions.clear()
        for media_id in page.anchors.values():
            self.s.anchor.delete(media_id)
        page.anchors.clear()


def _view_id(leg: Leg) -> str:
    """A listener's dialog as the page puts it (not the id of the ringing fork's view, which
    the call's own views take back when the fork leaves ``call.forks``)."""
    return f"{leg.sip_call_id}:{leg.local_tag}:page"


async def _quietly(aw: Any) -> None:
    with contextlib.suppress(MediaError):
        await aw
