"""``hotdesk``: hot desking (PortSIP's "hot desking"): a user logs in at a shared desk phone.

An extension with ``hot_desk`` is a desk phone. ``*70<ext>`` dialled from it asks for
``<ext>``'s voicemail PIN (a user whose mailbox has no PIN cannot log in: nothing would prove
it is them), then asks the Django side to log the user in there (``feature.set``,
``hotdesk_login``: ``extension`` the desk, ``number`` the user); Django logs the user out of
any other desk, audits it and republishes the snapshot. ``*71`` at the desk logs out.
A phone that is no desk phone hears "feature failed" for both.

While a user is logged in at a desk (the desk's ``hotdesk_user``):

- calls to the user ring the desk's registered phones too (:func:`phones_of`, used by the
  ``extension`` destination and the callback when they look its phones up);
- calls from the desk's phones are the user's (:func:`acting_as`, used by the dispatcher once
  the phone authenticated as the desk): caller ID, call scope, forwards, speed dials and the
  ``*57`` mailbox are the user's. Only the log-in and log-out codes stay the desk's own.
"""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType, ExtensionSnapshot, Feature, TenantSnapshot
from telephony.sip.registrar import Binding, LocationStore

from .base import register
from .feature import handled_by

__all__ = ["HotDesk", "acting_as", "desks_of", "phones_of"]

log = logging.getLogger(__name__)

_DESK_CODES = frozenset({str(Feature.HOTDESK_LOGIN), str(Feature.HOTDESK_LOGOUT)})

# schema -> (the snapshot the index was made from, user -> its desks): rebuilt when the
# tenant's snapshot object changes, so a call to a user never scans every extension.
_INDEX: dict[str, tuple[TenantSnapshot, dict[str, tuple[str, ...]]]] = {}


def desks_of(tenant: TenantSnapshot, number: str) -> tuple[str, ...]:
    """The desk extensions where ``number`` is logged in now (normally none or one)."""
    cached = _INDEX.get(tenant.schema)
    if cached is None or cached[0] is not tenant:
        index: dict[str, list[str]] = {}
        for ext in tenant.extensions.values():
            if ext.hot_desk and ext.hotdesk_user and ext.hotdesk_user != ext.number:
                index.setdefault(ext.hotdesk_user, []).append(ext.number)
        cached = (tenant, {user: tuple(desks) for user, desks in index.items()})
        _INDEX[tenant.schema] = cached
    return cached[1].get(number, ())


async def phones_of(locations: LocationStore, tenant: TenantSnapshot, number: str) -> list[Binding]:
    """The registered phones that ring for extension ``number``: its own, then those of
    the desks where it is logged in (:func:`desks_of`)."""
    bindings = await locations.lookup(tenant.domain, number)
    for desk in desks_of(tenant, number):
        bindings += await locations.lookup(tenant.domain, desk)
    return bindings


def acting_as(tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str) -> ExtensionSnapshot:
    """Who a call from ``caller``'s phone to ``number`` is made as: the user logged in at
    that desk phone (an enabled extension of the tenant), else ``caller`` itself. The desk
    keeps its own identity for the hot-desking codes (log in, log out)."""
    if not caller.hot_desk or not caller.hotdesk_user:
        return caller
    user = tenant.extensions.get(caller.hotdesk_user)
    if user is None or not user.enabled or user.hot_desk:
        return caller
    found = tenant.media.feature(number) if number.startswith(("*", "#")) else None
    if found is not None and found[0] in _DESK_CODES:
        return caller
    return user


@register("hotdesk")
class HotDesk:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        feature = str(destination.data.get("feature") or "")
        desk = call.caller
        media = self.s.media
        session = await media.take(call)
        if session is None:
            self.s.calls.fail(call, 480, reason="hot desking without the media server")
            return
        if not desk.hot_desk:
            log.info("call %s: %s from %s, which is no desk phone", call.id, feature, desk.number)
            await media.goodbye(call, f"feature {feature}", "feature-failed")
            return
        if feature == Feature.HOTDESK_LOGOUT:
            if desk.hotdesk_user:
                self.s.media.request(
                    call, EventType.FEATURE_SET, extension=desk.number, feature=feature, number=""
                )
            await media.goodbye(call, f"feature {feature}", "goodbye")
            return
        user = call.tenant.extensions.get(destination.target)
        box = user.voicemail if user is not None else None
        if user is None or user.number == desk.number or user.hot_desk or not user.enabled:
            await media.goodbye(call, "hot desk login refused", "feature-failed")
            return
        if box is None or not box.pin:
            log.info("call %s: hot desk login as %s, which has no PIN", call.id, user.number)
            await media.goodbye(call, "hot desk login refused", "feature-failed")
            return
        if not await media.ask_pin(call, session, box.pin):
            await media.goodbye(call, "hot desk login refused", "feature-failed")
            return
        log.info("call %s: %s logs in at desk %s", call.id, user.number, desk.number)
        self.s.media.request(
            call, EventType.FEATURE_SET, extension=desk.number, feature=feature, number=user.number
        )
        await media.goodbye(call, f"feature {feature}", "goodbye")


handled_by("hotdesk", Feature.HOTDESK_LOGIN, Feature.HOTDESK_LOGOUT)
