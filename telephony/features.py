"""Feature access codes of a tenant (star codes: ``*78`` do not disturb, ``*72`` + a number
forward always...): the effective codes for the snapshot, the audited actions that change
them, and the handler of the engine's ``feature.set`` requests, which applies what a phone
dialled to its extension (run inside the tenant's schema).

A feature has the code of ``contract.FEATURE_DEFAULTS`` until the tenant changes it (a
``FeatureCode`` row); a row may also switch a feature off, and the engine then treats the code
as an ordinary number.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import PbxError, ValidationFailed
from pbx.tenancy import require_tenant

from .actions import do_update_extension
from .engine import requests
from .engine.snapshots import publish_on_commit
from .feature_codes import _effective, _stored, codes
from .models import Extension, FeatureCode
from .sip.contract import FEATURE_DEFAULTS, FEATURE_TAKES_NUMBER, EventType, Feature

__all__ = [
    "LABELS",
    "apply_feature_set",
    "code_table",
    "codes",
    "do_reset_feature_codes",
    "do_update_feature_codes",
    "privacy_code_problem",
]

log = logging.getLogger(__name__)

LABELS: dict[str, str] = {
    Feature.VOICEMAIL: "Voicemail: own mailbox",
    Feature.VOICEMAIL_DIRECT: "Voicemail: leave a message in a mailbox (+ its number)",
    Feature.DND_ON: "Do not disturb on",
    Feature.DND_OFF: "Do not disturb off",
    Feature.FORWARD_ALWAYS_ON: "Forward always on (+ number)",
    Feature.FORWARD_ALWAYS_OFF: "Forward always off",
    Feature.FORWARD_BUSY_ON: "Forward when busy on (+ number)",
    Feature.FORWARD_BUSY_OFF: "Forward when busy off",
    Feature.FORWARD_NO_ANSWER_ON: "Forward on no answer on (+ number)",
    Feature.FORWARD_NO_ANSWER_OFF: "Forward on no answer off",
    Feature.VOICEMAIL_ALWAYS_ON: "All calls to voicemail on",
    Feature.VOICEMAIL_ALWAYS_OFF: "All calls to voicemail off",
    Feature.VOICEMAIL_BUSY_ON: "Voicemail when busy on",
    Feature.VOICEMAIL_BUSY_OFF: "Voicemail when busy off",
    Feature.VOICEMAIL_NO_ANSWER_ON: "Voicemail on no answer on",
    Feature.VOICEMAIL_NO_ANSWER_OFF: "Voicemail on no answer off",
    Feature.PICKUP: "Pick up a ringing extension (+ its number)",
    Feature.PICKUP_GROUP: "Pick up a call ringing in my pickup groups",
    Feature.PARK: "Park a call (+ a slot, or the first free one)",
    Feature.RETRIEVE: "Retrieve a parked call (+ its slot)",
    Feature.INTERCOM: "Intercom: call with auto-answer (+ extension)",
    Feature.SPEED_DIAL_8: "Set a one-digit speed dial (+ digit + number)",
    Feature.SPEED_DIAL_100: "Set a two-digit speed dial (+ digits + number)",
    Feature.CALLBACK_ON: "Call me back when the busy number is free",
    Feature.CALLBACK_OFF: "Cancel automatic callback",
    Feature.HOTDESK_LOGIN: "Hot desking: log in at this phone (+ extension)",
    Feature.HOTDESK_LOGOUT: "Hot desking: log out of this phone",
}
CODE_RE = re.compile(r"[*#][0-9*]{1,6}")
CODE_HELP = "* or # and 1 to 6 digits or *, like *78"
DEFAULT_PRIVACY_CODE = "*67"


def label(feature: str) -> str:
    return LABELS.get(feature, feature.replace("_", " "))


def code_table() -> list[dict]:
    """Every feature as the API and the portal list it, in the contract's order."""
    effective = _effective(_stored())
    return [
        {
            "feature": str(feature),
            "label": label(feature),
            "default_code": FEATURE_DEFAULTS[feature],
            "code": effective[feature][0],
            "enabled": effective[feature][1],
            "takes_number": feature in FEATURE_TAKES_NUMBER,
        }
        for feature in FEATURE_DEFAULTS
    ]


# ------------------------------------------------------------------------------ validation


def _privacy_code() -> str:
    from routing.models import RoutingSettings

    return RoutingSettings.load().privacy_code or DEFAULT_PRIVACY_CODE


def _clash(code: str, other: str, *, takes: bool, other_takes: bool) -> str | None:
    """Why ``code`` cannot live beside ``other`` (None: it can)."""
    if code == other:
        return "the same code"
    if other.startswith(code) and takes:
        return f"{code} takes a number, so {other} would be read as {code} + {other[len(code) :]}"
    if code.startswith(other) and other_takes:
        return f"{other} takes a number, so {code} would be read as {other} + {code[len(other) :]}"
    return None


