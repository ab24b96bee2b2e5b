"""Answer 503 with a clear body when PostgreSQL or Redis is down, never a stack trace; plain
HTTP sent on to HTTPS; the request-wide settings every page shares (the host tenant's time
zone)."""

import logging
import zoneinfo

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponseBadRequest, HttpResponsePermanentRedirect, JsonResponse
from django.http.request import split_domain_port
from django.utils import timezone

from pbx.errors import ErrorCode, error_body

log = logging.getLogger("pbx")

UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def unavailable(exc) -> JsonResponse:
    log.error("service unavailable: %s", exc)
    response = JsonResponse(
        error_body(
            ErrorCode.SERVICE_UNAVAILABLE,
            "A backing service (database or cache) is unavailable. Try again shortly.",
        ),
        status=503,
    )
    response["Retry-After"] = "5"
    return response


class ServiceUnavailableMiddleware:
    """Outermost: catches what the tenant router or a view raises when a service is down."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        except UNAVAILABLE as exc:
            return unavailable(exc)

    def process_exception(self, request, exc):
        if isinstance(exc, UNAVAILABLE):
            return unavailable(exc)
        return None


# What the plain-HTTP listener still serves when HTTPS is on: desk phones' provisioning (many
# fetch over plain HTTP only, or do not trust the self-signed certificate) and the health probe.
PLAIN_HTTP_PATHS = ("/prov/", "/provision/")
PLAIN_HTTP_EXACT = frozenset({"/healthz"})


class HttpsRedirectMiddleware:
    """With the web server's own HTTPS on (``PBX_HTTPS``), a request that came over plain HTTP
    is sent to the same host and path on ``PBX_HTTPS_PORT``: 301 for GET and HEAD, 308 for any
    other method (the client repeats it, body included, rather than turning it into a GET).
    Provisioning (``/prov/``, ``/provision/``) and ``/healthz`` are served where they are.

    The host is the one the client asked for, once ``TenantMiddleware`` found it is one the
    PBX serves (any other ``Host`` answers 400 before this: no redirect to a host a client
    made up); the port is replaced. A request a trusted proxy marked as HTTPS
    (``PBX_TRUST_X_FORWARDED_PROTO``) is secure and passes.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            not settings.PBX_HTTPS
            or request.is_secure()
            or request.path_info in PLAIN_HTTP_EXACT
            or request.path_info.startswith(PLAIN_HTTP_PATHS)
        ):
            return self.get_response(request)
        domain, _ = split_domain_port(request.get_host())
        port = settings.PBX_HTTPS_PORT
        netloc = domain if port == 443 else f"{domain}:{port}"
        response = HttpResponsePermanentRedirect(f"https://{netloc}{request.get_full_path()}")
        if request.method not in ("GET", "HEAD"):
            response.status_code = 308
        return response


class RejectNulMiddleware:
    """Answer 400 to a NUL character in the path or the query string, for every page and API.

    PostgreSQL cannot hold NUL in text, so a ``%00`` that reaches a query is a database error.
    Forms and serializers refuse it field by field, but views that read a parameter themselves
    (a search box, ``?model_id=``) would not; nothing legitimate in a URL carries one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = [
            key or "query"
            for key, values in request.GET.lists()
            if "\x00" in key or any("\x00" in value for value in values)
        ]
        if "\x00" in request.path_info:
            bad.append("path")
        if bad:
            message = "NUL (\\u0000) characters are not allowed in a URL."
            if request.path_info.startswith("/api/"):
                fields = {name.replace("\x00", "\\u0000"): [message] for name in bad}
                return JsonResponse(
                    error_body(ErrorCode.VALIDATION_ERROR, message, fields), status=400
                )
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class TenantTimeZoneMiddleware:
    """Pages on a tenant's host show times in the tenant's time zone (the provider's host: the
    platform's, ``TIME_ZONE``); templates print the zone beside each time. The API is left in
    UTC: its clients convert for themselves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            return self.get_response(request)
        timezone.activate(page_time_zone(getattr(request, "tenant", None)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def page_time_zone(tenant) -> zoneinfo.ZoneInfo:
    name = "" if tenant is None or tenant.is_public else tenant.time_zone
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
