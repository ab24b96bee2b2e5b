"""The live wallboard, ``/ws/portal/wallboard/`` on a tenant's host (portal session only).

On connect: ``{"type": "wallboard", "wallboard": <payload>}`` (``callcenter.wallboard``),
then ``{"type": "wallboard.update", "wallboard": <payload>}`` whenever the fan-out handled
queue events or calls of agents (at most one per tenant per batch). Tenant admins see every
queue; a supervisor only the queues they supervise. Refusals as the events socket's: an
``error`` frame, then close 4401 (not signed in), 4403 (no queue to watch, suspended tenant,
cross-origin session) or 4404 (unknown host).
"""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from events.auth import CLOSE_FORBIDDEN, WsAuth, authenticate
from pbx.errors import ErrorCode, error_body

from .wallboard import group_name, only_queues, viewer_queues, wallboard


def _authorize(scope) -> tuple[WsAuth, set[str] | None]:
    auth = authenticate(scope, live_events=False)
    if not auth.ok:
        return auth, set()
    queues = viewer_queues(auth.user, auth.tenant)
    if queues is not None and not queues:
        auth.refuse(
            CLOSE_FORBIDDEN,
            ErrorCode.PERMISSION_DENIED,
            "The wallboard is for tenant admins and queue supervisors.",
        )
    return auth, queues


class WallboardConsumer(AsyncJsonWebsocketConsumer):
    """One wallboard page: its tenant's wallboard group, cut to the viewer's queues."""

    group: str | None = None
    queues: set[str] | None = None

    async def connect(self) -> None:
        auth, self.queues = await database_sync_to_async(_authorize)(self.scope)
        # Accept, then close with a code: the page can tell why (as the events socket does).
        await self.accept()
        if not auth.ok:
            await self.send_json(
                {"type": "error", **error_body(auth.error_code, auth.message, None)}
            )
            await self.close(code=auth.close_code)
            return
        self.tenant = auth.tenant
        self.group = group_name(auth.tenant.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        payload = await database_sync_to_async(wallboard)(auth.tenant, queues=self.queues)
        await self.send_json({"type": "wallboard", "wallboard": payload})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # The page sends nothing but pings; anything else (binary, not JSON) is ignored.
        if self.group is not None and text_data and len(text_data) < 256:
            try:
                content = json.loads(text_data)
            except ValueError:
                return
            if isinstance(content, dict) and content.get("action") == "ping":
                await self.send_json({"type": "pong"})

    async def wallboard_update(self, message: dict[str, Any]) -> None:
        payload = only_queues(message["wallboard"], self.queues)
        await self.send_json({"type": "wallboard.update", "wallboard": payload})


def wallboard_app():
    """The ASGI app of the route: the portal session is the only credential."""
    from pbx.portal.consumers import SessionOnly

    return SessionOnly(WallboardConsumer.as_asgi())
