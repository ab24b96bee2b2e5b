"""A tenant's IVR menus (virtual receptionists), DISA entries and feature access codes on its
host (``routing.manage``). The pages run in the tenant's schema; every write goes through
``routing.ivr``, ``routing.disa`` or ``telephony.features``, whose field errors are shown on
the fields."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.portal.access import host_tenant
from pbx.portal.ivr_forms import (
    DisaForm,
    FeatureCodesForm,
    IvrMenuForm,
    disa_initial,
    ivr_initial,
)
from pbx.portal.lists import list_page
from pbx.portal.routing_forms import destination_options
from routing import disa, ivr
from routing.models import Disa, IvrMenu
from telephony import features

from .common import actor, button_action, page, save_action
from .routing import routing_admin


def _label(value, entries: dict[str, str] | None = None) -> str:
    """A destination in words; a DISA entry by its name (``entries``: id -> name)."""
    if not value:
        return ""
    target = str(value.get("target", ""))
    if value.get("kind") == "disa" and entries and target in entries:
        target = entries[target]
    return f"{ivr.kind_label(value.get('kind', ''))} {target}".strip()


@routing_admin
def ivr_list(request):
    ctx = list_page(
        request,
        IvrMenu.objects.prefetch_related("options"),
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
    )
    entries = {str(pk): name for pk, name in Disa.objects.values_list("pk", "name")}
    ctx["rows"] = [
        {
            "menu": m,
            "keys": [f"{o.digit}: {_label(o.target, entries)}" for o in m.options.all()],
            "after": _label(m.timeout_target, entries) or "Hang up",
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
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            menu,
            lambda who, fields: ivr.do_create_ivr(actor=who, fields=fields),
            lambda menu, who, fields: ivr.do_update_ivr(menu, actor=who, fields=fields),
            lambda fields: f"IVR menu {fields['number']} {fields['name']} saved.",
        )
    ):
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


# ------------------------------------------------------------------------------------ DISA


def _enabled_extensions() -> list[tuple[str, str]]:
    from telephony.models import Extension

    rows = Extension.objects.filter(enabled=True).order_by("number")
    return [(n, f"{n} · {name}") for n, name in rows.values_list("number", "display_name")]


@routing_admin
def disa_list(request):
    ctx = list_page(
        request,
        Disa.objects.select_related("extension"),
        search=("name", "extension__number"),
        sorts={"name": "name", "extension": "extension__number"},
        default="name",
    )
    return page(request, "portal/disa/list.html", ctx, section="disa")


@routing_admin
def disa_edit(request, pk=None):
    """An entry's page (a new one without ``pk``); the PIN is never shown."""
    entry = get_object_or_404(Disa.objects.select_related("extension"), pk=pk) if pk else None
    extensions = _enabled_extensions()
    if entry is not None and entry.extension.number not in dict(extensions):
        extensions.append((entry.extension.number, f"{entry.extension.number} (disabled)"))
    form = DisaForm(
        request.POST or None,
        initial=disa_initial(entry) if entry is not None else None,
        extensions=extensions,
        has_pin=bool(entry and entry.pin_hash),
    )
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            entry,
            lambda who, fields: disa.do_create_disa(actor=who, fields=fields),
            lambda entry, who, fields: disa.do_update_disa(entry, actor=who, fields=fields),
            lambda fields: f"DISA entry {fields['name']} saved.",
        )
    ):
        return redirect("portal:disa_list")
    ctx = {"form": form, "object": entry}
    return page(request, "portal/disa/form.html", ctx, section="disa")


@routing_admin
def disa_delete(request, pk):
    """GET: what deleting the entry means (or what still sends calls to it); POST: delete."""
    entry = get_object_or_404(Disa, pk=pk)
    if request.method == "POST":
        done = f"DISA entry {entry.name} deleted."
        button_action(request, lambda who: disa.do_delete_disa(entry, actor=who), done)
        return redirect("portal:disa_list")
    ctx = {"object": entry, "used_by": disa.references(entry.pk)}
    return page(request, "portal/disa/delete.html", ctx, section="disa")
