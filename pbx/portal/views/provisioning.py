"""Phones on a tenant's host: list, add, edit (lines, BLF keys, settings, access), effective
settings with their source, custom templates (clone, edit, validate, preview), re-provision and
reboot, and the phones CSV import. Every write goes through ``provisioning.actions``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import held_permissions, tenant_permission_required
from pbx.portal.lists import list_page
from provisioning import actions
from provisioning.config import (
    KNOWN_SETTINGS,
    effective_settings,
    model_choices,
    plain_url,
    render_preview,
    request_listener,
    tenant_host,
    token_url,
)
from provisioning.models import CustomTemplate, Device
from provisioning.vendors import MODELS, template_source, validate_template
from tenants.choices import Permission

from .common import actor, page
from .imports import upload_page

SECTION = "phones"
IMPORT_KIND = "phones"


# --- forms: they only shape input; the actions hold the rules ------------------------------


def _pairs(text: str) -> list[tuple[str, str]]:
    """Lines of ``first rest-of-line`` (blank lines and ``#`` comments skipped)."""
    out = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            first, _, rest = line.partition(" ")
            out.append((first.strip(), rest.strip()))
    return out


class DeviceAddForm(forms.Form):
    mac = forms.CharField(
        label="MAC address",
        max_length=32,
        help_text="Any notation: 00:15:65:A1:B2:C3, 0015.65a1.b2c3",
    )
    model_id = forms.ChoiceField(label="Model", choices=model_choices)
    label = forms.CharField(max_length=120, required=False)
    extension = forms.CharField(
        label="Extension on line 1", max_length=16, required=False, help_text="Optional."
    )


class DeviceEditForm(forms.Form):
    model_id = forms.ChoiceField(label="Model", choices=model_choices)
    label = forms.CharField(max_length=120, required=False)
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One per line: 'index=extension label', e.g. '1=101 Reception'.",
    )
    blf_keys = forms.CharField(
        label="BLF keys",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One per line: 'extension label', e.g. '103 Boss'.",
    )
    settings = forms.CharField(
        label="Phone settings",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One per line: 'key value' (" + ", ".join(KNOWN_SETTINGS) + ").",
    )
    allowed_networks = forms.CharField(
        label="Allowed networks",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Addresses or CIDR networks, one per line. Empty: any address.",
    )
    provisioning_until = forms.DateTimeField(
        label="Provisioning window ends",
        required=False,
        help_text="Until then the URL alone works; afterwards the phone's credentials are needed.",
    )
    new_credentials = forms.BooleanField(label="Issue new HTTP credentials", required=False)
    new_url_token = forms.BooleanField(label="Issue a new provisioning URL", required=False)

    @staticmethod
    def initial_for(device: Device) -> dict:
        return {
            "model_id": device.model_id,
            "label": device.label,
            "lines": "\n".join(
                f"{line.index}={line.extension.number} {line.label}".strip()
                for line in device.lines.select_related("extension").order_by("index")
            ),
            "blf_keys": "\n".join(f"{k['extension']} {k['label']}" for k in device.blf_keys),
            "settings": "\n".join(f"{k} {v}" for k, v in device.settings.items()),
            "allowed_networks": "\n".join(device.allowed_networks),
            "provisioning_until": device.provisioning_until,
        }

    def action_kwargs(self) -> dict:
        data = self.cleaned_data
        lines = []
        for first, label in _pairs(data["lines"]):
            index, _, number = first.partition("=")
            lines.append({"index": index, "extension": number, "label": label})
        return {
            "model_id": data["model_id"],
            "label": data["label"],
            "lines": lines,
            "blf_keys": [{"extension": e, "label": lb} for e, lb in _pairs(data["blf_keys"])],
            "settings": dict(_pairs(data["settings"])),
            "allowed_networks": [first for first, _ in _pairs(data["allowed_networks"])],
            "provisioning_until": data["provisioning_until"],
            "new_credentials": data["new_credentials"],
            "new_url_token": data["new_url_token"],
        }


class TemplateForm(forms.Form):
    source = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "code"}),
        strip=False,
    )
    device = forms.ModelChoiceField(
        queryset=Device.objects.none(), required=False, label="Preview for phone"
    )


# --- phones ---------------------------------------------------------------------------------


@tenant_permission_required(Permission.DEVICES_VIEW)
def phone_list(request):
    ctx = list_page(
        request,
        Device.objects.prefetch_related("lines__extension"),
        search=("mac", "label", "model_id", "last_fetch_address"),
        sorts={
            "mac": "mac",
            "label": "label",
            "model": "model_id",
            "status": "status",
            "fetched": "last_fetch_at",
        },
        default="mac",
    )
    return page(request, "portal/phones/list.html", ctx, section=SECTION)


