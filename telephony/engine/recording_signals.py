"""The tenant's snapshot republished when its recording settings change.

The settings row (``audio.RecordingSettings``) and the announcement prompt may be changed by
the portal, the API or the admin; a save or delete of either (any code path) republishes the
tenant's snapshot once its transaction commits (``publish_on_commit``: once per transaction),
so the engines record by the new policy from their next call.
"""

from __future__ import annotations

from django_tenants.utils import get_public_schema_name

from .snapshots import publish_on_commit

__all__ = ["connect_signals"]


def _changed(**_kwargs) -> None:
    from django.db import connection

    tenant = getattr(connection, "tenant", None)
    # A tenant's own rows only (never the public schema's, where no tenant's settings live).
    if (
        tenant is not None
        and getattr(tenant, "pk", None) is not None
        and connection.schema_name != get_public_schema_name()
    ):
        publish_on_commit(tenant)


def connect_signals() -> None:
    """Called from ``TelephonyConfig.ready``."""
    from django.db.models.signals import post_delete, post_save

    from audio.models import Prompt, RecordingSettings

    for model in (RecordingSettings, Prompt):
        post_save.connect(_changed, sender=model, dispatch_uid=f"recording-snapshot-{model}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"recording-snapshot-d{model}")
