"""Phones on a tenant's host: list (with bulk re-provision, reboot and delete), add, edit (lines,
BLF keys, settings, access), effective settings with their source, custom templates (clone,
edit, validate, preview), re-provision and reboot, the phones CSV import, and an extension's
SIP credentials for a softphone (server, ports, QR code). Every write goes through the actions
(``provisioning.actions``, ``telephony.actions``)."""

from __future__ import annotations

from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal import bulk
from pbx.portal.access import held_permissions, host_tenant, tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.lists import list_page
from pbx.portal.phone_keys import KeyRows
from provisioning import actions
from provisioning.config import (
    KNOWN_SETTINGS,
    admin_listener,
    effective_settings,
    model_choices,
    plain_url,
    render_preview,
    tenant_host,
    token_url,
)
from provisioning.models import AUTO_MODEL, CustomTemplate, Device
from provisioning.vendors import MODELS, template_source, validate_template
from telephony import actions as ext_actions
from telephony.models import Extension, Transport
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


def model_name(model_id: str) -> str:
    """A model's display name ("Yealink T46U"), or the id itself for one no longer shipped."""
    model = MODELS.get(model_id)
    return model.display_name if model is not None else model_id


def model_vendor(model_id: str) -> str:
    model = MODELS.get(model_id)
    return model.vendor if model is not None else ""


def device_model_name(device: Device) -> str:
    """What the phone is, by name: the chosen model, or the recognised one when "auto"."""
    if device.model_id != AUTO_MODEL:
        return model_name(device.model_id)
    if device.detected_model_id:
        return f"{model_name(device.detected_model_id)} (recognised)"
    return "Not yet recognised"


