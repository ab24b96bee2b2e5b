"""Answer 503 with a clear body when PostgreSQL or Redis is down, never a stack trace."""

import logging

import redis
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

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
