"""The schema and the tenant of the database connection, which django-tenants keeps on it.

django-tenants adds ``schema_name``, ``tenant`` and ``set_schema_to_public()`` to Django's
connection wrapper; Django's type stubs know only the plain wrapper, so typed code goes through
these functions instead of reading the attributes itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection

if TYPE_CHECKING:
    from tenants.models import Tenant


def _tenant_connection() -> Any:
    return connection


def current_schema() -> str:
    """The schema the connection uses (``"public"`` outside every tenant)."""
    return str(_tenant_connection().schema_name)


def current_tenant() -> Tenant | None:
    """The tenant whose schema the connection uses (``tenant_context`` and the middleware set
    it); outside a tenant, django-tenants' stand-in for the public schema, or None."""
    return _tenant_connection().tenant


def use_public_schema() -> None:
    """Point the connection back at the public schema."""
    _tenant_connection().set_schema_to_public()


def require_tenant(what: str) -> Tenant:
    """The tenant whose schema the connection uses; RuntimeError naming ``what`` ("routing
    actions", ...) when it uses the public schema or none: those run inside a tenant's schema."""
    tenant = current_tenant()
    if tenant is None or tenant.schema_name == "public":
        raise RuntimeError(f"{what} run inside a tenant's schema")
    return tenant
