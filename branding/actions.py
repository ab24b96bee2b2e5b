"""Business writes for brands: each in one transaction, audited, cache invalidated on commit."""

from __future__ import annotations

import contextlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict

from . import effective
from .models import Brand

_FILE_FIELDS = ("logo", "favicon")


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
