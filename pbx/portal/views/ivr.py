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
from pbx.portal.routing_forms import destination_options
from routing import disa, ivr
from routing.models import Disa, IvrMenu
from telephony import features

from .common import actor, button_action, delete_page, edit_page, list_view, page
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
    def rows(menus) -> list[dict]:
        entries = {str(pk): name for pk, name in Disa.objects.values_list("pk", "name")}
        return [
            {
                "menu": m,
                "keys": [f"{o.digit}: {_label(o.target, entries)}" for o in m.options.all()],
                "after": _label(m.timeout_target, entries) or "Hang up",
            }
            for m in menus
        ]

    return list_view(
        request,
        IvrMenu.objects.prefetch_related("options"),
        "portal/ivr/list.html",
        section="ivr",
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
        rows=rows,
    )


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
    return edit_page(
        request,
        form,
        menu,
        create=ivr.do_create_ivr,
        update=ivr.do_update_ivr,
        saved=lambda fields: f"IVR menu {fields['number']} {fields['name']} saved.",
        back="portal:ivr_list",
        template="portal/ivr/form.html",
        section="ivr",
    )


@routing_admin
def ivr_delete(request, pk):
    """GET: what deleting the menu means (or what still sends calls to it); POST: delete."""
    menu = get_object_or_404(IvrMenu, pk=pk)
    return delete_page(
        request,
        menu,
        delete=ivr.do_delete_ivr,
        done=f"IVR menu {menu.number} {menu.name} deleted.",
        back="portal:ivr_list",
        template="portal/ivr/delete.html",
        section="ivr",
        context=lambda: {"used_by": ivr.references(menu.number, exclude_menu=menu.pk)},
    )


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
    return list_view(
        request,
        Disa.objects.select_related("extension"),
        "portal/disa/list.html",
        section="disa",
        search=("name", "extension__number"),
        sorts={"name": "name", "extension": "extension__number"},
        default="name",
    )


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
    return edit_page(
        request,
        form,
        entry,
        create=disa.do_create_disa,
        update=disa.do_update_disa,
        saved=lambda fields: f"DISA entry {fields['name']} saved.",
        back="portal:disa_list",
        template="portal/disa/form.html",
        section="disa",
    )


@routing_admin
def disa_delete(request, pk):
    """GET: what deleting the entry means (or what still sends calls to it); POST: delete."""
    entry = get_object_or_404(Disa, pk=pk)
    return delete_page(
        request,
        entry,
        delete=disa.do_delete_disa,
        done=f"DISA entry {entry.name} deleted.",
        back="portal:disa_list",
        template="portal/disa/delete.html",
        section="disa",
        context=lambda: {"used_by": disa.references(entry.pk)},
    )
