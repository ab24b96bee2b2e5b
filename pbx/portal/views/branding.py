"""The branding page: a tenant admin's own brand on the tenant's host (``tenant.settings``); the
system admin's platform brand and a dealer admin's dealer brand on the provider's host.

Every field left blank is inherited (shown as the placeholder and under the field); the preview
beside the form (``static/portal/brand-preview.js``) follows what is typed before it is saved.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from branding import actions
from branding.access import own_brand_of
from branding.colours import is_hex, low_contrast_warning, scheme
from branding.effective import asset_url, inherited_brand
from branding.images import KINDS_TEXT, LIMITS, max_bytes
from branding.mail import sender_line
from branding.models import TEXT_FIELDS
from branding.senders import sender_domains
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import held_permissions, host_tenant
from pbx.portal.forms import Section
from tenants.choices import Permission, Role

from .common import actor, page

SECTIONS = (
    Section("Names", ("product_name", "company_name", "website_url", "login_footer")),
    Section("Logo and icon", ("logo", "logo_url", "favicon", "favicon_url")),
    Section("Colours", ("primary_color", "accent_color")),
    Section("E-mail sender", ("email_from_name", "email_from_address")),
    Section("Support", ("support_email", "support_url", "support_phone")),
)
COLOUR = r"#[0-9a-fA-F]{6}"


def _text(name: str, label: str) -> forms.CharField:
    """A brand text as typed (not stripped: a trailing CR/LF must reach the action, which
    refuses it); its rules (one line, length, colour, sender domain) are the action's."""
    return forms.CharField(
        label=label, required=False, strip=False, max_length=actions.TEXT_FIELDS[name]
    )


class BrandForm(forms.Form):
    product_name = _text("product_name", "Product name")
    company_name = _text("company_name", "Company name")
    website_url = forms.URLField(
        assume_scheme="https", label="Website", max_length=200, required=False
    )
    login_footer = _text("login_footer", "Sign-in page footer")
    logo = forms.FileField(label="Logo", required=False)
    remove_logo = forms.BooleanField(label="Remove the uploaded logo", required=False)
    logo_url = forms.URLField(
        assume_scheme="https", label="Logo address (URL)", max_length=200, required=False
    )
    favicon = forms.FileField(label="Browser icon (favicon)", required=False)
    remove_favicon = forms.BooleanField(label="Remove the uploaded icon", required=False)
    favicon_url = forms.URLField(
        assume_scheme="https", label="Browser icon address (URL)", max_length=200, required=False
    )
    primary_color = _text("primary_color", "Top bar colour")
    accent_color = _text("accent_color", "Button and link colour")
    email_from_name = _text("email_from_name", "Sender name")
    email_from_address = forms.EmailField(label="Sender address", required=False)
    support_email = forms.EmailField(label="Support e-mail", required=False)
    support_url = forms.URLField(
        assume_scheme="https", label="Support website", max_length=200, required=False
    )
    support_phone = _text("support_phone", "Support phone")

    def __init__(self, *args, inherited, has_upload, **kwargs):
        super().__init__(*args, **kwargs)
        self.inherited = inherited
        kib = max_bytes() // 1024
        for kind in ("logo", "favicon"):
            smallest, largest = LIMITS[kind]
            self.fields[kind].help_text = (
                f"{KINDS_TEXT[2:].capitalize()}, at most {kib} KiB, "
                f"{smallest} to {largest} pixels a side. An upload is used before the address."
            )
            self.fields[kind].widget.attrs["accept"] = (
                "image/png,image/jpeg,image/gif,image/webp,.ico"
            )
            if not has_upload[kind]:
                del self.fields[f"remove_{kind}"]
        for name in TEXT_FIELDS:
            widget = self.fields[name].widget
            shown = inherited.get(name, "")
            widget.attrs["data-inherited"] = shown
            widget.attrs["data-preview"] = name
            if shown:
                widget.attrs["placeholder"] = shown
        for name in ("primary_color", "accent_color"):
            self.fields[name].widget.attrs.update(
                {"pattern": COLOUR, "size": 8, "spellcheck": "false"}
            )

    def changes(self, current: dict) -> dict:
        """What the action should write: changed texts, new uploads, removals."""
        data = self.cleaned_data
        fields = {name: data[name] for name in TEXT_FIELDS if data[name] != current.get(name, "")}
        for kind in ("logo", "favicon"):
            if data.get(kind):
                fields[kind] = data[kind]
            elif data.get(f"remove_{kind}"):
                fields[kind] = ""
        return fields


