"""Business writes for phones: devices, their lines, custom templates, re-provision and reboot.

Every action runs inside the tenant's schema, in one transaction, writes an audit entry and
sends its events on commit. The public ``tenants.DeviceIndex`` row of a device is written in
the same transaction as the device, so a MAC is never owned by two tenants.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, QuotaExceeded, ValidationFailed
from pbx.text import single_line_problem
from provisioning.vendors import (
    KEY_KINDS,
    ProvisioningError,
    get_model,
    normalize_mac,
    template_source,
    validate_template,
)
from telephony.models import Extension
from telephony.sip.contract import CheckSync, ParkSettings
from tenants.choices import TenantStatus
from tenants.models import DeviceIndex, Tenant

from .config import current_tenant, validate_networks, validate_settings
from .models import (
    AUTO_MODEL,
    CustomTemplate,
    Device,
    DeviceLine,
    DeviceStatus,
    ModelSettings,
    new_http_password,
    new_token,
)

log = logging.getLogger(__name__)

#: Lines a device of unknown ("auto") model may carry before its model is recognised.
AUTO_MAX_LINES = 16
DEVICE_FIELDS = (
    "model_id",
    "label",
    "blf_keys",
    "handsets",
    "settings",
    "allowed_networks",
    "provisioning_until",
)


# --- validation ---------------------------------------------------------------------------


def clean_mac(value: Any) -> str:
    """``value`` as 12 lower-case hex digits; a 400 naming the problem otherwise."""
    try:
        return normalize_mac(str(value or ""))
    except ValueError as exc:
        raise ValidationFailed(str(exc), fields={"mac": [str(exc)]}) from None


def _clean_model(model_id: str) -> str:
    if model_id == AUTO_MODEL:
        return model_id
    try:
        return get_model(model_id).id
    except ProvisioningError:
        raise ValidationFailed(
            f"Unknown phone model {model_id!r}.", fields={"model_id": ["unknown model"]}
        ) from None


def park_slots() -> ParkSettings:
    """The host tenant's park slots: its call park settings (run inside its schema)."""
    from telephony.models import ParkSettings as Stored

    return Stored.load().snapshot()


def _clean_blf(value: Any) -> list[dict[str, str]]:
    """The keys as stored: ``{"label", "extension"}`` plus ``"kind"`` when it is not a plain
    BLF key. A number that is no extension but one of the tenant's park slots is a park key
    whatever kind was given as (the phone watches the slot the same way)."""
    if not isinstance(value, list):
        raise ValidationFailed("BLF keys must be a list.", fields={"blf_keys": ["a list"]})
    keys, problems = [], []
    known = set(Extension.objects.values_list("number", flat=True))
    slots: ParkSettings | None = None
    for n, item in enumerate(value, start=1):
        if isinstance(item, str):
            item = {"extension": item}
        if not isinstance(item, dict) or not str(item.get("extension", "")).strip():
            problems.append(f"key {n}: needs an extension")
            continue
        number = str(item["extension"]).strip()
        kind = item.get("kind") or "blf"
        if kind not in KEY_KINDS:
            problems.append(f"key {n}: kind is one of {', '.join(KEY_KINDS)}")
            continue
        if kind != "intercom" and number not in known:
            slots = slots or park_slots()
            if slots.is_slot(number):
                kind = "park"
        if kind == "park":
            slots = slots or park_slots()
            if not slots.is_slot(number):
                last = slots.first + slots.count - 1
                problems.append(
                    f"key {n}: {number} is not a park slot ({slots.first}-{last})"
                    if slots.count
                    else f"key {n}: the tenant has no park slots"
                )
        elif number not in known:
            problems.append(f"key {n}: extension {number} does not exist")
        # Labels are written as values into the phone's configuration file.
        problem = single_line_problem(str(item.get("label") or ""), max_length=32)
        if problem:
            problems.append(f"key {n}: label: {problem}")
        label = str(item.get("label") or number)[:32]
        key = {"label": label, "extension": number}
        if kind != "blf":
            key["kind"] = kind
        keys.append(key)
    if problems:
        raise ValidationFailed("Invalid BLF keys.", fields={"blf_keys": problems})
    return keys


