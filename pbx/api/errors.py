"""One error body for the whole API: ``{"code": ..., "message": ..., "fields": {...}}``."""

import logging

import redis
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from pbx.api.parsers import BodyTooLarge
from pbx.errors import ErrorCode, PbxError, error_body

log = logging.getLogger("pbx.api")

_DRF_CODES = {
    exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.Throttled: ErrorCode.RATE_LIMITED,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.ParseError: ErrorCode.PARSE_ERROR,
    exceptions.ValidationError: ErrorCode.VALIDATION_ERROR,
}

UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _fields(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(v) for v in value]
            if isinstance(value, list)
            else _fields(value)
            if isinstance(value, dict)
            else [str(value)]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {}


def unavailable_response() -> Response:
    return Response(
        error_body(
            ErrorCode.SERVICE_UNAVAILABLE,
            "A backing service (database or cache) is unavailable. Try again shortly.",
        ),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def exception_handler(exc, context):
    if isinstance(exc, PbxError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, UNAVAILABLE):
        log.error("service unavailable: %s", exc)
        set_rollback()
        return unavailable_response()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    # Django's own limits on a body (DATA_UPLOAD_MAX_*), met when a view or a parser reads it.
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge(str(exc))
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ParseError(str(exc))
    if isinstance(exc, exceptions.APIException):
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), None)
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.ValidationError):
            body = error_body(ErrorCode.VALIDATION_ERROR, "Invalid input.", _fields(exc.detail))
        else:
            detail = exc.detail
            if isinstance(detail, dict) and "code" in detail and "message" in detail:
                body = error_body(detail["code"], str(detail["message"]))
            else:
                body = error_body(code or ErrorCode.SERVER_ERROR, str(detail))
        set_rollback()
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, DatabaseError):
        log.exception("database error")
        set_rollback()
        return Response(
            error_body(ErrorCode.SERVER_ERROR, "The request could not be completed."),
            status=500,
        )
    return None


# Django's own answers for requests no API view handled (no URL matched, a crash outside DRF):
# under /api/ they carry the error body too; elsewhere Django's pages stay.
def _api_or(default, request, status_code, code, message, **kwargs):
    if request.path_info.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status_code)
    return default(request, **kwargs)


def _handler(default, status_code: int, code: str, message: str):
    def handler(request, exception=None):
        return _api_or(default, request, status_code, code, message, exception=exception)

    return handler


page_not_found = _handler(defaults.page_not_found, 404, ErrorCode.NOT_FOUND, "Not found.")
bad_request = _handler(defaults.bad_request, 400, ErrorCode.VALIDATION_ERROR, "Bad request.")
permission_denied = _handler(
    defaults.permission_denied, 403, ErrorCode.PERMISSION_DENIED, "Permission denied."
)


def server_error(request):
    from pbx.views import server_error as branded_server_error

    return _api_or(
        branded_server_error,
        request,
        500,
        ErrorCode.SERVER_ERROR,
        "The request could not be completed.",
    )
