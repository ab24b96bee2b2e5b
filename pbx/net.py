"""Request helpers."""

import os

# Only honour X-Forwarded-For when a trusted reverse proxy sits in front (set by the operator).
_TRUST_XFF = os.environ.get("PBX_TRUST_X_FORWARDED_FOR", "") in {"1", "true", "yes"}


def client_address(request) -> str | None:
    if _TRUST_XFF:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None
