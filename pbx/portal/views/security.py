"""Security pages. The provider's host, system admin only: source addresses the SIP engines have
banned (failed authentication or floods), and lifting a ban (``/api/v1/sip-bans/``). A tenant's
host: the tenant's own TLS certificates (``/api/v1/certificates/``)."""

from datetime import datetime
from ipaddress import ip_address

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.portal.access import host_tenant, system_admin_required, tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.forms import CertificateForm
from telephony.actions import do_clear_sip_ban
from telephony.engine.state import current_bans
from tenants.access import CERTIFICATE_WARNING_DAYS
from tenants.actions import do_delete_certificate, do_upload_certificate, tenant_hosts
from tenants.choices import Permission
from tenants.models import TenantCertificate

from .common import actor, button_action, form_action, page


@system_admin_required
def sip_bans(request):
    try:
        bans, unavailable = current_bans(), False
    except Exception:
        bans, unavailable = [], True
    q = request.GET.get("q", "").strip()[:64]
    if q:
        bans = [b for b in bans if q in b["ip"]]
    if wants_csv(request):
        return csv_response(request, bans, BAN_COLUMNS, name="sip-bans")
    ctx = {"bans": bans, "q": q, "unavailable": unavailable}
    return page(request, "portal/security/bans.html", ctx, section="bans")


BAN_COLUMNS: list[Column] = [
    ("Address", "ip"),
    ("Reason", "reason"),
    ("Banned", lambda b: datetime.fromisoformat(b["banned_at"]) if b["banned_at"] else None),
    ("Seconds left", "expires_in"),
]


@require_POST
@system_admin_required
def sip_ban_clear(request, ip):
    try:
        ip = str(ip_address(ip))
        do_clear_sip_ban(ip, actor=actor(request))
    except ValueError:
        messages.error(request, "Not an IP address.")
    except PbxError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The ban of {ip} is lifted.")
    return redirect("portal:sip_bans")


# --- a tenant's host: its own TLS certificates (tenant.settings) ---------------------------


@tenant_permission_required(Permission.TENANT_SETTINGS)
def certificates(request):
    """The tenant's certificates (hosts, expiry, fingerprint, issuer) and the upload form."""
    tenant = host_tenant(request)
    form = CertificateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():

        def run(who):
            do_upload_certificate(
                tenant,
                chain=form.cleaned_data["chain"],
                key=form.cleaned_data["key"],
                actor=who,
            )

        if form_action(request, form, run, "The certificate is uploaded and served now."):
            return redirect("portal:certificates")
    rows = (
        TenantCertificate.objects.filter(tenant=tenant)
        .prefetch_related("host_rows")
        .order_by("-uploaded_at", "-id")
    )
    ctx = {
        "certificates": rows,
        "form": form,
        "hosts": tenant_hosts(tenant),
        "warning_days": CERTIFICATE_WARNING_DAYS,
    }
    response = page(request, "portal/security/certificates.html", ctx, section="certificates")
    response["Cache-Control"] = "no-store"  # a refused upload's page held the pasted chain
    return response


@require_POST
@tenant_permission_required(Permission.TENANT_SETTINGS)
def certificate_delete(request, pk):
    cert = get_object_or_404(TenantCertificate, pk=pk, tenant=host_tenant(request))
    button_action(
        request,
        lambda who: do_delete_certificate(cert, actor=who),
        "The certificate is deleted; its host names get the platform's certificate.",
    )
    return redirect("portal:certificates")
