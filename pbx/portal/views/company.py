"""A tenant's host: the company's own settings, for holders of ``tenant.settings``."""

from django.contrib import messages
from django.shortcuts import redirect

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import host_tenant, tenant_permission_required
from pbx.portal.forms import CompanyForm
from tenants import actions as tenant_actions
from tenants.choices import Permission
from tenants.fields import COMPANY_FIELDS

from .common import actor, page


@tenant_permission_required(Permission.TENANT_SETTINGS)
def company(request):
    tenant = host_tenant(request)
    current = {name: getattr(tenant, name) for name in COMPANY_FIELDS}
    form = CompanyForm(request.POST or None, initial=current)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if current.get(k) != v}
        try:
            tenant_actions.do_update_company(tenant, actor=actor(request), **changes)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Company settings saved.")
            return redirect("portal:company")
    return page(
        request, "portal/company/form.html", {"form": form, "object": tenant}, section="company"
    )