def _owner(request) -> dict:
    """Whose brand this page edits: the host tenant's; on the provider's host, the dealer
    admin's dealer's or (system admin) the platform's. Anyone else: 404."""
    user = request.user
    tenant = host_tenant(request)
    if tenant is not None:
        if Permission.TENANT_SETTINGS not in held_permissions(request):
            raise Http404
        return {"tenant": tenant}
    if user.role == Role.SYSTEM_ADMIN:
        return {}
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return {"dealer": user.dealer}
    raise Http404


def _inherited_values(brand) -> dict:
    values = {name: getattr(brand, name, "") or "" for name in TEXT_FIELDS}
    # What the preview shows for an inherited logo or icon: the inherited image itself.
    values["logo_src"] = asset_url(brand, "logo")
    values["favicon_src"] = asset_url(brand, "favicon")
    return values


def _owner_title(owner: dict) -> str:
    if "tenant" in owner:
        return f"the brand of {owner['tenant'].name}"
    if "dealer" in owner:
        return f"the brand of {owner['dealer'].name}"
    return "the platform's brand"


def _sections(form: BrandForm, inherited: dict, effective: dict) -> list[dict]:
    """The form's sections, each field with what the template shows beside it."""
    sections = []
    for section in SECTIONS:
        rows = []
        for name in section.fields:
            row = {
                "field": form[name],
                "kind": "text",
                "inherited": inherited.get(name, ""),
            }
            if name in ("logo", "favicon"):
                row["kind"] = "file"
                row["remove"] = form[f"remove_{name}"] if f"remove_{name}" in form.fields else None
            elif name in ("primary_color", "accent_color"):
                row["kind"] = "colour"
                row["picker"] = effective[name] or "#ffffff"
                row["warning"] = low_contrast_warning(effective[name])
            rows.append(row)
        sections.append({"title": section.title, "rows": rows})
    return sections


@login_required
def branding(request):
    owner = _owner(request)
    own = own_brand_of(**owner)
    inherited = _inherited_values(inherited_brand(**owner))
    current = {name: getattr(own, name, "") or "" for name in TEXT_FIELDS}
    has_upload = {
        kind: bool(own is not None and getattr(own, kind)) for kind in ("logo", "favicon")
    }
    form = BrandForm(
        request.POST or None,
        request.FILES or None,
        initial=current,
        inherited=inherited,
        has_upload=has_upload,
    )
    if owner.get("tenant") is not None or owner.get("dealer") is not None:
        # The rule is shown before the first attempt, not after it.
        domains = ", ".join(sorted(sender_domains(**owner)))
        form.fields[
            "email_from_address"
        ].help_text = f"An address in one of these domains or their subdomains: {domains}."
    if request.method == "POST" and form.is_valid():
        changes = form.changes(current)
        try:
            if changes:
                actions.do_set_brand(**owner, actor=actor(request), **changes)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Branding saved." if changes else "Nothing to change.")
            for name in ("primary_color", "accent_color"):
                warning = low_contrast_warning(form.cleaned_data[name])
                if warning:
                    messages.warning(request, f"{form.fields[name].label}: {warning}")
            return redirect("portal:branding")
    values = {
        name: (form[name].value() or "") if form.is_bound else current[name] for name in TEXT_FIELDS
    }
    effective = {name: values[name] or inherited[name] for name in TEXT_FIELDS}
    for name in ("primary_color", "accent_color"):
        # A colour being corrected (a field error) previews as what is in force.
        if not is_hex(effective[name]):
            effective[name] = current[name] or inherited[name]
    if own is not None:
        own.version = str(int(own.updated_at.timestamp() * 1000))
    for kind in ("logo", "favicon"):
        if has_upload[kind]:
            effective[f"{kind}_src"] = asset_url(own, kind)
        else:
            effective[f"{kind}_src"] = values[f"{kind}_url"] or inherited[f"{kind}_src"]
    ctx = {
        "form": form,
        "sections": _sections(form, inherited, effective),
        "owner_title": _owner_title(owner),
        "is_tenant": "tenant" in owner,
        "effective": effective,
        **scheme(effective["primary_color"], effective["accent_color"]),
        "default_from": settings.DEFAULT_FROM_EMAIL,
        "inherited_logo_src": inherited["logo_src"],
        "has_logo_upload": has_upload["logo"],
        "mail_from": sender_line(
            effective["email_from_name"], effective["email_from_address"], effective["product_name"]
        ),
        "cancel": reverse("portal:index"),
    }
    return page(request, "portal/branding/form.html", ctx, section="branding")
