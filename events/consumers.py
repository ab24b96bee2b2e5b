"""Pub/sub over WebSocket for API clients and the portal: ``/api/v1/ws/events/``.

Protocol (JSON text frames):

- server, on connect: ``{"type": "welcome", "tenant": <slug>, "topics": [...],
  "heartbeat": <seconds>}``; then ``{"type": "heartbeat", "ts": ...}`` every interval
- client: ``{"action": "subscribe", "topics": ["extension.status", "calls"]}`` ->
  ``{"type": "subscribed", "topics": [...]}``; subscribing to ``extension.status`` is followed by
  ``{"type": "snapshot", "topic": "extension.status", "data": {"extensions": ..., "calls": ...}}``
- client: ``{"action": "unsubscribe", "topics": [...]}``, ``{"action": "ping"}`` -> ``pong``
- server: ``{"type": "event", "event": {"id", "type", "topic", "tenant", "occurred_at",
  "data"}}`` for each event of a subscribed topic (the same envelope webhooks get; ``id`` is the
  outbox id, so a client can fill a gap from ``/api/v1/events/?after=<id>``)
- server: ``{"type": "error", "code", "message", "fields"}`` for a bad message (the connection
  stays open) or before closing with 4401 (not signed in / bad token / token expired / signed
  out, checked at each heartbeat), 4403 (no
  permission, suspended tenant, cross-origin session) or 4404 (unknown host).

Only the host tenant's group is joined, so a subscriber never sees another tenant's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from pbx.api.parsers import nesting_too_deep
from pbx.credentials import sid_revoked
from pbx.errors import ErrorCode, error_body

from .auth import CLOSE_UNAUTHENTICATED, WsAuth
from .choices import TOPIC_EXTENSION_STATUS, TOPICS
from .fanout import group_name
from .live import tenant_live_state

MAX_FRAME = 4096


class EventsConsumer(AsyncWebsocketConsumer):
    """One subscriber: joins its tenant's group, forwards events of its topics."""

    group: str | None = None
    heartbeat_task: asyncio.Task | None = None

    async def connect(self) -> None:
        auth: WsAuth = self.scope["pbx_auth"]
        self.auth = auth
        self.topics: set[str] = set()
        # Accept first, then close with a code: a refusal before the handshake reaches the
        # client as a bare HTTP 403, and it could not tell a bad token from a wrong host.
        await self.accept(subprotocol=auth.subprotocol)
        if not auth.ok:
            await self.send_error(auth.error_code, auth.message)
            await self.close(code=auth.close_code)
            return
        self.group = group_name(auth.tenant.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(
            {
                "type": "welcome",
                "tenant": auth.tenant.slug,
                "topics": sorted(TOPICS),
                "heartbeat": self.interval,
            }
        )
        self.heartbeat_task = asyncio.create_task(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.heartbeat_task
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    @property
    def interval(self) -> float:
        return float(getattr(settings, "PBX_WS_HEARTBEAT_SECONDS", 25.0))

    async def _heartbeat(self) -> None:
        # Keeps proxies from closing an idle socket, and ends a session whose token expired
        # (the client reconnects with a fresh one).
        while True:
            wait = self.interval
            if self.auth.token_exp is not None:
                wait = max(0.0, min(wait, self.auth.token_exp - time.time()))
            await asyncio.sleep(wait)
            if self.auth.token_exp is not None and time.time() >= self.auth.token_exp:
                await self.send_error(ErrorCode.AUTHENTICATION_FAILED, "The token expired.")
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            # Signed out (on any host) since the socket opened: end it too.
            if self.auth.token_session is not None and await sync_to_async(sid_revoked)(
                self.auth.token_session
            ):
                await self.send_error(ErrorCode.AUTHENTICATION_FAILED, "The token was revoked.")
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            await self.send_json({"type": "heartbeat", "ts": round(time.time(), 3)})

    # ----------------------------------------------------------------- frames
    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    async def send_error(self, code: str, message: str, fields: dict | None = None) -> None:
        await self.send_json({"type": "error", **error_body(code, message, fields)})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.auth.ok:
            return
        if text_data is None:
            await self.send_error(ErrorCode.PARSE_ERROR, "Send JSON text frames.")
            return
        if len(text_data) > MAX_FRAME:
            await self.send_error(ErrorCode.PARSE_ERROR, f"Frames are at most {MAX_FRAME} bytes.")
            return
        if nesting_too_deep(text_data):  # the decoder would recurse once per level
            await self.send_error(ErrorCode.PARSE_ERROR, "The frame nests too deeply.")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self.send_error(ErrorCode.PARSE_ERROR, "The frame is not JSON.")
            return
        if not isinstance(message, dict):
            await self.send_error(ErrorCode.PARSE_ERROR, "Send a JSON object.")
            return
        action = message.get("action")
        if action == "ping":
            await self.send_json({"type": "pong", "ts": round(time.time(), 3)})
        elif action in ("subscribe", "unsubscribe"):
            await self._subscription(action, message.get("topics"))
        else:
            await self.send_error(
                ErrorCode.VALIDATION_ERROR,
                "Unknown action.",
                {"action": ["one of subscribe, unsubscribe, ping"]},
            )

    async def _subscription(self, action: str, topics: Any) -> None:
        if (
            not isinstance(topics, list)
            or not topics
            or any(not isinstance(t, str) or t not in TOPICS for t in topics)
        ):
            await self.send_error(
                ErrorCode.VALIDATION_ERROR,
                "Unknown topics.",
                {"topics": [f"a list of: {', '.join(sorted(TOPICS))}"]},
            )
            return
        added = set(topics) - self.topics if action == "subscribe" else set()
        if action == "subscribe":
            self.topics |= set(topics)
        else:
            self.topics -= set(topics)
        await self.send_json({"type": action + "d", "topics": sorted(self.topics)})
        if TOPIC_EXTENSION_STATUS in added:
            state = await sync_to_async(tenant_live_state, thread_sensitive=False)(self.auth.tenant)
            await self.send_json(
                {"type": "snapshot", "topic": TOPIC_EXTENSION_STATUS, "data": state}
            )

    # ----------------------------------------------------------------- group
    async def pbx_event(self, message: dict[str, Any]) -> None:
        event = message.get("event") or {}
        if event.get("topic") in self.topics:
            await self.send_json({"type": "event", "event": event})
