"""OPTIONS health checks: every ``options_interval`` seconds an OPTIONS to the trunk's
carrier (its outbound proxy, else its host). Any answer means it is up (a 404 or 405 is a
server that is there); no answer (the transaction's time-out) or an address that cannot be
reached means down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from telephony.sip.contract import TrunkSnapshot
from telephony.sip.message import SipURI
from telephony.sip.server import Engine
from telephony.sip.transaction import new_tag

from .client import TargetError, new_call_id, out_of_dialog, target_of

__all__ = ["HealthCheck"]

log = logging.getLogger(__name__)


class HealthCheck:
    """Pings one trunk while :meth:`run` runs; reports ``(up, error, checked at)``."""

    def __init__(
        self,
        engine: Engine,
        trunk: TrunkSnapshot,
        on_result: Callable[[bool, str, float], None],
    ) -> None:
        self.engine = engine
        self.trunk = trunk
        self.on_result = on_result
        self.pings = 0

    async def ping(self) -> tuple[bool, str]:
        t = self.trunk
        try:
            target = await target_of(t)
        except TargetError as exc:
            return False, str(exc)
        host, port = self.engine.transport.via_for(target.kind)
        req = out_of_dialog(
            "OPTIONS",
            SipURI(t.host or target.host, port=t.port or None),
            f"<sip:ping@{host}>;tag={new_tag()}",
            f"<sip:{t.host or target.host}>",
            new_call_id(),
            1,
            f"<sip:ping@{host}:{port}>",
        )
        req.add("User-Agent", self.engine.config.product)
        tx = self.engine.transactions.send_request(req, target)
        resp = await tx.future
        if resp.status == 408:
            return False, "no response to OPTIONS"
        if resp.status == 503 and tx.source is None:
            return False, "carrier unreachable"
        return True, ""

    async def run(self) -> None:
        interval = max(1, self.trunk.options_interval)
        while True:
            up, error = await self.ping()
            self.pings += 1
            self.on_result(up, error, time.time())
            await asyncio.sleep(interval)
