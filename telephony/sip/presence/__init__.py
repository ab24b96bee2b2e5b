"""Presence: SIP event subscriptions and notifications (RFC 6665). ``message-summary`` (MWI,
RFC 3842) is served by :mod:`.mwi`; ``dialog`` (BLF) and ``presence`` are answered 489 until
their packages are added beside it."""

from .mwi import MessageWaiting
from .subscriptions import Subscription, SubscriptionTable

__all__ = ["MessageWaiting", "Subscription", "SubscriptionTable"]