def _clean_handsets(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationFailed("Handsets must be an object.", fields={"handsets": ["an object"]})
    try:
        return {str(int(h)): int(li) for h, li in value.items()}
    except (TypeError, ValueError):
        raise ValidationFailed(
            "Handsets map handset numbers to line numbers.",
            fields={"handsets": ["handset number -> line number"]},
        ) from None


def clean_device_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` of a device as stored, or :class:`ValidationFailed` naming the field: the one
    set of rules for the API, the portal and the CSV import."""
    clean = dict(fields)
    if "model_id" in clean:
        clean["model_id"] = _clean_model(clean["model_id"])
    if "label" in clean:
        clean["label"] = str(clean["label"] or "")
        problem = single_line_problem(clean["label"], max_length=120)
        if problem:
            raise ValidationFailed("Invalid label.", fields={"label": [problem]})
    if "blf_keys" in clean:
        clean["blf_keys"] = _clean_blf(clean["blf_keys"])
    if "handsets" in clean:
        clean["handsets"] = _clean_handsets(clean["handsets"])
    if "settings" in clean:
        clean["settings"] = validate_settings(clean["settings"])
    if "allowed_networks" in clean:
        clean["allowed_networks"] = validate_networks(clean["allowed_networks"] or [])
    return clean


def _check_fits(device: Device) -> None:
    """The device's lines, keys and handsets fit its model (what the template can express)."""
    lines = list(device.lines.values_list("index", flat=True))
    if device.model_id == AUTO_MODEL:
        if len(lines) > AUTO_MAX_LINES:
            raise ValidationFailed(
                f"At most {AUTO_MAX_LINES} lines until the model is known.",
                fields={"lines": ["too many lines"]},
            )
        return
    model = get_model(device.model_id)
    errors: dict[str, list[str]] = {}
    over = [i for i in lines if i > model.max_accounts]
    if over:
        errors["lines"] = [f"{model.name} has accounts 1-{model.max_accounts}"]
    room = model.max_blf_keys
    if model.family.blf_after_lines:
        room = min(room, model.line_keys - (max(lines) if lines else 0))
    if len(device.blf_keys) > max(room, 0):
        errors["blf_keys"] = [f"{model.name} has room for {max(room, 0)} BLF keys beside its lines"]
    for handset, line in (device.handsets or {}).items():
        if not model.dect:
            errors["handsets"] = [f"{model.name} is not a DECT base"]
            break
        if not 1 <= int(handset) <= model.max_handsets:
            errors["handsets"] = [f"{model.name} takes handsets 1-{model.max_handsets}"]
        elif int(line) not in lines:
            errors["handsets"] = [f"handset {handset} points at line {line}, which is not set"]
    if errors:
        raise ValidationFailed("The phone's configuration does not fit its model.", fields=errors)


def device_quota(tenant: Tenant) -> int:
    override = (tenant.provisioning_settings or {}).get("max_devices")
    if isinstance(override, int) and override >= 0:
        return override
    return max(10, tenant.max_extensions * settings.PBX_PROV_DEVICES_PER_EXTENSION)


def _claim_mac(tenant: Tenant, mac: str) -> None:
    """Write the platform-wide index row; a MAC owned by a live tenant is a 409."""
    existing = DeviceIndex.objects.select_for_update().filter(mac=mac).first()
    if existing is not None:
        owner = Tenant.objects.filter(pk=existing.tenant_id).values_list("status", flat=True)
        if owner.first() not in (None, TenantStatus.DELETED):
            # Same message whoever owns it: never say which tenant has the phone.
            raise Conflict(
                "This MAC address is already registered on the platform.",
                fields={"mac": ["already registered"]},
            )
        # The tenant was deleted (its schema is gone): the phone is free again.
        existing.delete()
    try:
        with transaction.atomic():
            DeviceIndex.objects.create(mac=mac, tenant=tenant)
    except IntegrityError:
        raise Conflict(
            "This MAC address is already registered on the platform.",
            fields={"mac": ["already registered"]},
        ) from None


# --- devices ------------------------------------------------------------------------------


def do_add_device(
    *,
    mac: str,
    model_id: str,
    actor: Actor,
    lines: list[dict] | None = None,
    http_password: str | None = None,
    **fields: Any,
) -> Device:
    """Register a phone. ``lines`` is ``[{"index", "extension" (number or id), "label"}]``.

    The provisioning window opens for ``PBX_PROV_WINDOW_HOURS`` unless ``provisioning_until``
    is given (``None`` keeps it closed: credentials or the allow-list only).
    """
    tenant = current_tenant()
    mac = clean_mac(mac)
    window = timedelta(hours=settings.PBX_PROV_WINDOW_HOURS)
    fields.setdefault("provisioning_until", timezone.now() + window)
    clean = clean_device_fields({"model_id": model_id, **fields})
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        quota = device_quota(locked)
        if Device.objects.count() >= quota:
            raise QuotaExceeded(
                f"The tenant may have at most {quota} phones.",
                fields={"mac": [f"quota of {quota} phones reached"]},
            )
        if Device.objects.filter(mac=mac).exists():
            raise Conflict("This phone is already registered.", fields={"mac": ["already here"]})
        _claim_mac(tenant, mac)
        device = Device(mac=mac, **clean)
        device.set_http_password(http_password or new_http_password())
        device.save()
        for line in lines or []:
            _put_line(device, line)
        _check_fits(device)
        audit.record(
            actor,
            "device.create",
            device,
            tenant=tenant,
            changes={"mac": mac, **clean, "lines": _line_summary(device)},
        )
    return device


def do_update_device(
    device: Device,
    *,
    actor: Actor,
    lines: list[dict] | None = None,
    new_credentials: bool = False,
    new_url_token: bool = False,
    **fields: Any,
) -> Device:
    """Change a phone. ``lines``, when given, replaces every line. ``new_credentials`` and
    ``new_url_token`` rotate the HTTP password / the URL token (a leaked URL stops working)."""
    tenant = current_tenant()
    clean = clean_device_fields({k: v for k, v in fields.items() if k in DEVICE_FIELDS})
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", fields={name: ["not a device field"] for name in sorted(unknown)}
        )
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        changes = audit.diff(device, clean)
        for name, value in clean.items():
            setattr(device, name, value)
        if new_credentials:
            device.set_http_password(new_http_password())
            changes["http_password"] = "rotated"  # noqa: S105 - audit marker
        if new_url_token:
            device.token = new_token()
            changes["token"] = "rotated"  # noqa: S105 - audit marker
        device.updated_at = timezone.now()
        device.save()
        if lines is not None:
            device.lines.all().delete()
            for line in lines:
                _put_line(device, line)
            changes["lines"] = _line_summary(device)
        _check_fits(device)
        audit.record(actor, "device.update", device, tenant=tenant, changes=changes)
    return device


def do_delete_device(device: Device, *, actor: Actor) -> None:
    """Forget a phone (and free its MAC on the platform)."""
    tenant = current_tenant()
    with transaction.atomic():
        audit.record(actor, "device.delete", device, tenant=tenant, changes={"mac": device.mac})
        DeviceIndex.objects.filter(mac=device.mac, tenant=tenant).delete()
        device.delete()


def do_assign_line(
    device: Device, *, index: int, extension: Any, label: str = "", actor: Actor
) -> DeviceLine:
    """Put ``extension`` (number or id) on account ``index`` of ``device`` (replacing it)."""
    tenant = current_tenant()
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        line = _put_line(device, {"index": index, "extension": extension, "label": label})
        _check_fits(device)
        audit.record(
            actor,
            "device.assign_line",
            device,
            tenant=tenant,
            changes={"index": line.index, "extension": line.extension.number},
        )
    return line


def _find_extension(value: Any) -> Extension:
    if isinstance(value, Extension):
        return value
    text = str(value or "").strip()
    ext = Extension.objects.filter(number=text).first()
    if ext is None:
        raise ValidationFailed(
            f"Extension {text} does not exist.", fields={"lines": [f"no extension {text}"]}
        )
    return ext


def _put_line(device: Device, line: dict) -> DeviceLine:
    try:
        index = int(line.get("index", 1))
    except (TypeError, ValueError):
        raise ValidationFailed("A line index is a number.", fields={"lines": ["index"]}) from None
    if not 1 <= index <= 255:
        raise ValidationFailed("Line index must be 1-255.", fields={"lines": ["index 1-255"]})
    label = str(line.get("label") or "")
    problem = single_line_problem(label, max_length=64)
    if problem:
        raise ValidationFailed("Invalid line label.", fields={"lines": [f"label: {problem}"]})
    ext = _find_extension(line.get("extension"))
    row, _ = DeviceLine.objects.update_or_create(
        device=device,
        index=index,
        defaults={"extension": ext, "label": label},
    )
    return row


def _line_summary(device: Device) -> list[str]:
    return [
        f"{row.index}:{row.extension.number}"
        for row in device.lines.select_related("extension").order_by("index")
    ]


# --- settings and templates ---------------------------------------------------------------


def do_set_model_settings(model_id: str, values: dict, *, actor: Actor) -> ModelSettings:
    """Replace the tenant's settings for every device of ``model_id`` (layer "model")."""
    tenant = current_tenant()
    model_id = _clean_model(model_id)
    values = validate_settings(values)
    with transaction.atomic():
        row, _ = ModelSettings.objects.select_for_update().get_or_create(model_id=model_id)
        changes = audit.diff(row, {"settings": values})
        row.settings = values
        row.updated_at = timezone.now()
        row.save(update_fields=["settings", "updated_at"])
        audit.record(actor, "model_settings.update", row, tenant=tenant, changes=changes)
    return row


def _template_file(model_id: str, file_pattern: str) -> str:
    model = get_model(model_id)
    for spec in model.files:
        if file_pattern in (spec.pattern, spec.template):
            return spec.pattern
    raise ValidationFailed(
        f"{model.name} has no file {file_pattern!r}.",
        fields={"file_pattern": [f"one of {', '.join(s.pattern for s in model.files)}"]},
    )


def do_save_custom_template(
    *, model_id: str, file_pattern: str, source: str | None = None, actor: Actor
) -> CustomTemplate:
    """Create or replace the tenant's template for a model's file, after validating it.

    Without ``source`` the shipped template is cloned. A template that fails to compile,
    render against the sample phone, or produce valid vendor syntax is refused with its
    problems as field errors on ``source``.
    """
    tenant = current_tenant()
    if model_id == AUTO_MODEL:
        raise ValidationFailed("Pick a model.", fields={"model_id": ["a shipped model"]})
    model_id = _clean_model(model_id)
    pattern = _template_file(model_id, file_pattern)
    if source is None:
        source = template_source(model_id, pattern)
    problems = validate_template(source, model_id, pattern)
    if problems:
        raise ValidationFailed("The template has problems.", fields={"source": problems})
    with transaction.atomic():
        row, created = CustomTemplate.objects.select_for_update().get_or_create(
            model_id=model_id, file_pattern=pattern, defaults={"source": source}
        )
        if not created:
            row.source = source
            row.updated_at = timezone.now()
            row.save(update_fields=["source", "updated_at"])
        audit.record(
            actor,
            "template.create" if created else "template.update",
            row,
            tenant=tenant,
            changes={"model_id": model_id, "file_pattern": pattern, "bytes": len(source)},
        )
    return row


def do_delete_custom_template(template: CustomTemplate, *, actor: Actor) -> None:
    """Go back to the shipped template."""
    tenant = current_tenant()
    with transaction.atomic():
        audit.record(actor, "template.delete", template, tenant=tenant)
        template.delete()


# --- re-provision and reboot --------------------------------------------------------------


def control_messages(tenant: Tenant, device: Device, *, reboot: bool) -> list[CheckSync]:
    """One ``check-sync`` command per distinct extension on the device's lines."""
    numbers = sorted(set(device.lines.values_list("extension__number", flat=True)))
    return [CheckSync(tenant.sip_domain or "", number, reboot=reboot) for number in numbers]


def _publish(messages: list[CheckSync]) -> None:
    import redis

    from telephony.engine.state import send_control

    try:
        for message in messages:
            send_control(message)
    except redis.RedisError:
        # The change is committed; the phone will pick it up on its next periodic check.
        log.exception("could not publish %d check-sync command(s)", len(messages))


def _signal(device: Device, *, reboot: bool, actor: Actor) -> int:
    tenant = current_tenant()
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        messages = control_messages(tenant, device, reboot=reboot)
        if not messages:
            raise ValidationFailed(
                "The phone has no lines, so the PBX cannot reach it.",
                fields={"lines": ["no lines"]},
            )
        device.status = DeviceStatus.REBOOT if reboot else DeviceStatus.REPROVISION
        device.save(update_fields=["status"])
        audit.record(
            actor,
            "device.reboot" if reboot else "device.reprovision",
            device,
            tenant=tenant,
            changes={"users": [m.user for m in messages]},
        )
        transaction.on_commit(lambda: _publish(messages))
    return len(messages)


def do_reprovision(device: Device, *, actor: Actor) -> int:
    """Ask the phone to fetch its configuration now (SIP NOTIFY check-sync, no reboot)."""
    return _signal(device, reboot=False, actor=actor)


def do_reboot(device: Device, *, actor: Actor) -> int:
    """Ask the phone to fetch its configuration and reboot (check-sync;reboot=true)."""
    return _signal(device, reboot=True, actor=actor)
