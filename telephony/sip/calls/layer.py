"""The call layer assembled: the live calls, media anchoring, the router with its destination
types, bridging, transfer, recording, the Redis mirror, the call limit and the control channel; its
services (started in order after the SIP core, stopped in reverse) and its SIP handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

from telephony.sip.config import CallConfig
from telephony.sip.context import EngineContext, Service
from telephony.sip.message import Request, Response
from telephony.sip.server import Handler
from telephony.sip.transport import Source

from .agents import AgentBook
from .anchor import Anchor
from .bridge import Bridge
from .call import Calls
from .control import ControlChannel
from .dispatcher import CallDispatcher
from .limits import CallLimits
from .media_app import MediaFeatures
from .mirror import CallMirror
from .recording import Recorder
from .router import CallRouter
from .services import CallServices
from .states import ExtensionStates
from .transfer import Transfer

__all__ = ["CallLayer"]


class CallLayer:
    """Calls between extensions as a back-to-back user agent, for one engine."""

    def __init__(self, ctx: EngineContext, config: CallConfig | None = None) -> None:
        self.config = config or CallConfig.from_pbx(ctx.config)
        self.calls = Calls(ctx)
        self.anchor = Anchor(self.calls, self.config)
        self.router = CallRouter()
        self.media = MediaFeatures(self.calls, self.anchor, self.config)
        self.states = ExtensionStates()
        self.agents = AgentBook(ctx, self.states)
        self.services = CallServices(
            ctx,
            self.config,
            self.calls,
            self.anchor,
            self.router,
            self.media,
            self.states,
            self.agents,
        )
        self.router.load(self.services)
        self.limits = CallLimits(ctx, self.config)
        self.mirror = CallMirror(ctx, self.config)
        self.recorder = Recorder(ctx, self.calls, self.anchor, self.config)
        self.control = ControlChannel(ctx, self.calls, self.recorder)
        self.bridge = Bridge(self.services, on_key=self.recorder.key)
        self.transfer = Transfer(self.services, self.bridge)
        # Where trunk calls come from (imported here: the trunks package builds on the calls).
        from telephony.sip.trunks.index import TrunkDirectory

        self.trunks = TrunkDirectory(ctx.directory, ctx.guard)
        self.dispatcher = CallDispatcher(
            self.services, self.limits, self.bridge, self.transfer, self.trunks
        )
        # The recorder before the anchor: it reads a recorded call's session before deleting it.
        self.calls.observers += [
            self.limits,
            self.media,
            self.recorder,
            self.anchor,
            self.mirror,
            self.states,
        ]

    def configure(self, config: CallConfig) -> None:
        """Take ``config``'s settings (before start): every part keeps the same object."""
        for f in fields(config):
            setattr(self.config, f.name, getattr(config, f.name))

    @property
    def handlers(self) -> dict[str, Handler]:
        """The SIP requests the call layer takes, by method."""
        d = self.dispatcher
        return {
            "INVITE": d.on_invite,
            "BYE": d.on_bye,
            "UPDATE": d.on_update,
            "INFO": d.on_info,
            "REFER": d.on_refer,
            "NOTIFY": d.on_notify,
        }

    @property
    def on_ack(self) -> Callable[[Request, Source], None]:
        return self.dispatcher.on_ack

    @property
    def on_stray_response(self) -> Callable[[Response, Source], None]:
        return self.dispatcher.on_stray_response

    def service_list(self) -> list[Service]:
        """In start order; the last one ends the calls still up when the engine stops."""
        return [
            self.trunks,
            self.limits,
            self.mirror,
            self.anchor,
            self.media,
            self.agents,
            self.recorder,
            self.control,
            _Hangup(self.calls),
        ]


class _Hangup:
    """At shutdown, every call still up is ended (503 to a caller still ringing)."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for call in list(self.calls.by_id.values()):
            self.calls.end(call, "shutdown", 503)
