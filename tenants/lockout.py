"""Per-account lock-out after repeated wrong passwords, on every sign-in path.

``PBX_AUTH_LOCKOUT_FAILURES`` wrong passwords for one account within
``PBX_AUTH_LOCKOUT_WINDOW_MINUTES`` — from any addresses, on any of its hosts — lock the account
for ``PBX_AUTH_LOCKOUT_MINUTES``; while it is locked even the right password is refused. An
unknown sign-in name is counted and locked exactly like an account, so the answers do not tell
whether an account exists. The counters live in the global security cache. The host-scoped
authentication backend (``tenants.auth``) applies this, so the API, the portal (allauth) and the
admin share one counter.
"""

import hashlib

from django.conf import settings

from pbx.security import security_cache

FAILURES_KEY = "auth:failures:{account}"
LOCK_KEY = "auth:locked:{account}"


def account_key(user, identifier: str, tenant_id) -> str:
    """The counter's name: the account when the sign-in name matched one (so e-mail and
    ``extension@domain`` share it), else the name itself (hashed: no e-mail in Redis keys)."""
    if user is not None:
        return f"user:{user.pk}"
    digest = hashlib.sha256(f"{tenant_id or '-'}:{identifier}".encode()).hexdigest()[:32]
    return f"name:{digest}"


def _enabled() -> bool:
    return settings.PBX_AUTH_LOCKOUT_FAILURES > 0


def locked_for(account: str) -> int:
    """Seconds ``account`` stays locked; 0 when it is not locked."""
    if not _enabled():
        return 0
    ttl = security_cache().ttl(LOCK_KEY.format(account=account))
    return int(ttl or 0)


def record_failure(account: str) -> tuple[int, bool]:
    """Count a wrong password. Returns (seconds locked, whether this failure set the lock)."""
    if not _enabled():
        return 0, False
    cache = security_cache()
    key = FAILURES_KEY.format(account=account)
    cache.add(key, 0, timeout=settings.PBX_AUTH_LOCKOUT_WINDOW_MINUTES * 60)
    try:
        failures = cache.incr(key)
    except ValueError:  # the window expired between add and incr: a new one starts
        cache.set(key, 1, timeout=settings.PBX_AUTH_LOCKOUT_WINDOW_MINUTES * 60)
        failures = 1
    if failures < settings.PBX_AUTH_LOCKOUT_FAILURES:
        return 0, False
    seconds = settings.PBX_AUTH_LOCKOUT_MINUTES * 60
    # Only one of several concurrent failures sets the lock (and audits it).
    newly = cache.add(LOCK_KEY.format(account=account), 1, timeout=seconds)
    cache.delete(key)  # after the lock the count starts again
    return (seconds if newly else locked_for(account)), bool(newly)


def message(seconds: int) -> str:
    """What a locked sign-in is told (the same for every account and unknown name)."""
    minutes = max(1, -(-seconds // 60))
    return (
        "Too many failed sign-ins: this account is locked. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def clear_failures(account: str) -> None:
    """A successful sign-in forgets earlier wrong passwords."""
    if _enabled():
        security_cache().delete(FAILURES_KEY.format(account=account))


def unlock(user) -> None:
    """Lift a lock (an administrator set a new password)."""
    account = account_key(user, "", None)
    security_cache().delete_many(
        [LOCK_KEY.format(account=account), FAILURES_KEY.format(account=account)]
    )
