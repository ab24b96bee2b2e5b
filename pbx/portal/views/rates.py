"""Rate tables and call rates.

On the provider's host the system admin (every table) and a dealer admin (its subtree's,
``billing.access``) list rate tables, create, edit and delete them, open a table's rates
(paged, searched by prefix), add, edit and delete rates, import a CSV file (a dry run shows
what would change; the admin then confirms it) and export one. On a tenant's host its
administrators read, and only read, the rates its calls are charged at ("Call rates").
Every write goes through ``billing.rate_tables`` / ``billing.rate_csv``.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from billing import rate_tables as actions
from billing.access import base_tables_for, rate_tables_managed_by
from billing.api.rates import csv_download
from billing.models import BillingAccount, Rate, RateKind, RateTable
from billing.rate_csv import MAX_BYTES, RateImportRejected, import_rates
from billing.rates import effective_items
from dealers.access import dealers_visible_to
from pbx.errors import PbxError, ValidationFailed
from pbx.forms import add_action_errors
from pbx.portal.access import host_tenant, platform_admin_required, tenant_permission_required
from pbx.portal.lists import list_page, paged
from pbx.portal.rate_forms import RateForm, RateImportForm, RateTableForm
from tenants.choices import Permission, Role
from trunks.access import trunks_managed_by

from .common import actor, delete_page, edit_page, list_view, page

RATES = "rates"
CALL_RATES = "call_rates"
#: How long a checked file waits for its confirmation (seconds).
PREVIEW_TTL = 30 * 60
PREVIEW_KEY = "public:rates:import:{user}:{token}"


def _owners(user) -> list[tuple[str, str]]:
    choices = [("", "The provider")] if user.role == Role.SYSTEM_ADMIN else []
    return choices + [(str(d.pk), f"Dealer {d.name}") for d in dealers_visible_to(user)]


def _table(request, pk) -> RateTable:
    return get_object_or_404(
        rate_tables_managed_by(request.user).select_related("dealer", "base"), pk=pk
    )


def _action_fields(user, fields: dict) -> dict:
    """The form's ids as the objects the actions take, found within ``user``'s scope."""
    fields = dict(fields)
    base_id = fields.pop("base_id", None)
    fields["base"] = base_tables_for(user).filter(pk=base_id).first() if base_id else None
    if base_id and fields["base"] is None:
        raise ValidationFailed("Unknown table.", fields={"base": ["unknown table"]})
    if "trunk_ids" in fields:
        fields["trunks"] = list(trunks_managed_by(user).filter(pk__in=fields.pop("trunk_ids")))
    return fields


# ------------------------------------------------------------------------------ tables


@platform_admin_required
def rate_table_list(request):
    qs = rate_tables_managed_by(request.user).select_related("dealer", "base")
    return list_view(
        request,
        qs,
        "portal/rates/list.html",
        section=RATES,
        search=("name", "description"),
        sorts={"name": "name", "kind": "kind", "updated": "updated_at"},
        default="name",
    )


def _table_form(request, table=None) -> RateTableForm:
    user = request.user
    bases = base_tables_for(user).order_by("name")
    if table is not None:
        bases = bases.exclude(pk=table.pk)
    initial = {}
    if table is not None:
        initial = {
            "name": table.name,
            "kind": table.kind,
            "currency": table.currency,
            "base": table.base_id,
            "markup_percent": table.markup_percent,
            "description": table.description,
            "trunks": [t.pk for t in table.trunks.all()],
        }
    elif user.role == Role.DEALER_ADMIN:
        initial = {"owner": str(user.dealer_id)}
    return RateTableForm(
        request.POST or None,
        initial=initial,
        owners=_owners(user),
        bases=list(bases),
        trunks=list(trunks_managed_by(user).order_by("name")),
        editing=table is not None,
    )


@platform_admin_required
def rate_table_add(request):
    user = request.user
    form = _table_form(request)

    def create(*, actor, fields):
        owner = form.cleaned_data.get("owner") or ""
        dealer = None
        if owner:
            dealer = dealers_visible_to(user).filter(pk=int(owner)).first()
            if dealer is None:
                raise Http404
        elif user.role != Role.SYSTEM_ADMIN:
            dealer = user.dealer
        return actions.do_create_rate_table(
            actor=actor, fields=_action_fields(user, fields), dealer=dealer
        )

    return edit_page(
        request,
        form,
        None,
        create=create,
        update=None,
        saved=lambda fields: f"Rate table {fields['name']} created.",
        back=reverse("portal:rate_table_list"),
        template="portal/rates/table_form.html",
        section=RATES,
    )


@platform_admin_required
def rate_table_edit(request, pk):
    table = _table(request, pk)
    form = _table_form(request, table)
    return edit_page(
        request,
        form,
        table,
        create=None,
        update=lambda obj, *, actor, fields: actions.do_update_rate_table(
            obj, actor=actor, fields=_action_fields(request.user, fields)
        ),
        saved=lambda fields: f"Rate table {fields['name']} saved.",
        back=reverse("portal:rate_table_detail", args=[table.pk]),
        template="portal/rates/table_form.html",
        section=RATES,
    )


@platform_admin_required
def rate_table_delete(request, pk):
    table = _table(request, pk)
    return delete_page(
        request,
        table,
        delete=actions.do_delete_rate_table,
        done=f"Rate table {table.name} deleted.",
        back=reverse("portal:rate_table_list"),
        template="portal/rates/table_delete.html",
        section=RATES,
        context=lambda: {
            "rate_count": table.rates.count(),
            "accounts": list(table.accounts.select_related("tenant").order_by("tenant__name")[:20]),
            "derived": list(table.derived.order_by("name")[:20]),
        },
    )


@platform_admin_required
def rate_table_detail(request, pk):
    """A table's own rates (paged, searched by prefix or description)."""
    table = _table(request, pk)
    ctx = list_page(
        request,
        Rate.objects.filter(table=table),
        search=("prefix", "description"),
        sorts={"prefix": "prefix", "per_minute": "per_minute"},
        default="prefix",
    )
    ctx.update(
        object=table,
        trunks=list(table.trunks.order_by("name")) if table.kind == RateKind.BUY else [],
        accounts=table.accounts.count(),
    )
    return page(request, "portal/rates/detail.html", ctx, section=RATES)