def grouped_model_choices() -> list:
    """The model menu by vendor (an optgroup each), names not ids, "auto" first."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for model in MODELS.values():
        groups.setdefault(model.vendor, []).append((model.id, model.display_name))
    auto = [c for c in model_choices() if c[0] == AUTO_MODEL]
    return [*auto, *((vendor, choices) for vendor, choices in groups.items())]


class DeviceAddForm(forms.Form):
    mac = forms.CharField(
        label="MAC address",
        max_length=32,
        help_text="Any notation: 00:15:65:A1:B2:C3, 0015.65a1.b2c3",
    )
    model_id = forms.ChoiceField(label="Model", choices=grouped_model_choices)
    label = forms.CharField(max_length=120, required=False)
    extension = forms.CharField(
        label="Extension on line 1", max_length=16, required=False, help_text="Optional."
    )


class DeviceEditForm(forms.Form):
    model_id = forms.ChoiceField(label="Model", choices=grouped_model_choices)
    label = forms.CharField(max_length=120, required=False)
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
            "settings": "\n".join(f"{k} {v}" for k, v in device.settings.items()),
            "allowed_networks": "\n".join(device.allowed_networks),
            "provisioning_until": device.provisioning_until,
        }

    def action_kwargs(self, rows: KeyRows) -> dict:
        data = self.cleaned_data
        return {
            "model_id": data["model_id"],
            "label": data["label"],
            "lines": rows.lines(),
            "blf_keys": rows.blf_keys(),
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


def _lines_text(device: Device) -> str:
    return ", ".join(line.extension.number for line in device.lines.all())


def _effective_vendor(device: Device) -> str:
    return model_vendor(device.effective_model_id)


# No HTTP password, no provisioning token: secrets are never exported.
PHONE_COLUMNS: list[Column] = [
    ("MAC", "mac"),
    ("Label", "label"),
    ("Vendor", _effective_vendor),
    ("Model", device_model_name),
    ("Model id", "model_id"),
    ("Lines", _lines_text),
    ("Status", "get_status_display"),
    ("Last fetch", "last_fetch_at"),
    ("Last fetch from", "last_fetch_address"),
    ("User agent", "last_fetch_user_agent"),
    ("Created", "created_at"),
]

PHONE_BULK_LABELS = [
    ("reprovision", "Re-provision (fetch configuration)"),
    ("reboot", "Reboot"),
    ("delete", "Delete…"),
]


@tenant_permission_required(Permission.DEVICES_VIEW)
def phone_list(request):
    ctx = list_page(
        request,
        Device.objects.prefetch_related("lines__extension"),
        search=("mac", "label", "model_id", "detected_model_id", "last_fetch_address"),
        sorts={
            "mac": "mac",
            "label": "label",
            "model": "model_id",
            "status": "status",
            "fetched": "last_fetch_at",
        },
        default="mac",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], PHONE_COLUMNS, name="phones")
    ctx["rows"] = [
        {
            "device": d,
            "vendor": _effective_vendor(d),
            "model": device_model_name(d),
            "lines": list(d.lines.all()),
        }
        for d in ctx["page"]
    ]
    ctx["bulk_actions"] = PHONE_BULK_LABELS
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
    data = request.POST or None
    form = DeviceEditForm(data, initial=DeviceEditForm.initial_for(device))
    rows = KeyRows(device, data)
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if form.is_valid() and rows.is_valid():
            try:
                actions.do_update_device(device, actor=actor(request), **form.action_kwargs(rows))
            except PbxError as exc:
                rows.take_errors(exc)
                if exc.fields or not rows.errors:
                    add_action_errors(form, exc)
            else:
                messages.success(request, f"Phone {device.mac} saved.")
                return redirect("portal:phone_edit", pk=device.pk)
    tenant = request.tenant
    host = tenant_host(tenant)
    ctx = {
        "form": form,
        "rows": rows,
        "object": device,
        "can_manage": can_manage,
        "model": MODELS.get(device.effective_model_id),
        "effective": effective_settings(tenant, device),
        "url": token_url(device, host, **admin_listener(request)),
        "plain_url": plain_url(host, **admin_listener(request)),
        "username": device.http_username if can_manage else "",
        "password": device.http_password if can_manage else "",
    }
    return page(request, "portal/phones/edit.html", ctx, section=SECTION)


SIGNALS = {
    "reprovision": (
        actions.do_reprovision,
        "fetch its configuration",
        "asked to re-provision",
    ),
    "reboot": (actions.do_reboot, "reboot", "asked to reboot"),
}


def registered_numbers(tenant, numbers: set[str]) -> set[str] | None:
    """Which of ``numbers`` have a phone registered now (None: the location store is down)."""
    from telephony.engine.state import tenant_registrations

    try:
        items = tenant_registrations(tenant.sip_domain or "")
    except Exception:
        return None
    return {i["extension"] for i in items} & numbers


def unreachable_reason(device: Device, registered: set[str] | None, verb: str) -> str | None:
    """Why a check-sync cannot reach ``device`` (no line registered now), or None when it can
    (or when the location store cannot tell: the action then decides)."""
    if registered is None:
        return None
    numbers = {line.extension.number for line in device.lines.all()}
    if not numbers or numbers & registered:
        return None  # no lines: the action's own refusal says so
    if device.last_fetch_at is None:
        return (
            f"This phone has never registered, so it cannot be told to {verb}. "
            "Set it up with its provisioning URL (or its credentials) first."
        )
    lines = ", ".join(sorted(numbers))
    return (
        f"This phone is not registered now (line {lines}), so it cannot be told to {verb}; "
        "it will take its new configuration at its next periodic check or restart."
    )


def _send_signal(device: Device, what: str, who, registered: set[str] | None) -> int:
    do, verb, _done = SIGNALS[what]
    reason = unreachable_reason(device, registered, verb)
    if reason is not None:
        from pbx.errors import ValidationFailed

        raise ValidationFailed(reason)
    return do(device, actor=who)


@require_POST
@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_signal(request, pk, what):
    device = get_object_or_404(Device.objects.prefetch_related("lines__extension"), pk=pk)
    if what not in SIGNALS:
        raise Http404
    numbers = {line.extension.number for line in device.lines.all()}
    registered = registered_numbers(host_tenant(request), numbers)
    try:
        sent = _send_signal(device, what, actor(request), registered)
    except PbxError as exc:
        messages.error(request, f"Phone {device.mac}: {exc.message}")
    else:
        verb = SIGNALS[what][1]
        messages.success(request, f"Asked phone {device.mac} to {verb} ({sent} line(s)).")
    return redirect(bulk.back_to(request, reverse("portal:phone_list")))


@require_POST
@tenant_permission_required(Permission.DEVICES_MANAGE)
def phone_bulk(request):
    """Re-provision, reboot or delete the checked phones (delete asks for confirmation
    first, listing each phone with its lines)."""
    action, back, objects, missing = bulk.selection(
        request, Device.objects.prefetch_related("lines__extension"), reverse("portal:phone_list")
    )
    if action == "delete":
        return bulk.confirm_delete(
            request,
            objects,
            missing,
            delete=lambda d, who: actions.do_delete_device(d, actor=who),
            label=lambda d: d.mac,
            rows=lambda: [{"device": d, "model": device_model_name(d)} for d in objects],
            noun="phone",
            template="portal/phones/bulk_delete.html",
            section=SECTION,
            back=back,
        )
    if action not in SIGNALS:
        messages.error(request, "Choose what to do with the selected phones.")
        return redirect(back)
    numbers = {line.extension.number for d in objects for line in d.lines.all()}
    registered = registered_numbers(host_tenant(request), numbers)
    outcome = bulk.run(
        request,
        objects,
        missing,
        lambda d, who: _send_signal(d, action, who, registered),
        label=lambda d: d.mac,
    )
    bulk.report(request, outcome, done=SIGNALS[action][2], noun="phone")
    return redirect(back)


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


# --- an extension's SIP credentials, for a softphone ------------------------------------------

#: Transports in the order shown, with the engine's listening port for each (0: off).
LISTENERS = (
    (Transport.UDP, "SIP_UDP_PORT"),
    (Transport.TCP, "SIP_UDP_PORT"),  # the engine's TCP port is its UDP port
    (Transport.TLS, "SIP_TLS_PORT"),
    (Transport.WS, "SIP_WS_PORT"),
    (Transport.WSS, "SIP_WSS_PORT"),
)


def sip_listeners(ext: Extension) -> list[dict]:
    """The transports the engine listens on and ``ext`` may use, with their ports."""
    allowed = set(ext.allowed_transports or [])
    out = []
    for transport, setting in LISTENERS:
        port = int(getattr(settings, setting, 0) or 0)
        if port > 0 and transport.value in allowed:
            out.append({"transport": transport.value, "label": transport.label, "port": port})
    return out


def account_uri(
    *, user: str, domain: str, server: str, port: int, transport: str, password: str = ""
) -> str:
    """The account as one RFC 3261 SIP URI: ``sip:user[:password]@domain:port;transport=…``,
    with ``maddr`` naming the server to send to when it is not the domain itself."""
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    uri = f"sip:{userinfo}@{domain}:{port};transport={transport}"
    if server and server != domain:
        uri += f";maddr={server}"
    return uri


def qr_svg(data: str) -> str:
    """``data`` as an inline SVG QR code (segno; drawn here, no outside service)."""
    import segno

    return segno.make(data, error="m").svg_inline(
        scale=5, svgclass="qr", lineclass=None, title="QR code of this SIP account"
    )


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def extension_credentials(request, pk):
    """What a softphone needs to register as this extension: SIP domain and server, port and
    transport, user and authentication name, the password (revealed on request to those who
    manage extensions, audited) and a QR code of the account."""
    ext = get_object_or_404(Extension, pk=pk)
    tenant = host_tenant(request)
    can_reveal = Permission.EXTENSIONS_MANAGE in held_permissions(request)
    password = ""
    if request.method == "POST":
        if not can_reveal or request.POST.get("reveal") != "yes":
            raise Http404
        password = ext_actions.do_reveal_sip_password(ext, actor=actor(request))
    listeners = sip_listeners(ext)
    chosen = request.GET.get("transport", "")
    current = next((x for x in listeners if x["transport"] == chosen), None) or (
        listeners[0] if listeners else None
    )
    domain = tenant.sip_domain or ""
    server = settings.PBX_SIP_PUBLIC_HOST
    uri = (
        account_uri(
            user=ext.number,
            domain=domain,
            server=server,
            port=current["port"],
            transport=current["transport"],
            password=password,
        )
        if current is not None and domain
        else ""
    )
    ctx = {
        "object": ext,
        "domain": domain,
        "server": server,
        "listeners": listeners,
        "current": current,
        "password": password,
        "can_reveal": can_reveal,
        "uri": uri,
        # segno's own SVG (numbers and paths only): safe to inline.
        "qr": mark_safe(qr_svg(uri)) if uri else "",  # noqa: S308
        "lines": ext.device_lines.select_related("device").order_by("device__mac", "index"),
    }
    response = page(request, "portal/extensions/credentials.html", ctx, section="extensions")
    if password:
        response["Cache-Control"] = "no-store"
    return response