def problems(effective: dict[str, tuple[str, bool]], changed: set[str]) -> dict[str, list[str]]:
    """Field errors (by feature) of the ``changed`` features in the ``effective`` set."""
    from routing.models import IvrMenu

    errors: dict[str, list[str]] = {}
    privacy = _privacy_code()
    enabled = {f: c for f, (c, on) in effective.items() if on}
    for feature in sorted(changed):
        code, on = effective[feature]
        if not isinstance(code, str) or not CODE_RE.fullmatch(code):
            errors[feature] = [CODE_HELP]
            continue
        if not on:
            continue
        takes = feature in FEATURE_TAKES_NUMBER
        found = []
        for other, other_code in enabled.items():
            if other == feature or not CODE_RE.fullmatch(other_code):
                continue
            why = _clash(code, other_code, takes=takes, other_takes=other in FEATURE_TAKES_NUMBER)
            if why:
                found.append(f"clashes with '{label(other)}' ({other_code}): {why}")
        # The privacy code is dialled before a number: it takes one.
        why = _clash(code, privacy, takes=takes, other_takes=True)
        if why:
            found.append(f"clashes with the privacy code ({privacy}): {why}")
        if Extension.objects.filter(number=code).exists():
            found.append(f"extension {code} has this number")
        if IvrMenu.objects.filter(number=code).exists():
            found.append(f"IVR menu {code} has this number")
        if found:
            errors[feature] = found
    return errors


def privacy_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be the tenant's privacy code (dialled before a number) beside its
    enabled feature codes; None when it can. For the routing settings' check."""
    for feature, other in codes().items():
        why = _clash(code, other, takes=True, other_takes=feature in FEATURE_TAKES_NUMBER)
        if why:
            return f"clashes with the feature code of '{label(feature)}' ({other}): {why}"
    return None


# --------------------------------------------------------------------------------- actions


def _write(stored: dict[str, FeatureCode], feature: str, code: str, on: bool) -> None:
    row = stored.get(feature)
    if code == FEATURE_DEFAULTS[feature] and on:
        if row is not None:
            row.delete()
        return
    if row is None:
        FeatureCode.objects.create(feature=feature, code=code, enabled=on)
    elif (row.code, row.enabled) != (code, on):
        row.code, row.enabled, row.updated_at = code, on, timezone.now()
        row.save(update_fields=["code", "enabled", "updated_at"])


def do_update_feature_codes(changes: dict[str, dict], *, actor: Actor) -> list[dict]:
    """Change features' codes and switches together (``{feature: {"code", "enabled"}}``;
    either key may be missing), judged as one set: two features may swap codes. Returns the
    table (:func:`code_table`)."""
    tenant = require_tenant("feature code actions")
    unknown = sorted(set(changes) - set(FEATURE_DEFAULTS))
    if unknown:
        raise ValidationFailed(
            "Unknown features.", fields={f: ["not a feature"] for f in unknown[:10]}
        )
    with transaction.atomic():
        # One writer of the set at a time: the checks read every code.
        type(tenant).objects.select_for_update().filter(pk=tenant.pk).first()
        stored = _stored()
        effective = _effective(stored)
        before = dict(effective)
        errors: dict[str, list[str]] = {}
        for feature, change in changes.items():
            code, on = effective[feature]
            if not isinstance(change, dict):
                errors[feature] = ['an object {"code": ..., "enabled": ...}']
                continue
            if "code" in change:
                code = str(change["code"] or "").strip()
            if "enabled" in change:
                if not isinstance(change["enabled"], bool):
                    errors[feature] = ["enabled is true or false"]
                    continue
                on = change["enabled"]
            effective[feature] = (code, on)
        errors.update(problems(effective, set(changes) - set(errors)))
        if errors:
            raise ValidationFailed("Some feature codes are not usable.", fields=errors)
        diff = {
            f: [list(before[f]), list(effective[f])] for f in changes if before[f] != effective[f]
        }
        for feature in diff:
            _write(stored, feature, *effective[feature])
        if diff:
            audit.record(actor, "feature_codes.update", _Codes(), tenant=tenant, changes=diff)
            publish_on_commit(tenant)
    return code_table()


def do_reset_feature_codes(*, actor: Actor) -> list[dict]:
    """Every feature back to its default code, switched on."""
    tenant = require_tenant("feature code actions")
    defaults = {str(f): (c, True) for f, c in FEATURE_DEFAULTS.items()}
    errors = problems(defaults, set(defaults))
    if errors:
        raise ValidationFailed("The default codes clash with this tenant's numbers.", fields=errors)
    with transaction.atomic():
        deleted, _ = FeatureCode.objects.all().delete()
        if deleted:
            audit.record(actor, "feature_codes.reset", _Codes(), tenant=tenant)
            publish_on_commit(tenant)
    return code_table()