@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_add(request):
    form = DeviceAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        lines = [{"index": 1, "extension": data["extension"]}] if data["extension"] else []
        try:
            device = actions.do_add_device(
                mac=data["mac"],
                model_id=data["model_id"],
                label=data["label"],
                lines=lines,
                actor=actor(request),
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Phone {device.mac} added.")
            return redirect("portal:phone_edit", pk=device.pk)
    return page(request, "portal/phones/add.html", {"form": form}, section=SECTION)


@tenant_permission_required(Permission.DEVICES_VIEW)
def phone_edit(request, pk):
    device = get_object_or_404(Device, pk=pk)
    can_manage = Permission.DEVICES_MANAGE in held_permissions(request)
    form = DeviceEditForm(request.POST or None, initial=DeviceEditForm.initial_for(device))
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if form.is_valid():
            try:
                actions.do_update_device(device, actor=actor(request), **form.action_kwargs())
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, f"Phone {device.mac} saved.")
                return redirect("portal:phone_edit", pk=device.pk)
    tenant = request.tenant
    host = tenant_host(tenant)
    ctx = {
        "form": form,
        "object": device,
        "can_manage": can_manage,
        "model": MODELS.get(device.effective_model_id),
        "effective": effective_settings(tenant, device),
        "url": token_url(device, host, **request_listener(request)),
        "plain_url": plain_url(host, **request_listener(request)),
        "username": device.http_username if can_manage else "",
        "password": device.http_password if can_manage else "",
    }
    return page(request, "portal/phones/edit.html", ctx, section=SECTION)


@require_POST
@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_signal(request, pk, what):
    device = get_object_or_404(Device, pk=pk)
    do = {"reprovision": actions.do_reprovision, "reboot": actions.do_reboot}.get(what)
    if do is None:
        raise Http404
    try:
        sent = do(device, actor=actor(request))
    except PbxError as exc:
        messages.error(request, exc.message)
    else:
        verb = "reboot" if what == "reboot" else "fetch its configuration"
        messages.success(request, f"Asked phone {device.mac} to {verb} ({sent} line(s)).")
    return redirect(request.POST.get("next") or "portal:phone_list")


@require_POST
@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_delete(request, pk):
    device = get_object_or_404(Device, pk=pk)
    actions.do_delete_device(device, actor=actor(request))
    messages.success(request, f"Phone {device.mac} deleted.")
    return redirect("portal:phone_list")


# --- templates ------------------------------------------------------------------------------


@tenant_permission_required(Permission.DEVICES_VIEW)
def template_list(request):
    custom = CustomTemplate.objects.order_by("model_id", "file_pattern")
    shipped = [
        {"model": model, "files": [spec.pattern for spec in model.files]}
        for model in MODELS.values()
    ]
    ctx = {"custom": custom, "shipped": shipped}
    return page(request, "portal/phones/templates.html", ctx, section=SECTION)


@tenant_permission_required(Permission.DEVICES_VIEW)
def template_edit(request, model_id, index):
    """Edit (or clone) the tenant's template for file ``index`` of ``model_id``.

    Buttons: *validate* checks only, *preview* renders for a chosen phone, *save* validates and
    stores; *revert* deletes the custom copy (the shipped template applies again).
    """
    model = MODELS.get(model_id)
    if model is None or not 0 <= index < len(model.files):
        raise Http404
    pattern = model.files[index].pattern
    custom = CustomTemplate.objects.filter(model_id=model_id, file_pattern=pattern).first()
    can_manage = Permission.DEVICES_MANAGE in held_permissions(request)
    initial = {"source": custom.source if custom else template_source(model_id, pattern)}
    form = TemplateForm(request.POST or None, initial=initial)
    phones = Device.objects.filter(model_id=model_id) | Device.objects.filter(
        detected_model_id=model_id
    )
    form.fields["device"].queryset = phones.order_by("mac")
    problems: list[str] | None = None
    preview = None
    intent = request.POST.get("intent", "")
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if intent == "revert" and custom is not None:
            actions.do_delete_custom_template(custom, actor=actor(request))
            messages.success(request, "Back to the shipped template.")
            return redirect("portal:phone_template_edit", model_id=model_id, index=index)
        if form.is_valid():
            source = form.cleaned_data["source"]
            if intent == "save":
                try:
                    actions.do_save_custom_template(
                        model_id=model_id, file_pattern=pattern, source=source, actor=actor(request)
                    )
                except PbxError as exc:
                    problems = list(exc.fields.get("source", [])) or [exc.message]
                else:
                    messages.success(request, "Template saved.")
                    return redirect("portal:phone_template_edit", model_id=model_id, index=index)
            elif intent == "preview" and form.cleaned_data["device"] is not None:
                try:
                    preview = render_preview(
                        request.tenant,
                        form.cleaned_data["device"],
                        model_id,
                        pattern,
                        source,
                        host=tenant_host(request.tenant),
                    ).content.decode("utf-8", "replace")
                except PbxError as exc:
                    problems = list(exc.fields.get("source", [])) or [exc.message]
            else:
                problems = validate_template(source, model_id, pattern)
    ctx = {
        "form": form,
        "model": model,
        "pattern": pattern,
        "custom": custom,
        "can_manage": can_manage,
        "problems": problems,
        "preview": preview,
    }
    return page(request, "portal/phones/template.html", ctx, section=SECTION)


# --- CSV import (the shared import pages show the report and run it) -----------------------


@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_import(request):
    return upload_page(
        request, kind=IMPORT_KIND, template="portal/phones/import.html", section=SECTION
    )
