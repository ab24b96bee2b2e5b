"""Typed errors with stable codes: every API error body is ``{"code", "message", "fields"}``."""

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    MFA_REQUIRED = "MFA_REQUIRED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CAPABILITY_EXCEEDED = "CAPABILITY_EXCEEDED"
    WEAK_PASSWORD = "WEAK_PASSWORD"  # noqa: S105 - an error code, not a secret
    EXTENSION_IN_USE = "EXTENSION_IN_USE"
    NUMBER_RESERVED = "NUMBER_RESERVED"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    TENANT_DELETED = "TENANT_DELETED"
    CONFIRMATION_REQUIRED = "CONFIRMATION_REQUIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_IN_PROGRESS = "IDEMPOTENCY_IN_PROGRESS"
    RATE_LIMITED = "RATE_LIMITED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    PARSE_ERROR = "PARSE_ERROR"
    SERVER_ERROR = "SERVER_ERROR"


class PbxError(Exception):
    """A business rule refused the request. Actions raise these; the API maps them to bodies."""

    status = 400
    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, message: str, *, fields: dict | None = None, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code


class IdempotencyKeyReused(PbxError):
    status = 422
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class IdempotencyInProgress(PbxError):
    status = 409
    code = ErrorCode.IDEMPOTENCY_IN_PROGRESS


class ValidationFailed(PbxError):
    status = 400
    code = ErrorCode.VALIDATION_ERROR


class WeakPassword(PbxError):
    status = 400
    code = ErrorCode.WEAK_PASSWORD


class QuotaExceeded(PbxError):
    status = 409
    code = ErrorCode.QUOTA_EXCEEDED


class CapabilityExceeded(PbxError):
    status = 400
    code = ErrorCode.CAPABILITY_EXCEEDED


class Conflict(PbxError):
    status = 409
    code = ErrorCode.CONFLICT


class NotFound(PbxError):
    status = 404
    code = ErrorCode.NOT_FOUND


class Forbidden(PbxError):
    status = 403
    code = ErrorCode.PERMISSION_DENIED


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"code": str(code), "message": message, "fields": fields or {}}
