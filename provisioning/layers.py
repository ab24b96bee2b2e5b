"""A tenant's provisioning layers (model settings, custom templates, dealer chain) and its
feature codes (the pickup and intercom codes phones' keys dial), cached in each web process.

Every fetch needs them, and they change only when an admin edits them: so each process keeps
them per tenant and checks, with one Redis ``MGET``, that two version tokens have not moved —
the tenant's (``ModelSettings``, ``CustomTemplate``, ``FeatureCode`` and the ``Tenant`` row
itself) and the dealers' (any ``Dealer`` row: a change high in a reseller chain reaches every
tenant under it).
Saving or deleting one of those rows replaces the token (``pbx.versioned``: at once, and
again when the transaction commits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pbx import versioned

TENANT_KEY = "prov:layers:{schema}:{pk}"
DEALERS_KEY = "prov:layers:dealers"


@dataclass
class TenantLayers:
    dealer: dict[str, Any]
    models: dict[str, dict[str, Any]]
    templates: dict[tuple[str, str], str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # feature -> code, enabled ones


# Per process; the least recently used tenant is dropped beyond 4,096.
_cache = versioned.ProcessCache(max_entries=4096)


def _tenant_key(tenant) -> str:
    return TENANT_KEY.format(schema=tenant.schema_name, pk=tenant.pk)


def _dealer_layer(tenant) -> dict[str, Any]:
    from dealers.models import Dealer

    if not tenant.dealer_id:
        return {}
    path = Dealer.objects.filter(pk=tenant.dealer_id).values_list("path", flat=True).first()
    if path is None:
        return {}
    ids = [int(x) for x in path.strip("/").split("/") if x] or [tenant.dealer_id]
    by_id = dict(Dealer.objects.filter(pk__in=ids).values_list("pk", "provisioning_settings"))
    merged: dict[str, Any] = {}
    for dealer_id in ids:  # the top reseller first: a sub-dealer overrides its parent
        merged.update({k: v for k, v in (by_id.get(dealer_id) or {}).items() if v is not None})
    return merged


def _load(tenant) -> TenantLayers:
    from telephony.feature_codes import codes

    from .models import CustomTemplate, ModelSettings

    return TenantLayers(
        dealer=_dealer_layer(tenant),
        models=dict(ModelSettings.objects.values_list("model_id", "settings")),
        templates={
            (m, p): source
            for m, p, source in CustomTemplate.objects.values_list(
                "model_id", "file_pattern", "source"
            )
        },
        codes=codes(),
    )


def tenant_layers(tenant) -> TenantLayers:
    """``tenant``'s layers (run inside its schema). Treat the result as read-only."""
    token = versioned.tokens(_tenant_key(tenant), DEALERS_KEY)
    key = (tenant.schema_name, tenant.pk)
    layers = _cache.get(key, token)
    if layers is None:
        layers = _load(tenant)
        _cache.put(key, token, layers)
    return layers


def forget_tenant(tenant) -> None:
    """Every process reloads ``tenant``'s layers on its next fetch (now and after commit)."""
    if tenant is None or getattr(tenant, "pk", None) is None:
        return
    versioned.bump(_tenant_key(tenant))


def forget_dealers() -> None:
    """Every process reloads the dealer layer of every tenant."""
    versioned.bump(DEALERS_KEY)


def _current_tenant_changed(**_kwargs) -> None:
    from django.db import connection

    forget_tenant(getattr(connection, "tenant", None))


def _tenant_changed(instance, **_kwargs) -> None:
    forget_tenant(instance)


def _dealer_changed(**_kwargs) -> None:
    forget_dealers()


def connect_signals() -> None:
    """Invalidate on every save/delete of the rows the layers come from (any code path: the
    actions, the admin, fixtures). Called from ``ProvisioningConfig.ready``."""
    from django.db.models.signals import post_delete, post_save

    from dealers.models import Dealer
    from telephony.models import FeatureCode
    from tenants.models import Tenant

    from .models import CustomTemplate, ModelSettings

    for model in (ModelSettings, CustomTemplate, FeatureCode):
        post_save.connect(_current_tenant_changed, sender=model, dispatch_uid=f"layers-{model}")
        post_delete.connect(_current_tenant_changed, sender=model, dispatch_uid=f"layers-d{model}")
    post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="layers-tenant")
    post_delete.connect(_tenant_changed, sender=Tenant, dispatch_uid="layers-tenant-d")
    post_save.connect(_dealer_changed, sender=Dealer, dispatch_uid="layers-dealer")
    post_delete.connect(_dealer_changed, sender=Dealer, dispatch_uid="layers-dealer-d")
