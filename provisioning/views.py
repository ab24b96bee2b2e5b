"""The provisioning endpoints phones fetch their files from, on the tenant's host name.

``/prov/<token>/<file>``: the device's secret folder (what PnP and the portal hand out).
``/prov/<file>``: the shared folder for DHCP option 66, opened by per-device HTTP credentials.
The rules are in :mod:`provisioning.delivery`; these views only translate to HTTP.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from pbx.net import client_address

from . import delivery

_BODIES = {
    401: b"Authentication required.\n",
    403: b"Forbidden.\n",
    404: b"Not found.\n",
    429: b"Too many failed requests. Try again later.\n",
    500: b"The configuration could not be generated.\n",
}


def _tenant(request: HttpRequest):
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_public or not tenant.is_active:
        return None
    return tenant


def _respond(outcome: delivery.Outcome) -> HttpResponse:
    if outcome.file is not None:
        response = HttpResponse(outcome.file.content, content_type=outcome.file.content_type)
    else:
        response = HttpResponse(
            _BODIES.get(outcome.status, b""),
            status=outcome.status,
            content_type="text/plain; charset=utf-8",
        )
    if outcome.status == 401:
        response["WWW-Authenticate"] = f'Basic realm="{delivery.REALM}", charset="UTF-8"'
    if outcome.status == 429:
        response["Retry-After"] = str(outcome.retry_after)
    # The files carry SIP passwords: no cache (browser, proxy or CDN) may keep them.
    response["Cache-Control"] = "no-store"
    return response


def _common(request: HttpRequest) -> dict:
    from .config import request_listener

    return {
        "address": client_address(request),
        "user_agent": request.headers.get("User-Agent", ""),
        "authorization": request.headers.get("Authorization"),
        # URLs inside the file name what the phone itself dialled (unless a public URL is set).
        **request_listener(request),
        "host": request.get_host().split(":")[0],
    }


@require_safe
def fetch_by_token(request: HttpRequest, token: str, filename: str) -> HttpResponse:
    tenant = _tenant(request)
    if tenant is None:
        return _respond(delivery.NOT_FOUND)
    return _respond(delivery.fetch_by_token(tenant, token, filename, **_common(request)))


@require_safe
def fetch_plain(request: HttpRequest, filename: str) -> HttpResponse:
    tenant = _tenant(request)
    if tenant is None:
        return _respond(delivery.NOT_FOUND)
    return _respond(delivery.fetch_plain(tenant, filename, **_common(request)))
