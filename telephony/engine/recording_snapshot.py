"""The tenant's recording settings as its snapshot carries them (``TenantSnapshot.recording``;
republished when they change: ``recording_signals.py``)."""

from __future__ import annotations

from telephony.sip.contract import RecordingSnapshot

__all__ = ["build_recording"]


def build_recording() -> RecordingSnapshot:
    """The current schema's recording settings: the policy and the absolute path of the
    announcement prompt's file ("" when there is none, or it is turned off)."""
    from audio.models import RecordingSettings, media_path

    settings = RecordingSettings.objects.select_related("announcement").filter(pk=1).first()
    if settings is None:
        return RecordingSnapshot()
    prompt = settings.announcement if settings.announce else None
    announcement = media_path(prompt.file) if prompt is not None else ""
    return RecordingSnapshot.read({"policy": settings.policy, "announcement": announcement})
