"""Commands to the engines on the Redis channel ``sip:control``:

- ``{"op": "hangup", "schema", "call_id"}`` (the REST API): end that call, if this engine
  carries it and it belongs to that tenant;
- ``{"op": "notify", "domain", "user", "event": "check-sync", "reboot"}`` (provisioning): an
  out-of-dialog NOTIFY to each registered contact of the user (re-provision, reboot);
- ``{"op": "record", "schema", "call_id", "action", "by"}`` (the REST API): start, stop,
  pause or resume that call's recording, if this engine carries it and it belongs to that
  tenant (``recording.py``);
- ``{"op": "supervise", "schema", "supervisor", "agent", "mode"}`` (the wallboard): ring the
  supervisor's phones and join the agent's queue call (``supervision.py``; the same checks as
  the codes).

The subscription is re-established when the connection drops (commands published meanwhile
are lost: Redis pub/sub does not queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from telephony.sip import contract
from telephony.sip.context import EngineContext
from telephony.sip.contract import (
    CheckSync,
    ControlMessage,
    HangUpCall,
    RecordCall,
    SuperviseCall,
)
from telephony.sip.message import Request, Response, parse_address, parse_uri
from telephony.sip.transaction import new_tag

from .call import Calls
from .recording import Recorder
from .supervision import supervisions_of

__all__ = ["ControlChannel"]

log = logging.getLogger(__name__)


class ControlChannel:
    """Listens on ``sip:control`` and carries out the commands for this engine."""

    def __init__(self, ctx: EngineContext, calls: Calls, recorder: Recorder) -> None:
        self.ctx = ctx
        self.calls = calls
        self.recorder = recorder
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="call-control")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        channel = contract.key(self.ctx.config.redis_prefix, contract.CONTROL)
        while True:
            pubsub = self.ctx.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        self.received(msg.get("data"))
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                log.warning("control channel lost (%s), resubscribing", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1.0)

    def received(self, data: Any) -> None:
        cmd = ControlMessage.from_json(data)
        if isinstance(cmd, CheckSync):
            self.calls.spawn(self.notify_aor(cmd))
        elif isinstance(cmd, HangUpCall):
            call = self.calls.by_id.get(cmd.call_id)
            # The schema must match: a command can only ever end a call of its own tenant.
            if call is not None and call.tenant.schema == cmd.schema:
                self.calls.end(call, "api hangup", 487)
        elif isinstance(cmd, RecordCall):
            self.recorder.control(cmd)  # checks the schema the same way
        elif isinstance(cmd, SuperviseCall):
            supervisions = supervisions_of(self.calls)
            if supervisions is not None:
                self.calls.spawn(supervisions.ring(cmd))  # only that tenant's calls are seen

    async def notify_aor(self, cmd: CheckSync) -> int:
        """A check-sync command (from provisioning): an out-of-dialog NOTIFY
        (``Event: check-sync;reboot=true|false``, ``Subscription-State: terminated``) to every
        contact registered for ``user@domain``, over the flow it registered on. Only a served
        domain's users are reached; a connection held by another engine is left to that
        engine. Returns how many NOTIFYs went out."""
        domain, user = cmd.domain, cmd.user
        tenant = self.ctx.directory.tenant(domain)
        if tenant is None or user not in tenant.extensions:
            log.info("control: ignoring check-sync for %r@%r", user, domain)
            return 0
        reboot = "true" if cmd.reboot else "false"
        locations = self.ctx.locations
        sent = 0
        for binding in await locations.lookup(tenant.domain, user):
            target, flow = locations.target_for(binding)
            if binding.flow and flow is None and binding.engine != locations.engine_id:
                # Its connection is held by another engine, which notifies it. (UDP bindings
                # are sent to from any engine: after a restart no engine "holds" them.)
                continue
            try:
                uri = (
                    parse_address(binding.contact).uri
                    if binding.contact.startswith("<")
                    else parse_uri(binding.contact)
                )
            except ValueError:
                continue
            host, port = self.ctx.engine.transport.via_for(target.kind)
            t = "" if target.kind.upper() == "UDP" else f";transport={target.kind.lower()}"
            req = Request(
                "NOTIFY",
                uri,
                [
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:{user}@{tenant.domain}>;tag={new_tag()}"),
                    ("To", f"<sip:{user}@{tenant.domain}>"),
                    ("Call-ID", secrets.token_hex(12) + "@pbx"),
                    ("CSeq", "1 NOTIFY"),
                    ("Contact", f"<sip:{user}@{host}:{port}{t}>"),
                    ("Event", f"check-sync;reboot={reboot}"),
                    ("Subscription-State", "terminated"),
                    ("User-Agent", self.calls.product(tenant)),
                ],
            )
            tx = self.ctx.engine.transactions.send_request(req, target)
            tx.future.add_done_callback(_notify_result(binding.contact))
            sent += 1
        log.info("check-sync (reboot=%s) sent to %d contacts of %s@%s", reboot, sent, user,
                 domain)  # fmt: skip
        return sent


def _notify_result(contact: str) -> Callable[[asyncio.Future[Response]], None]:
    def done(fut: asyncio.Future[Response]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().status >= 300:
            log.info("check-sync NOTIFY to %s answered %d", contact, fut.result().status)

    return done
