"""What the engine's tenant snapshot takes from the recording settings
(``telephony.engine.snapshots`` calls this inside the tenant's schema): the contract's
``RecordingSnapshot``. A tenant whose capabilities do not include recording
(``feature_recording`` off) gets the policy "never", whatever its settings say, so the
engine records none of its calls."""

from __future__ import annotations

from telephony.sip.contract import RecordingPolicy, RecordingSnapshot

from .models import RecordingSettings, media_path

__all__ = ["recording_snapshot"]


def recording_snapshot(tenant) -> RecordingSnapshot:
    settings = RecordingSettings.objects.select_related("announcement").filter(pk=1).first()
    if settings is None or not getattr(tenant, "feature_recording", True):
        return RecordingSnapshot(policy=RecordingPolicy.NEVER)
    prompt = settings.announcement if settings.announce else None
    return RecordingSnapshot.read(
        {
            "policy": settings.policy,
            "announcement": media_path(prompt.file) if prompt is not None else "",
        }
    )
