"""The provider's host, system admin only: source addresses the SIP engines have banned (failed
authentication or floods), and lifting a ban (``/api/v1/sip-bans/``)."""

from datetime import datetime
from ipaddress import ip_address

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.portal.access import system_admin_required
from pbx.portal.export import Column, csv_response, wants_csv
from telephony.actions import do_clear_sip_ban
from telephony.engine.state import current_bans

from .common import actor, page


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
