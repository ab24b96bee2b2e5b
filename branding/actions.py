"""Business writes for brands: each in one transaction, audited, cache invalidated on commit."""

from __future__ import annotations

import contextlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.text import require_single_line

from . import effective
from .colours import is_hex
from .images import image_problem
from .models import FILE_FIELDS, Brand
from .senders import sender_problem

# Every text of a brand leaves as a protocol line: the product name in SIP User-Agent/Server
# headers and provisioning files, the names and addresses in mail headers, the URLs in files.
TEXT_FIELDS = {
    "product_name": 80,
    "company_name": 120,
    "website_url": 200,
    "logo_url": 200,
    "favicon_url": 200,
    "primary_color": 7,
    "accent_color": 7,
    "support_url": 200,
    "support_email": 254,
    "support_phone": 40,
    "email_from_name": 80,
    "email_from_address": 254,
    "login_footer": 255,
}


COLOUR_FIELDS = ("primary_color", "accent_color")


def _check_fields(fields: dict, *, dealer=None, tenant=None) -> None:
    """Every caller (API, portal, tests) gets the same field errors: one-line texts, colours
    as ``#rrggbb``, uploads that are raster images of a sensible size, a mail sender in a
    domain the provider vouches for (:mod:`branding.senders`)."""
    require_single_line(fields, TEXT_FIELDS, "Invalid brand.")
    problems: dict[str, list[str]] = {}
    sender = sender_problem(fields.get("email_from_address") or "", dealer=dealer, tenant=tenant)
    if sender:
        problems["email_from_address"] = [sender]
    for name in COLOUR_FIELDS:
        value = fields.get(name)
        if value and not is_hex(value):
            problems[name] = ["a colour such as #1f6feb"]
    for name in FILE_FIELDS:
        upload = fields.get(name)
        if upload and hasattr(upload, "read") and not getattr(upload, "_committed", False):
            problem = image_problem(upload, name)
            if problem:
                problems[name] = [problem]
    if problems:
        raise ValidationFailed("Invalid brand.", fields=problems)


def _scope(brand: Brand) -> dict:
    """The audit entry's scope: a tenant's brand shows in that tenant's log, a dealer's in
    that dealer's."""
    return {"tenant": brand.tenant, "dealer": brand.dealer}


def _invalidate_now_and_on_commit() -> None:
    # Now, so this transaction's own reads see the change; again on commit, because a reader
    # may have cached the old brand between the first bump and the commit.
    effective.invalidate()
    transaction.on_commit(effective.invalidate)


def _delete_files_on_commit(names: list[str]) -> None:
    from .storage import brand_storage

    def delete() -> None:
        for name in names:
            with contextlib.suppress(OSError):
                brand_storage.delete(name)

    if names:
        transaction.on_commit(delete)


def do_create_brand(*, dealer=None, tenant=None, actor: Actor, **fields) -> Brand:
    """Create the brand of ``dealer`` or of ``tenant`` (neither: the platform's). One brand
    per owner (409)."""
    if dealer is not None and tenant is not None:
        raise ValidationFailed("A brand belongs to a dealer or to a tenant, not to both.")
    _check_fields(fields, dealer=dealer, tenant=tenant)
    try:
        with transaction.atomic():
            brand = Brand.objects.create(dealer=dealer, tenant=tenant, **fields)
            changes = {k: v for k, v in fields.items() if k not in FILE_FIELDS}
            changes.update({k: "uploaded" for k in FILE_FIELDS if fields.get(k)})
            audit.record(actor, "brand.create", brand, **_scope(brand), changes=changes)
            _invalidate_now_and_on_commit()
    except IntegrityError:
        if tenant is not None:
            owner, field = f"Tenant '{tenant}'", "tenant_id"
        else:
            owner = f"Dealer '{dealer}'" if dealer is not None else "The platform"
            field = "dealer_id"
        raise Conflict(
            f"{owner} already has a brand; change it instead.",
            fields={field: ["already branded"]},
        ) from None
    return brand


def do_set_brand(*, dealer=None, tenant=None, actor: Actor, **fields) -> Brand:
    """The owner's brand with ``fields`` changed, created on its first change (one brand per
    owner: the portal's branding page and the tenant's ``company/brand/`` API)."""
    if tenant is not None:
        existing = Brand.objects.filter(tenant=tenant).first()
    else:
        existing = Brand.objects.filter(dealer=dealer, tenant=None).first()
    if existing is None:
        return do_create_brand(dealer=dealer, tenant=tenant, actor=actor, **fields)
    return do_update_brand(existing, actor=actor, **fields)


def do_update_brand(brand: Brand, *, actor: Actor, **fields) -> Brand:
    """Change a brand; replaced or cleared uploads are removed from storage after commit."""
    _check_fields(fields, dealer=brand.dealer, tenant=brand.tenant)
    with transaction.atomic():
        brand = Brand.objects.select_for_update().get(pk=brand.pk)
        old_files = [
            getattr(brand, name).name
            for name in FILE_FIELDS
            if name in fields and getattr(brand, name)
        ]
        changes = audit.diff(brand, {k: v for k, v in fields.items() if k not in FILE_FIELDS})
        for name in FILE_FIELDS:
            if name in fields:
                changes[name] = "replaced" if fields[name] else "cleared"
        for name, value in fields.items():
            setattr(brand, name, value)
        brand.updated_at = timezone.now()
        brand.save(update_fields=[*fields, "updated_at"])
        audit.record(actor, "brand.update", brand, **_scope(brand), changes=changes)
        _invalidate_now_and_on_commit()
        _delete_files_on_commit(old_files)
    return brand


def do_delete_brand(brand: Brand, *, actor: Actor) -> None:
    """Remove a brand: its owner (a tenant, or a dealer's tenants) falls back to the next
    brand up the tree."""
    with transaction.atomic():
        brand = Brand.objects.select_for_update().get(pk=brand.pk)
        files = [getattr(brand, name).name for name in FILE_FIELDS if getattr(brand, name)]
        audit.record(actor, "brand.delete", brand, **_scope(brand))
        brand.delete()
        _invalidate_now_and_on_commit()
        _delete_files_on_commit(files)
