"""A tenant's IVR menus (virtual receptionists) and feature access codes on its host
(``routing.manage``). The pages run in the tenant's schema; every write goes through
``routing.ivr`` or ``telephony.features``, whose field errors are shown on the fields."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.portal.access import host_tenant
from pbx.portal.ivr_forms import FeatureCodesForm, IvrMenuForm, ivr_initial
from pbx.portal.lists import list_page
from pbx.portal.routing_forms import destination_options
from routing import ivr
from routing.models import IvrMenu
from telephony import features

from .common import actor, button_action, page
from .routing import routing_admin


def _label(value) -> str:
    if not value:
        return ""
    return f"{ivr.kind_label(value.get('kind', ''))} {value.get('target', '')}".strip()


@routing_admin
def ivr_list(request):
    ctx = list_page(
        request,
        IvrMenu.objects.prefetch_related("options"),
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
    )
    ctx["rows"] = [
        {
            "menu": m,
            "keys": [f"{o.digit}: {_label(o.target)}" for o in m.options.all()],
            "after": _label(m.timeout_target) or "Hang up",
        }
        for m in ctx["page"]
    ]
    return page(request, "portal/ivr/list.html", ctx, section="ivr")


@routing_admin
def ivr_edit(request, pk=None):
    """A menu's page (a new one without ``pk``)."""
    menu = get_object_or_404(IvrMenu.objects.prefetch_related("options"), pk=pk) if pk else None
    prompts = [(n, n) for n in ivr.prompt_names()]
    form = IvrMenuForm(
        request.POST or None,
        initial=ivr_initial(menu) if menu is not None else None,
        targets=destination_options(host_tenant(request)),
        prompts=prompts,
    )
    if request.method == "POST" and form.is_valid():
        fields = form.fields_for_action()
        try:
            if menu is None:
                menu = ivr.do_create_ivr(actor=actor(request), fields=fields)
            else:
                ivr.do_update_ivr(menu, actor=actor(request), fields=fields)
        except PbxError as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, f"IVR menu {fields['number']} {fields['name']} saved.")
            return redirect("portal:ivr_list")
    ctx = {"form": form, "object": menu}
    return page(request, "portal/ivr/form.html", ctx, section="ivr")


@routing_admin
def ivr_delete(request, pk):
    """GET: what deleting the menu means (or what still sends calls to it); POST: delete."""
    menu = get_object_or_404(IvrMenu, pk=pk)
    if request.method == "POST":
        done = f"IVR menu {menu.number} {menu.name} deleted."
        button_action(request, lambda who: ivr.do_delete_ivr(menu, actor=who), done)
        return redirect("portal:ivr_list")
    ctx = {"object": menu, "used_by": ivr.references(menu.number, exclude_menu=menu.pk)}
    return page(request, "portal/ivr/delete.html", ctx, section="ivr")


@routing_admin
def feature_codes(request):
    form = FeatureCodesForm(request.POST or None, table=features.code_table())
    if request.method == "POST" and form.is_valid():
        try:
            features.do_update_feature_codes(form.changes(), actor=actor(request))
        except PbxError as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, "Feature codes saved.")
            return redirect("portal:feature_codes")
    return page(request, "portal/features/codes.html", {"form": form}, section="features")


@require_POST
@routing_admin
def feature_codes_reset(request):
    button_action(
        request,
        lambda who: features.do_reset_feature_codes(actor=who),
        "Every feature has its default code again.",
    )
    return redirect("portal:feature_codes")
