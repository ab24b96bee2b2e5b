"""Business writes for brands: each in one transaction, audited, cache invalidated on commit."""

from __future__ import annotations

import contextlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict
from pbx.text import require_single_line

from . import effective
from .models import Brand

_FILE_FIELDS = ("logo", "favicon")
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


def _check_texts(fields: dict) -> None:
    require_single_line(fields, TEXT_FIELDS, "Invalid brand.")


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


def do_create_brand(*, dealer, actor: Actor, **fields) -> Brand:
    """Create the brand of ``dealer`` (None: the platform). One brand per owner (409)."""
    _check_texts(fields)
    try:
        with transaction.atomic():
            brand = Brand.objects.create(dealer=dealer, **fields)
            audit.record(
                actor,
                "brand.create",
                brand,
                dealer=dealer,
                changes={k: v for k, v in fields.items() if k not in _FILE_FIELDS},
            )
            _invalidate_now_and_on_commit()
    except IntegrityError:
        owner = f"Dealer '{dealer}'" if dealer is not None else "The platform"
        raise Conflict(
            f"{owner} already has a brand; change it instead.",
            fields={"dealer_id": ["already branded"]},
        ) from None
    return brand


def do_update_brand(brand: Brand, *, actor: Actor, **fields) -> Brand:
    """Change a brand; replaced or cleared uploads are removed from storage after commit."""
    _check_texts(fields)
    with transaction.atomic():
        brand = Brand.objects.select_for_update().get(pk=brand.pk)
        old_files = [
            getattr(brand, name).name
            for name in _FILE_FIELDS
            if name in fields and getattr(brand, name)
        ]
        changes = audit.diff(brand, {k: v for k, v in fields.items() if k not in _FILE_FIELDS})
        for name in _FILE_FIELDS:
            if name in fields:
                changes[name] = "replaced" if fields[name] else "cleared"
        for name, value in fields.items():
            setattr(brand, name, value)
        brand.updated_at = timezone.now()
        brand.save(update_fields=[*fields, "updated_at"])
        audit.record(actor, "brand.update", brand, dealer=brand.dealer, changes=changes)
        _invalidate_now_and_on_commit()
        _delete_files_on_commit(old_files)
    return brand


def do_delete_brand(brand: Brand, *, actor: Actor) -> None:
    """Remove a brand: its dealer's tenants fall back to the next brand up the tree."""
    with transaction.atomic():
        brand = Brand.objects.select_for_update().get(pk=brand.pk)
        files = [getattr(brand, name).name for name in _FILE_FIELDS if getattr(brand, name)]
        audit.record(actor, "brand.delete", brand, dealer=brand.dealer)
        brand.delete()
        _invalidate_now_and_on_commit()
        _delete_files_on_commit(files)
