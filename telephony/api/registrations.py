"""Live SIP state read from Redis: the host tenant's registrations, and the engine's bans.

The engine writes both (``telephony/sip/registrar.py``, ``telephony/sip/security.py``); the API
only reads them, except that a system admin may lift a ban. Neither lives in the database, so
these viewsets page plain lists instead of querysets.
"""

import json
import time
from datetime import UTC, datetime
from ipaddress import ip_address

import redis
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from pbx import audit
from pbx.api.permissions import PlatformAdmin
from pbx.api.viewsets import BaseViewSet
from pbx.audit import Actor
from pbx.errors import NotFound
from tenants.api.views import TenantScopedViewSet
from tenants.choices import Permission, Role

LOCATION_KEY = "sip:loc:{domain}:{user}"
BAN_KEY = "sip:ban:{ip}"
BAN_CHANNEL = "sip:ban:changed"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


# ----------------------------------------------------------------------------- registrations


def tenant_registrations(domain: str, extension: str | None = None) -> list[dict]:
    """Every live binding of a SIP domain, ordered by extension then contact."""
    r = _redis()
    pattern = LOCATION_KEY.format(domain=domain, user=extension or "*")
    keys = sorted(r.scan_iter(match=pattern, count=1000))
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    now = time.time()
    prefix = LOCATION_KEY.format(domain=domain, user="")
    items = []
    for key, fields in zip(keys, pipe.execute(), strict=True):
        user = key[len(prefix) :]
        for raw in fields.values():
            b = json.loads(raw)
            if b["expires_at"] <= now:
                continue  # expired, not yet reaped
            items.append(
                {
                    "extension": user,
                    "contact": b["contact"],
                    "transport": b["transport"],
                    "source_address": b["source_host"],
                    "source_port": b["source_port"],
                    "user_agent": b["user_agent"],
                    "instance": b.get("instance"),
                    "expires": int(b["expires_at"] - now + 0.5),
                    "expires_at": _iso(b["expires_at"]),
                    "registered_at": _iso(b.get("registered_at") or now),
                }
            )
    items.sort(key=lambda i: (i["extension"], i["contact"]))
    return items


class RegistrationSerializer(serializers.Serializer):
    extension = serializers.CharField()
    contact = serializers.CharField()
    transport = serializers.CharField()
    source_address = serializers.CharField()
    source_port = serializers.IntegerField()
    user_agent = serializers.CharField()
    instance = serializers.CharField(allow_null=True)
    expires = serializers.IntegerField(help_text="Seconds until the binding expires.")
    expires_at = serializers.DateTimeField()
    registered_at = serializers.DateTimeField()


class RegistrationViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """Phones registered to the host tenant's extensions, as the SIP engines see them now."""

    serializer_class = RegistrationSerializer
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    filter_backends = ()

    def get_queryset(self):
        extension = self.request.query_params.get("extension") or None
        if extension is not None and not extension.isdigit():
            return []
        return tenant_registrations(self.tenant.sip_domain, extension)

    @extend_schema(parameters=[OpenApiParameter("extension", str, description="one extension")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


# ------------------------------------------------------------------------------------ bans


class SipBan:
    """A ban as an audit target (bans live in Redis, not in the database)."""

    def __init__(self, ip: str) -> None:
        self.pk = ip

    def __str__(self) -> str:
        return f"SIP ban of {self.pk}"


def current_bans() -> list[dict]:
    r = _redis()
    prefix = BAN_KEY.format(ip="")
    keys = sorted(r.scan_iter(match=prefix + "*", count=1000))
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pttl(key)
    out = pipe.execute()
    items = []
    for key, raw, ttl in zip(keys, out[::2], out[1::2], strict=True):
        if raw is None or ttl is None or ttl <= 0:
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        items.append(
            {
                "ip": key[len(prefix) :],
                "reason": info.get("reason", ""),
                "banned_at": _iso(info["banned_at"]) if "banned_at" in info else None,
                "expires_in": round(ttl / 1000),
            }
        )
    return items


def do_clear_sip_ban(ip: str, *, actor: Actor) -> None:
    """Lift a ban on every engine: delete the key and announce it. Raises NotFound."""
    r = _redis()
    if not r.delete(BAN_KEY.format(ip=ip)):
        raise NotFound("This address is not banned.")
    r.publish(BAN_CHANNEL, f"unban {ip}")
    audit.record(actor, "sip_ban.clear", SipBan(ip))


class SipBanSerializer(serializers.Serializer):
    ip = serializers.CharField()
    reason = serializers.CharField(help_text="auth (failed passwords) or flood (request rate)")
    banned_at = serializers.DateTimeField(allow_null=True)
    expires_in = serializers.IntegerField(help_text="Seconds until the ban lifts by itself.")


class SipBanViewSet(mixins.ListModelMixin, BaseViewSet):
    """Source addresses the SIP engines currently drop (failed auth or floods). System admins
    on the provider's host may lift a ban."""

    serializer_class = SipBanSerializer
    permission_classes = (PlatformAdmin,)
    platform_roles = (Role.SYSTEM_ADMIN,)
    filter_backends = ()
    lookup_field = "ip"
    lookup_value_regex = r"[0-9A-Fa-f:.]+"

    def get_queryset(self):
        return current_bans()

    def destroy(self, request, ip=None):
        try:
            ip = str(ip_address(ip))
        except ValueError:
            raise NotFound("This address is not banned.") from None
        do_clear_sip_ban(ip, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
