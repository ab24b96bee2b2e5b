"""The effective brand of a tenant, a dealer or a host, cached in Redis per scope.

A tenant shows its own brand, over its dealer's, else the nearest ancestor dealer's, else the
platform's. Fields a nearer brand leaves blank come from further up the same chain (a tenant or
a dealer may upload only a logo); the logo and its URL (and the favicon and its URL) travel as a
pair, so a dealer's logo URL is never shown next to the platform's uploaded logo.

Cache keys carry the scope (the tenant's schema name, ``dealer-<id>`` or ``platform``) and a
generation number that every brand change bumps, so one ``INCR`` invalidates every tenant below
a changed dealer without walking the tree. Entries also expire after ``CACHE_SECONDS``, which
bounds how long a tenant moved to another dealer keeps its old brand.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings

from .colours import scheme
from .models import INHERITED_FIELDS, Brand

log = logging.getLogger(__name__)

GENERATION_KEY = "branding:gen"
CACHE_KEY = "branding:effective:{gen}:{scope}"
CACHE_SECONDS = 300
PAIRS = (("logo", "logo_url"), ("favicon", "favicon_url"))
_PAIRED = {name for pair in PAIRS for name in pair}


def _redis():
    # The raw client: Django's cache key function prefixes the *current* schema, which would
    # make a key written on a tenant's host invisible to an invalidation on the provider's.
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def default_brand() -> Brand:
    """The brand when the platform has none configured: the product name from settings."""
    return Brand(product_name=settings.PBX_PRODUCT_NAME)


def _dealer_ids_nearest_first(dealer) -> list[int]:
    if dealer is None:
        return []
    ids = [int(part) for part in (dealer.path or "").strip("/").split("/") if part]
    return list(reversed(ids)) if ids else [dealer.pk]


def _chain(dealer, tenant=None) -> list[Brand]:
    """Brands from the tenant's own (if ``tenant``) and the dealer's up to the platform's,
    nearest first (one query)."""
    from django.db.models import Q

    ids = _dealer_ids_nearest_first(dealer)
    wanted = Q(dealer_id__in=ids) | Q(dealer=None, tenant=None)
    if tenant is not None:
        wanted |= Q(tenant_id=tenant.pk)
    rows = list(Brand.objects.filter(wanted))
    own = [b for b in rows if b.tenant_id is not None]
    dealers = {b.dealer_id: b for b in rows if b.dealer_id is not None}
    platform = [b for b in rows if b.dealer_id is None and b.tenant_id is None]
    return [*own, *(dealers[i] for i in ids if i in dealers), *platform]


def _merge(chain: list[Brand]) -> dict[str, Any]:
    """The effective field values of a chain, with where each asset comes from."""
    base = default_brand()
    data: dict[str, Any] = {
        "id": chain[0].pk if chain else None,
        "dealer_id": chain[0].dealer_id if chain else None,
        "tenant_id": chain[0].tenant_id if chain else None,
        "updated_at": max((b.updated_at for b in chain), default=None),
    }
    for name in INHERITED_FIELDS:
        if name in _PAIRED:
            continue
        data[name] = next((getattr(b, name) for b in chain if getattr(b, name)), "") or getattr(
            base, name
        )
    for file_field, url_field in PAIRS:
        owner = next((b for b in chain if getattr(b, file_field) or getattr(b, url_field)), None)
        data[file_field] = getattr(owner, file_field).name if owner is not None else ""
        data[url_field] = getattr(owner, url_field) if owner is not None else ""
    data["updated_at"] = data["updated_at"].isoformat() if data["updated_at"] else ""
    return data


def _cached(scope: str, build) -> dict[str, Any]:
    try:
        r = _redis()
        gen = int(r.get(GENERATION_KEY) or 0)
        key = CACHE_KEY.format(gen=gen, scope=scope)
        raw = r.get(key)
        if raw is not None:
            return json.loads(raw)
    except Exception as exc:  # a cache outage must not take the sign-in page down
        log.warning("brand cache unavailable: %s", exc)
        return build()
    data = build()
    try:
        r.set(key, json.dumps(data), ex=CACHE_SECONDS)
    except Exception as exc:
        log.warning("brand cache unavailable: %s", exc)
    return data


def invalidate() -> None:
    """Forget every cached effective brand (called by the actions, now and on commit)."""
    try:
        _redis().incr(GENERATION_KEY)
    except Exception as exc:
        log.warning("could not invalidate the brand cache: %s", exc)


def _as_brand(data: dict[str, Any]) -> Brand:
    fields = {name: data.get(name, "") for name in INHERITED_FIELDS}
    brand = Brand(
        id=data.get("id"),
        dealer_id=data.get("dealer_id"),
        tenant_id=data.get("tenant_id"),
        **fields,
    )
    brand.version = hashlib.sha256(data.get("updated_at", "").encode()).hexdigest()[:12]
    return brand


def brand_data_for_dealer(dealer) -> dict[str, Any]:
    scope = f"dealer-{dealer.pk}" if dealer is not None else "platform"
    return _cached(scope, lambda: _merge(_chain(dealer)))


def brand_data_for_tenant(tenant) -> dict[str, Any]:
    if tenant is None or tenant.is_public:
        return brand_data_for_dealer(None)
    dealer = tenant.dealer if tenant.dealer_id else None
    return _cached(tenant.schema_name, lambda: _merge(_chain(dealer, tenant)))


def brand_for_dealer(dealer) -> Brand:
    """The brand a dealer's own users see (its own, else inherited); None: the platform's."""
    return _as_brand(brand_data_for_dealer(dealer))


def brand_for_tenant(tenant) -> Brand:
    """The effective brand of ``tenant`` (the public tenant or None: the platform's).

    An unsaved :class:`Brand` carrying the merged values; ``id`` is the nearest brand's.
    """
    return _as_brand(brand_data_for_tenant(tenant))


def inherited_brand(*, dealer=None, tenant=None) -> Brand:
    """What an owner's own brand falls back to, field by field: for a tenant its dealer chain's
    effective brand, for a dealer its parent's, for the platform the settings' default.
    Read uncached: the branding form shows it right after a change further up."""
    if tenant is not None:
        parent = tenant.dealer if tenant.dealer_id else None
    elif dealer is not None:
        parent = dealer.parent if dealer.parent_id else None
    else:
        return default_brand()
    return _as_brand(_merge(_chain(parent)))


def asset_url(brand: Brand, kind: str) -> str:
    """Where a page loads the brand's logo or favicon: the upload (served by the brand API on
    the same host) or the configured URL."""
    if getattr(brand, kind):
        return f"/api/v1/brand/{kind}/?v={getattr(brand, 'version', '')}"
    return getattr(brand, f"{kind}_url") or ""


def public_fields(brand: Brand) -> dict[str, str]:
    """What a page may show about a brand (also the portal context's ``brand``)."""
    return {
        "name": brand.product_name,
        "product_name": brand.product_name,
        "company_name": brand.company_name,
        "website_url": brand.website_url,
        "logo_url": asset_url(brand, "logo"),
        "favicon_url": asset_url(brand, "favicon"),
        "primary_color": brand.primary_color,
        "accent_color": brand.accent_color,
        "support_url": brand.support_url,
        "support_email": brand.support_email,
        "support_phone": brand.support_phone,
        "login_footer": brand.login_footer,
        # Computed here, so that whatever colours a user picks, text keeps a 4.5:1 contrast.
        **scheme(brand.primary_color, brand.accent_color),
    }