class _Codes:
    """The audit entries' object: the tenant's set of codes."""

    pk = ""

    def __str__(self) -> str:
        return "Feature codes"


# ------------------------------------------------------------------- the engine's requests


@dataclass(frozen=True)
class PhoneActor(Actor):
    """A change an extension made from its phone (a feature code it dialled)."""

    extension: str = ""

    @property
    def label(self) -> str:
        return f"phone of extension {self.extension}"


# feature -> (Extension field, value; None: the number dialled after the code)
_SETTINGS: dict[str, tuple[str, object]] = {
    Feature.DND_ON: ("dnd", True),
    Feature.DND_OFF: ("dnd", False),
    Feature.FORWARD_ALWAYS_ON: ("forward_always", None),
    Feature.FORWARD_ALWAYS_OFF: ("forward_always", ""),
    Feature.FORWARD_BUSY_ON: ("forward_busy", None),
    Feature.FORWARD_BUSY_OFF: ("forward_busy", ""),
    Feature.FORWARD_NO_ANSWER_ON: ("forward_no_answer", None),
    Feature.FORWARD_NO_ANSWER_OFF: ("forward_no_answer", ""),
}


# The desk-phone features (``telephony.desk``): speed dials and hot desking.
_DESK_FEATURES = frozenset(
    {Feature.SPEED_DIAL_8, Feature.SPEED_DIAL_100, Feature.HOTDESK_LOGIN, Feature.HOTDESK_LOGOUT}
)
_CODE_LENGTH = {Feature.SPEED_DIAL_8: 1, Feature.SPEED_DIAL_100: 2}


def _apply_desk_feature(ext: Extension, feature: str, number: str, schema: str) -> None:
    """A speed dial set or cleared from the phone (``number``: ``<code>:<target>``, an
    empty target clears), or a hot-desk log-in (``number``: the user) or log-out at ``ext``."""
    from .desk import do_clear_speed_dial, do_hotdesk_login, do_hotdesk_logout, do_set_speed_dial

    actor = PhoneActor(user=ext.user, extension=ext.number)
    try:
        with transaction.atomic():
            if feature == Feature.HOTDESK_LOGIN:
                do_hotdesk_login(ext, number, actor=actor)
            elif feature == Feature.HOTDESK_LOGOUT:
                do_hotdesk_logout(ext, actor=actor)
            else:
                code, _, target = number.partition(":")
                if len(code) != _CODE_LENGTH[Feature(feature)]:
                    raise ValidationFailed(
                        "Invalid speed dial.", fields={"code": [f"not a code of {feature}"]}
                    )
                if target:
                    do_set_speed_dial(ext, code, target, actor=actor)
                else:
                    do_clear_speed_dial(ext, code, actor=actor)
    except PbxError as exc:
        log.warning("feature.set %s %r for %s/%s refused (%s): %s", feature, number, schema,
                    ext.number, exc.message, exc.fields)  # fmt: skip


@requests.register(EventType.FEATURE_SET)
def apply_feature_set(event: dict[str, str]) -> None:
    """Apply a feature code an extension dialled (``feature.set``: schema, extension, feature,
    number) through the extension action (audited, republished). Idempotent: a repeated
    request changes nothing. A request that cannot apply (unknown extension or feature, a bad
    number) is logged and dropped, never raised: a raising handler is retried on every drain."""
    feature = str(event.get("feature") or "")
    if feature.startswith("voicemail"):
        return  # the mailbox features are the audio app's
    setting = _SETTINGS.get(feature)
    schema = str(event.get("schema") or "")
    number = str(event.get("extension") or "")
    if setting is None and feature not in _DESK_FEATURES:
        log.warning("feature.set for %s: unknown feature %r ignored", schema, feature)
        return
    from django_tenants.utils import tenant_context

    from tenants.models import Tenant

    tenant = Tenant.objects.filter(schema_name=schema).first()
    if tenant is None:
        log.warning("feature.set for unknown schema %r ignored", schema)
        return
    with tenant_context(tenant):
        ext = Extension.objects.filter(number=number).first()
        if ext is None:
            log.warning("feature.set %s for %s: no extension %r", feature, schema, number)
            return
        if setting is None:
            _apply_desk_feature(ext, feature, str(event.get("number") or ""), schema)
            return
        name, value = setting
        if value is None:
            value = str(event.get("number") or "").strip()
            if not value:
                log.warning("feature.set %s for %s/%s: no number given", feature, schema, number)
                return
        if getattr(ext, name) == value:
            return
        actor = PhoneActor(user=ext.user, extension=ext.number)
        change: dict[str, Any] = {name: value}
        try:
            with transaction.atomic():
                do_update_extension(ext, actor=actor, **change)
        except PbxError as exc:
            log.warning(
                "feature.set %s %r for %s/%s refused (%s): %s",
                feature,
                value,
                schema,
                number,
                exc.message,
                exc.fields,
            )
