"""Rate changes reach the engines: a saved or deleted rate row or table republishes, after the
commit, every tenant whose sell table's chain holds it (``accounts.rate_tables_changed``,
once per transaction). Bulk writes send no signals: whoever bulk-writes rates (the CSV
import) calls ``rate_tables_changed`` itself."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from .accounts import rate_tables_changed
from .models import Rate, RateTable


def _rate_changed(sender, instance, **kwargs) -> None:
    rate_tables_changed(instance.table_id)


def _table_changed(sender, instance, **kwargs) -> None:
    rate_tables_changed(instance.pk)


def connect() -> None:
    post_save.connect(_rate_changed, sender=Rate, dispatch_uid="billing-rate-save")
    post_delete.connect(_rate_changed, sender=Rate, dispatch_uid="billing-rate-delete")
    post_save.connect(_table_changed, sender=RateTable, dispatch_uid="billing-table-save")
    post_delete.connect(_table_changed, sender=RateTable, dispatch_uid="billing-table-delete")
