"""An extension's desk-phone features in the tenant's portal: its speed dials, whether it is a
hot desk and who is logged in there (log a user in or out). Every change goes through
``telephony.desk`` (validated, audited, republished), as the API's and the phone's do."""

from django import forms
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect

from pbx.portal.access import (
    held_permissions,
    host_tenant,
    tenant_member_required,
    tenant_permission_required,
)
from telephony import desk
from telephony.actions import do_update_extension
from telephony.models import Extension
from tenants.choices import Permission

from .common import button_action, form_action, page

__all__ = ["extension_desk", "my_speed_dials"]


class SpeedDialForm(forms.Form):
    """One speed dial; its rules are the action's (``telephony.desk.validate_speed_dial``)."""

    code = forms.CharField(required=False, strip=False, label="Code", help_text=desk.CODE_HELP)
    number = forms.CharField(required=False, strip=False, label="Calls", help_text=desk.NUMBER_HELP)


class HotDeskLoginForm(forms.Form):
    user = forms.CharField(
        required=False, strip=False, label="Log in", help_text="The extension that sits here."
    )


def _speed_dial_post(request, ext: Extension, kind: str | None, dial_form: SpeedDialForm):
    """Does the speed-dial form ``kind`` (set one, clear one) of ``ext``: whether it is done, or
    None when ``kind`` is neither."""
    if kind == "speed_dial":
        if not dial_form.is_valid():
            return False
        data = dial_form.cleaned_data
        return form_action(
            request,
            dial_form,
            lambda who: desk.do_set_speed_dial(ext, data["code"], data["number"], actor=who),
            f"Speed dial {data['code']} saved.",
        )
    if kind == "clear_speed_dial":
        code = request.POST.get("code", "")
        return button_action(
            request,
            lambda who: desk.do_clear_speed_dial(ext, code, actor=who),
            f"Speed dial {code} removed.",
        )
    return None


def _hot_desk_post(request, ext: Extension, kind: str | None, login_form: HotDeskLoginForm):
    """Does the hot-desk form ``kind`` (hot desk or not, log a user in, log out) of ``ext``:
    whether it is done, or None when ``kind`` is none of them."""
    if kind == "hot_desk":
        on = request.POST.get("hot_desk") == "on"
        return button_action(
            request,
            lambda who: do_update_extension(ext, actor=who, hot_desk=on),
            "It is a hot desk now." if on else "It is no hot desk now.",
        )
    if kind == "hotdesk_login":
        if not login_form.is_valid():
            return False
        user = login_form.cleaned_data["user"]
        return form_action(
            request,
            login_form,
            lambda who: desk.do_hotdesk_login(ext, user, actor=who),
            f"{user} is logged in at {ext.number}.",
        )
    if kind == "hotdesk_logout":
        return button_action(
            request,
            lambda who: desk.do_hotdesk_logout(ext, actor=who),
            f"Nobody is logged in at {ext.number} now.",
        )
    return None


def _desk_page(request, ext: Extension, dial_form: SpeedDialForm, section: str, **ctx):
    ctx = {
        "object": ext,
        "speed_dials": desk.speed_dial_rows(ext),
        "dial_form": dial_form,
        "logged_in_at": Extension.objects.filter(hotdesk_user=ext.number).exclude(pk=ext.pk),
        **ctx,
    }
    return page(request, "portal/extensions/desk.html", ctx, section=section)


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def extension_desk(request, pk):
    """Speed dials and hot desking of extension ``pk``."""
    ext = get_object_or_404(Extension, pk=pk)
    can_manage = Permission.EXTENSIONS_MANAGE in held_permissions(request)
    kind = request.POST.get("form") if request.method == "POST" else None
    dial_form = SpeedDialForm(request.POST if kind == "speed_dial" else None)
    login_form = HotDeskLoginForm(request.POST if kind == "hotdesk_login" else None)
    if kind is not None:
        if not can_manage:
            raise Http404
        done = _speed_dial_post(request, ext, kind, dial_form)
        if done is None:
            done = _hot_desk_post(request, ext, kind, login_form)
        if done is None:
            raise Http404
        if done:
            return redirect("portal:extension_desk", ext.pk)
    return _desk_page(
        request, ext, dial_form, "extensions", login_form=login_form, can_manage=can_manage
    )


@tenant_member_required
def my_speed_dials(request):
    """The signed-in user's own speed dials (and the desk it is logged in at, if any)."""
    ext = Extension.objects.filter(user_id=request.user.pk).first()
    if ext is None or request.user.tenant_id != host_tenant(request).id:
        raise Http404
    kind = request.POST.get("form") if request.method == "POST" else None
    dial_form = SpeedDialForm(request.POST if kind == "speed_dial" else None)
    done = _speed_dial_post(request, ext, kind, dial_form)
    if done is None and kind is not None:
        raise Http404
    if done:
        return redirect("portal:my_speed_dials")
    return _desk_page(request, ext, dial_form, "profile", can_manage=True, mine=True)