@platform_admin_required
def rate_table_export(request, pk):
    return csv_download(_table(request, pk))


# ------------------------------------------------------------------------------ rates


def _rate(request, table, pk) -> Rate:
    return get_object_or_404(Rate.objects.filter(table=table), pk=pk)


@platform_admin_required
def rate_edit(request, pk, rate_pk=None):
    """A table's rate (a new one without ``rate_pk``)."""
    table = _table(request, pk)
    rate = _rate(request, table, rate_pk) if rate_pk else None
    initial = {n: getattr(rate, n) for n in actions.RATE_FIELDS} if rate is not None else None
    form = RateForm(request.POST or None, initial=initial)
    done = "added" if rate is None else "saved"
    return edit_page(
        request,
        form,
        rate,
        create=lambda *, actor, fields: actions.do_create_rate(table, actor=actor, fields=fields),
        update=actions.do_update_rate,
        saved=lambda fields: f"Rate for {fields['prefix']} {done}.",
        back=reverse("portal:rate_table_detail", args=[table.pk]),
        template="portal/rates/rate_form.html",
        section=RATES,
        context={"table": table},
    )


@platform_admin_required
def rate_delete(request, pk, rate_pk):
    table = _table(request, pk)
    rate = _rate(request, table, rate_pk)
    return delete_page(
        request,
        rate,
        delete=actions.do_delete_rate,
        done=f"Rate for {rate.prefix} deleted.",
        back=reverse("portal:rate_table_detail", args=[table.pk]),
        template="portal/rates/rate_delete.html",
        section=RATES,
        context=lambda: {"table": table},
    )


# ------------------------------------------------------------------------------ import


@platform_admin_required
def rate_import(request, pk):
    """Upload: a dry run whose report is shown with a confirm button (the file waits in the
    cache, for this user only); confirm: the real run of the same file."""
    table = _table(request, pk)
    back = reverse("portal:rate_table_detail", args=[table.pk])
    ctx: dict = {"object": table, "max_kib": MAX_BYTES // 1024}
    if request.method == "POST" and request.POST.get("token"):
        token = request.POST["token"]
        key = PREVIEW_KEY.format(user=request.user.pk, token=token)
        held = cache.get(key) if token.isalnum() else None
        if held is None or held["table"] != table.pk:
            messages.error(request, "That preview has expired; upload the file again.")
            return redirect(reverse("portal:rate_import", args=[table.pk]))
        try:
            report = import_rates(
                table, held["data"], mode=held["mode"], dry_run=False, actor=actor(request)
            )
        except RateImportRejected as exc:
            ctx.update(form=RateImportForm(), errors=exc.errors[:200], error_count=len(exc.errors))
            return page(request, "portal/rates/import.html", ctx, section=RATES)
        except PbxError as exc:
            messages.error(request, exc.message)
            return redirect(reverse("portal:rate_import", args=[table.pk]))
        cache.delete(key)
        messages.success(
            request,
            f"Imported: {len(report.created)} created, {len(report.updated)} updated, "
            f"{report.unchanged} unchanged, {len(report.deleted)} deleted.",
        )
        return redirect(back)
    form = RateImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        mode = form.cleaned_data["mode"]
        if upload.size > MAX_BYTES:
            form.add_error("file", f"The file is larger than {MAX_BYTES // 1024} KiB.")
        else:
            data = upload.read()
            try:
                report = import_rates(table, data, mode=mode, dry_run=True, actor=actor(request))
            except RateImportRejected as exc:
                ctx.update(errors=exc.errors[:200], error_count=len(exc.errors))
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                token = secrets.token_hex(16)
                cache.set(
                    PREVIEW_KEY.format(user=request.user.pk, token=token),
                    {"table": table.pk, "mode": mode, "data": data},
                    PREVIEW_TTL,
                )
                ctx.update(report=report.as_dict(sample=20), token=token)
    ctx["form"] = form
    return page(request, "portal/rates/import.html", ctx, section=RATES)


# ------------------------------------------------------------------------------ tenant


@tenant_permission_required(Permission.TENANT_SETTINGS)
def call_rates(request):
    """The rates this tenant's calls are charged at, read-only."""
    tenant = host_tenant(request)
    account = BillingAccount.objects.filter(tenant=tenant).select_related("rate_table").first()
    table = account.rate_table if account is not None else None
    q = "".join(c for c in request.GET.get("q", "") if c.isdigit())[:16]
    items = effective_items(table, q)
    ctx = {"table": table, "account": account, **paged(request, items, q=q)}
    return page(request, "portal/rates/call_rates.html", ctx, section=CALL_RATES)
