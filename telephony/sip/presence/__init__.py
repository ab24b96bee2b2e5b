"""Presence: SIP event subscriptions and notifications (RFC 6665). ``message-summary`` (MWI,
RFC 3842) is served by :mod:`.mwi`; ``dialog`` (RFC 4235) and ``presence`` (RFC 3863) for
busy lamp fields by :mod:`.dialog`, both built on :mod:`.notifier` (what RFC 6665 asks of
every package); :mod:`.router` sends each SUBSCRIBE to its package."""

from .dialog import DialogPresence
from .mwi import MessageWaiting
from .router import SubscribeRouter
from .subscriptions import Subscription, SubscriptionTable

__all__ = [
    "DialogPresence",
    "MessageWaiting",
    "SubscribeRouter",
    "Subscription",
    "SubscriptionTable",
]
