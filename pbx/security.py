"""Security state shared by every host of the installation, and the host family of a request.

Revoked sign-in sessions, rate-limit and lock-out counters live in the ``security`` cache, whose
keys carry no schema: a token signed out on one host is refused on all of them, and an address
or an account has one budget however many host names it tries.
"""

from django.core.cache import caches

PLATFORM = "platform"


def security_cache():
    return caches["security"]


def host_family(tenant) -> str:
    """The hosts a credential is valid on: one tenant's (its schema) or the provider's."""
    if tenant is None or tenant.is_public:
        return PLATFORM
    return tenant.schema_name
