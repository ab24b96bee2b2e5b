"""Desk-phone features of extensions: speed dials and hot desking (run inside the tenant's
schema). The API, the portal and the engine's ``feature.set`` requests (``*74``/``*75``,
``*70``/``*71``) all change them through these actions: validated, audited, and the routing
snapshot republished on commit.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import ValidationFailed
from pbx.tenancy import require_tenant

from .engine.snapshots import publish_on_commit
from .models import Extension, SpeedDial

__all__ = [
    "CODE_HELP",
    "NUMBER_HELP",
    "do_clear_speed_dial",
    "do_hotdesk_login",
    "do_hotdesk_logout",
    "do_set_speed_dial",
    "speed_dial_rows",
    "validate_speed_dial",
]

#: "2".."9" (speed dial 8) or "00".."99" (speed dial 100), as the contract reads them.
CODE_RE = re.compile(r"[2-9]|[0-9]{2}")
CODE_HELP = "2 to 9 (speed dial 8) or 00 to 99 (speed dial 100)"
#: What a speed dial may call: digits and * (feature codes), an optional leading +.
NUMBER_RE = re.compile(r"\+?[0-9*]{1,32}")
NUMBER_HELP = "an extension or phone number: digits and *, an optional leading +, at most 32"


def speed_dial_rows(ext: Extension) -> list[dict[str, str]]:
    """The extension's speed dials, by code, as the API and the portal show them."""
    return [
        {"code": code, "number": number}
        for code, number in ext.speed_dials.order_by("code").values_list("code", "number")
    ]


def validate_speed_dial(ext: Extension, code: object, number: object) -> tuple[str, str]:
    """``(code, number)`` when they make a speed dial of ``ext``; ValidationFailed otherwise
    (a field error for each bad value)."""
    errors: dict[str, list[str]] = {}
    code_text = code if isinstance(code, str) else ""
    number_text = number if isinstance(number, str) else ""
    if not CODE_RE.fullmatch(code_text):
        errors["code"] = [CODE_HELP]
    if not NUMBER_RE.fullmatch(number_text):
        errors["number"] = [NUMBER_HELP]
    elif number_text == ext.number:
        errors["number"] = ["an extension cannot speed-dial itself"]
    if errors:
        raise ValidationFailed("Invalid speed dial.", fields=errors)
    return code_text, number_text


def do_set_speed_dial(ext: Extension, code: object, number: object, *, actor: Actor) -> SpeedDial:
    """Set ``ext``'s speed dial ``code`` to ``number`` (replacing what it called before)."""
    tenant = require_tenant("desk-phone actions")
    code_text, number_text = validate_speed_dial(ext, code, number)
    with transaction.atomic():
        Extension.objects.select_for_update().filter(pk=ext.pk).first()
        row = SpeedDial.objects.filter(extension=ext, code=code_text).first()
        before = row.number if row is not None else ""
        if row is None:
            row = SpeedDial.objects.create(extension=ext, code=code_text, number=number_text)
        elif row.number != number_text:
            row.number, row.updated_at = number_text, timezone.now()
            row.save(update_fields=["number", "updated_at"])
        if before != number_text:
            changes = {f"speed_dial {code_text}": [before, number_text]}
            audit.record(actor, "extension.speed_dial", ext, tenant=tenant, changes=changes)
            publish_on_commit(tenant)
    return row


def do_clear_speed_dial(ext: Extension, code: object, *, actor: Actor) -> bool:
    """Remove ``ext``'s speed dial ``code``; whether there was one."""
    tenant = require_tenant("desk-phone actions")
    code_text = code if isinstance(code, str) else ""
    if not CODE_RE.fullmatch(code_text):
        raise ValidationFailed("Invalid speed dial.", fields={"code": [CODE_HELP]})
    with transaction.atomic():
        row = SpeedDial.objects.select_for_update().filter(extension=ext, code=code_text).first()
        if row is None:
            return False
        changes = {f"speed_dial {code_text}": [row.number, ""]}
        row.delete()
        audit.record(actor, "extension.speed_dial", ext, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return True


def do_hotdesk_login(desk: Extension, user_number: object, *, actor: Actor) -> Extension:
    """Log extension ``user_number`` in at desk phone ``desk`` (an extension with
    ``hot_desk``): calls to the user ring the desk's phones too, and the desk calls as the
    user. A user is logged in at one desk at a time: any other desk is logged out."""
    tenant = require_tenant("desk-phone actions")
    number = user_number if isinstance(user_number, str) else ""
    if not desk.hot_desk:
        raise ValidationFailed(
            "This extension is no hot desk.", fields={"hot_desk": ["not a hot desk"]}
        )
    user = Extension.objects.filter(number=number).first() if number else None
    if user is None:
        raise ValidationFailed("No such extension.", fields={"user": ["no such extension"]})
    if user.pk == desk.pk or user.hot_desk:
        raise ValidationFailed(
            "A desk phone cannot log in at a desk.", fields={"user": ["is a hot desk itself"]}
        )
    with transaction.atomic():
        # Rows locked in primary-key order: the desk and every desk the user is at now.
        others = Extension.objects.filter(hotdesk_user=number).exclude(pk=desk.pk)
        ids = sorted({desk.pk, *others.values_list("pk", flat=True)})
        locked = {e.pk: e for e in Extension.objects.select_for_update().filter(pk__in=ids)}
        for pk in ids:
            row = locked[pk]
            if pk == desk.pk or row.hotdesk_user != number:
                continue
            _set_user(row, "", actor, tenant, "extension.hotdesk_logout")
        desk = locked[desk.pk]
        if desk.hotdesk_user != number:
            _set_user(desk, number, actor, tenant, "extension.hotdesk_login")
    return desk


def do_hotdesk_logout(desk: Extension, *, actor: Actor) -> Extension:
    """Log whoever is logged in at ``desk`` out (nothing happens when nobody is)."""
    tenant = require_tenant("desk-phone actions")
    with transaction.atomic():
        desk = Extension.objects.select_for_update().get(pk=desk.pk)
        if desk.hotdesk_user:
            _set_user(desk, "", actor, tenant, "extension.hotdesk_logout")
    return desk


def _set_user(desk: Extension, number: str, actor: Actor, tenant, action: str) -> None:
    changes = {"hotdesk_user": [desk.hotdesk_user, number]}
    desk.hotdesk_user, desk.updated_at = number, timezone.now()
    desk.save(update_fields=["hotdesk_user", "updated_at"])
    audit.record(actor, action, desk, tenant=tenant, changes=changes)
    publish_on_commit(tenant)
