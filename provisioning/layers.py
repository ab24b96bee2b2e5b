"""A tenant's provisioning layers (model settings, custom templates, dealer chain), cached in
each web process.

Every fetch needs them, and they change only when an admin edits them: so each process keeps
them per tenant and checks, with one Redis ``MGET``, that two version tokens have not moved —
the tenant's (``ModelSettings``, ``CustomTemplate`` and the ``Tenant`` row itself) and the
dealers' (any ``Dealer`` row: a change high in a reseller chain reaches every tenant under it).
Saving or deleting one of those rows sets a new random token at once (so the writer's own next
fetch, even inside its transaction, reloads) and again when the transaction commits (so a
fetch that reloaded in between, before the commit, cannot keep the old rows). A missing token
(Redis flushed or restarted) is created anew, which also invalidates: tokens are random, never
counters that could come back to an old value.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

TENANT_KEY = "prov:layers:{schema}:{pk}"
DEALERS_KEY = "prov:layers:dealers"
MAX_TENANTS = 4096  # per process; the least recently used tenant is dropped beyond that


@dataclass
class TenantLayers:
    token: tuple
    dealer: dict[str, Any]
    models: dict[str, dict[str, Any]]
    templates: dict[tuple[str, str], str] = field(default_factory=dict)


_cache: OrderedDict[tuple[str, int], TenantLayers] = OrderedDict()
_lock = threading.Lock()


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _tenant_key(tenant) -> str:
    return TENANT_KEY.format(schema=tenant.schema_name, pk=tenant.pk)


def _tokens(tenant) -> tuple:
    client = _redis()
    keys = [_tenant_key(tenant), DEALERS_KEY]
    values = client.mget(keys)
    if None in values:
        for key, value in zip(keys, values, strict=True):
            if value is None:
                client.set(key, uuid.uuid4().hex, nx=True)
        values = client.mget(keys)
    return tuple(values)


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


def _load(tenant, token: tuple) -> TenantLayers:
    from .models import CustomTemplate, ModelSettings

    return TenantLayers(
        token=token,
        dealer=_dealer_layer(tenant),
        models=dict(ModelSettings.objects.values_list("model_id", "settings")),
        templates={
            (m, p): source
            for m, p, source in CustomTemplate.objects.values_list(
                "model_id", "file_pattern", "source"
            )
        },
    )


def tenant_layers(tenant) -> TenantLayers:
    """``tenant``'s layers (run inside its schema). Treat the result as read-only."""
    token = _tokens(tenant)
    key = (tenant.schema_name, tenant.pk)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit.token == token:
            _cache.move_to_end(key)
            return hit
    layers = _load(tenant, token)
    with _lock:
        _cache[key] = layers
        _cache.move_to_end(key)
        while len(_cache) > MAX_TENANTS:
            _cache.popitem(last=False)
    return layers


def _bump(key: str) -> None:
    client = _redis()
    client.set(key, uuid.uuid4().hex)
    transaction.on_commit(lambda: client.set(key, uuid.uuid4().hex))


def forget_tenant(tenant) -> None:
    """Every process reloads ``tenant``'s layers on its next fetch (now and after commit)."""
    if tenant is None or getattr(tenant, "pk", None) is None:
        return
    _bump(_tenant_key(tenant))


def forget_dealers() -> None:
    """Every process reloads the dealer layer of every tenant."""
    _bump(DEALERS_KEY)


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
    from tenants.models import Tenant

    from .models import CustomTemplate, ModelSettings

    for model in (ModelSettings, CustomTemplate):
        post_save.connect(_current_tenant_changed, sender=model, dispatch_uid=f"layers-{model}")
        post_delete.connect(_current_tenant_changed, sender=model, dispatch_uid=f"layers-d{model}")
    post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="layers-tenant")
    post_delete.connect(_tenant_changed, sender=Tenant, dispatch_uid="layers-tenant-d")
    post_save.connect(_dealer_changed, sender=Dealer, dispatch_uid="layers-dealer")
    post_delete.connect(_dealer_changed, sender=Dealer, dispatch_uid="layers-dealer-d")
