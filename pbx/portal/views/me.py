"""The end user's own pages on their tenant's host: their extension, do-not-disturb and call
forwarding, their web and SIP passwords (under the tenant's policy), their own calls, and the
web softphone.

Nothing here takes an object id: every page works on the signed-in user's own extension, so a
user can reach nothing of anyone else's.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import host_tenant, tenant_member_required
from pbx.portal.export import wants_csv
from pbx.portal.forms import ForwardingFields, extension_choices, show_password_rules
from telephony import actions as ext_actions
from telephony.actions import FORWARD_FIELDS
from telephony.models import Cdr, Extension, own_extension
from telephony.webphone import softphone_available
from tenants import actions as tenant_actions
from tenants.passwords import policy_hint

from .calls import CdrFilterForm, cdr_export, cdr_page, involving
from .common import actor, page


class CallSettingsForm(ForwardingFields):
    """Do-not-disturb and call forwarding of the user's own extension."""

    dnd = forms.BooleanField(required=False, label="Do not disturb")

    field_order = ("dnd",)
    field_names = ("dnd", *FORWARD_FIELDS, "no_answer_timeout")


class WebPasswordForm(forms.Form):
    current_password = forms.CharField(strip=False, widget=forms.PasswordInput)
    new_password = forms.CharField(strip=False, widget=forms.PasswordInput, label="New password")
    confirm_password = forms.CharField(
        strip=False, widget=forms.PasswordInput, label="New password again"
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_current_password(self):
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("This is not your current password.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords differ.")
        return data


class SipPasswordForm(forms.Form):
    new_sip_password = forms.CharField(
        strip=False, widget=forms.PasswordInput, label="New SIP password"
    )
    confirm_sip_password = forms.CharField(
        strip=False, widget=forms.PasswordInput, label="New SIP password again"
    )

    def clean(self):
        data = super().clean()
        new = data.get("new_sip_password")
        if new and new != data.get("confirm_sip_password"):
            self.add_error("confirm_sip_password", "The two passwords differ.")
        return data


def _action_errors(form: forms.Form, exc: PbxError, rename: dict[str, str]) -> None:
    """Put an action's errors on this form's fields (the action names its own fields)."""
    if exc.fields:
        exc.fields = {rename.get(k, k): v for k, v in exc.fields.items()}
    add_action_errors(form, exc)


def _own_extension(request) -> Extension | None:
    return Extension.objects.filter(user_id=request.user.pk).first()


def _is_own_user(request) -> bool:
    """A user of this tenant (not a provider-side admin who switched in)."""
    return request.user.tenant_id == host_tenant(request).id


@tenant_member_required
def profile(request):
    """The user's extension with DND, forwarding and password forms."""
    ext = _own_extension(request)
    own = _is_own_user(request)
    kind = request.POST.get("form") if request.method == "POST" else None
    settings_form = (
        CallSettingsForm(
            request.POST if kind == "settings" else None,
            initial={n: getattr(ext, n) for n in CallSettingsForm.field_names},
            targets=extension_choices(ext),
        )
        if ext is not None
        else None
    )
    web_form = WebPasswordForm(request.POST if kind == "web_password" else None, user=request.user)
    sip_form = SipPasswordForm(request.POST if kind == "sip_password" else None)
    tenant = host_tenant(request)
    show_password_rules(web_form, tenant, {"new_password": "web"})
    show_password_rules(sip_form, tenant, {"new_sip_password": "sip"})
    if kind == "settings" and ext is not None and settings_form.is_valid():
        data = settings_form.cleaned_data
        changes = {n: data[n] for n in CallSettingsForm.field_names if getattr(ext, n) != data[n]}
        try:
            if changes:
                ext_actions.do_update_extension(ext, actor=actor(request), **changes)
        except PbxError as exc:
            add_action_errors(settings_form, exc)
        else:
            messages.success(request, "Your call settings are saved.")
            return redirect("portal:profile")
    elif kind == "web_password" and own and web_form.is_valid():
        new = web_form.cleaned_data["new_password"]
        try:
            if ext is not None:
                ext_actions.do_update_extension(ext, actor=actor(request), web_password=new)
            else:
                tenant_actions.do_update_user(request.user, actor=actor(request), password=new)
        except PbxError as exc:
            rename = {"password": "new_password", "web_password": "new_password"}
            _action_errors(web_form, exc, rename)
        else:
            request.user.refresh_from_db()
            update_session_auth_hash(request, request.user)  # stay signed in here
            messages.success(request, "Your web password is changed.")
            return redirect("portal:profile")
    elif kind == "sip_password" and ext is not None and sip_form.is_valid():
        try:
            ext_actions.do_update_extension(
                ext, actor=actor(request), sip_password=sip_form.cleaned_data["new_sip_password"]
            )
        except PbxError as exc:
            _action_errors(sip_form, exc, {"sip_password": "new_sip_password"})
        else:
            messages.success(request, "Your SIP password is changed; update your phones.")
            return redirect("portal:profile")
    elif kind is not None and kind not in ("settings", "web_password", "sip_password"):
        raise Http404
    ctx = {
        "policy_hint": policy_hint(host_tenant(request)),
        "object": ext,
        "own": own,
        "settings_form": settings_form,
        "web_form": web_form,
        "sip_form": sip_form,
    }
    return page(request, "portal/profile.html", ctx, section="me", status=400 if kind else 200)


class MyCdrFilterForm(CdrFilterForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["extension"]


def _my_cdrs(request):
    ext = _own_extension(request)
    if ext is None:
        return ext, Cdr.objects.none()
    return ext, involving(Cdr.objects.prefetch_related("recordings"), ext.number)


#: The softphone's keys and the letters printed under them (ITU E.161).
DIALPAD = (
    ("1", ""),
    ("2", "ABC"),
    ("3", "DEF"),
    ("4", "GHI"),
    ("5", "JKL"),
    ("6", "MNO"),
    ("7", "PQRS"),
    ("8", "TUV"),
    ("9", "WXYZ"),
    ("*", ""),
    ("0", "+"),
    ("#", ""),
)


@tenant_member_required
def softphone(request):
    """The web softphone (static/portal/softphone.js): the user's own extension, registered
    from this browser with a short-lived credential from ``/api/v1/me/softphone/``. With
    ``?window=1`` it is the pop-out window: no menu, and it takes the phone over from the
    browser's other tabs."""
    tenant = host_tenant(request)
    ext = own_extension(request.user, tenant)
    popout = request.GET.get("window") == "1"
    ctx = {
        "object": ext,
        "available": ext is not None and softphone_available(tenant, ext),
        "popout": popout,
        "dialpad": DIALPAD,
    }
    if popout:
        ctx["nav"] = []  # a small window of its own: the phone only
    return page(request, "portal/softphone.html", ctx, section="phone")


@tenant_member_required
def my_calls(request):
    """The calls the user's own extension made, received or was transferred into."""
    ext, qs = _my_cdrs(request)
    filters = MyCdrFilterForm(request.GET or None)
    ctx = {**cdr_page(request, qs, filters=filters), "object": ext}
    if wants_csv(request):
        return cdr_export(request, ctx, name="my-calls")
    return page(request, "portal/calls/my_calls.html", ctx, section="my_calls")


@tenant_member_required
def my_call_detail(request, pk):
    _ext, qs = _my_cdrs(request)
    cdr = get_object_or_404(qs.prefetch_related("segments"), pk=pk)
    ctx = {"cdr": cdr, "mine": True}
    return page(request, "portal/calls/cdr_detail.html", ctx, section="my_calls")
