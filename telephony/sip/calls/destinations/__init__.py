"""Destination types: where a routed call can go. One module per type, registered by kind
(``base.register``); importing this package registers the built-in ones.

A new type (trunk, voicemail, IVR, ring group, queue, conference, park) is a new module here:
a class registered under its kind whose ``connect(call, destination)`` takes the calls routed
to it, plus, when it owns numbers of its own, a routing rule (``routing.rule``). Import it
below; nothing else changes.
"""

from . import (
    agent,
    callback,
    disa,
    extension,
    feature,
    forward,
    hotdesk,
    ivr,
    mailbox,
    paging,
    park,
    pickup,
    queue,
    reject,
    ring_group,
    speed_dial,
    supervise,
    trunk,
    voicemail,
)
from .base import KINDS, DestinationHandler, register

__all__ = [
    "KINDS",
    "DestinationHandler",
    "agent",
    "callback",
    "disa",
    "extension",
    "feature",
    "forward",
    "hotdesk",
    "ivr",
    "mailbox",
    "paging",
    "park",
    "pickup",
    "queue",
    "register",
    "reject",
    "ring_group",
    "speed_dial",
    "supervise",
    "trunk",
    "voicemail",
]
