"""Bulk import of phones from CSV (``mac,model,extension,label``) through the import registry.

Registered into ``pbx.imports.REGISTRY`` as kind ``phones`` when the app is ready, so the
same dry run, per-row report and all-or-nothing Celery run serve it.
"""

from __future__ import annotations

from pbx.audit import Actor
from pbx.errors import ValidationFailed
from pbx.imports import Importer, RowError, register
from provisioning.vendors import MODELS

from .models import AUTO_MODEL


def _model_id(value: str) -> str | None:
    """``yealink-t54w``, ``Yealink T54W`` or ``auto`` (case-insensitive) to a model id."""
    text = value.strip().lower()
    if text == AUTO_MODEL:
        return AUTO_MODEL
    if text in MODELS:
        return text
    for model in MODELS.values():
        if text == model.display_name.lower():
            return model.id
    return None


@register
class PhoneImporter(Importer):
    """Phones, each with its first line on an existing extension."""

    kind = "phones"
    label = "Phones"
    columns = ("mac", "model", "extension", "label")
    required = ("mac", "model", "extension")
    permission = "devices.manage"

    def validate(self, tenant, rows):
        from telephony.models import Extension
        from tenants.models import DeviceIndex

        from .actions import clean_device_fields, clean_mac, device_quota
        from .models import Device

        errors: list[RowError] = []
        macs: dict[int, str] = {}
        for index, row in rows:
            try:
                macs[index] = clean_mac(row["mac"])
            except ValidationFailed as exc:
                errors.append(RowError(index, "mac", exc.fields["mac"][0]))
        taken = set(DeviceIndex.objects.filter(mac__in=macs.values()).values_list("mac", flat=True))
        numbers = set(
            Extension.objects.filter(number__in=[r["extension"] for _, r in rows]).values_list(
                "number", flat=True
            )
        )
        seen: dict[str, int] = {}
        for index, row in rows:
            mac = macs.get(index)
            if mac is not None:
                if mac in seen:
                    errors.append(RowError(index, "mac", f"{mac} is also on row {seen[mac]}"))
                elif mac in taken:
                    errors.append(RowError(index, "mac", f"{mac} is already registered"))
                seen.setdefault(mac, index)
            model_id = _model_id(row["model"])
            if model_id is None:
                errors.append(RowError(index, "model", f"unknown phone model {row['model']!r}"))
            if not row["extension"]:
                errors.append(RowError(index, "extension", "required"))
            elif row["extension"] not in numbers:
                errors.append(
                    RowError(index, "extension", f"extension {row['extension']} does not exist")
                )
            # The device action's rules for its own fields (the label: one line, 120).
            try:
                clean_device_fields({"label": row["label"]})
            except ValidationFailed as exc:
                errors.extend(RowError(index, c, m[0]) for c, m in exc.fields.items())
        used = Device.objects.count()
        quota = device_quota(tenant)
        if used + len(rows) > quota:
            errors.append(
                RowError(
                    0,
                    "mac",
                    f"the tenant has {used} of {quota} phones; {len(rows)} more would exceed it",
                )
            )
        return errors

    def apply_row(self, tenant, row, actor: Actor):
        from .actions import do_add_device

        device = do_add_device(
            mac=row["mac"],
            model_id=_model_id(row["model"]) or row["model"],
            label=row["label"],
            lines=[{"index": 1, "extension": row["extension"]}],
            actor=actor,
        )
        return {"mac": device.mac, "extension": row["extension"]}
