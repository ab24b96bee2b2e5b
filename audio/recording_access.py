"""Who may hear which call recordings (run inside the tenant's schema): whoever reads the
tenant's call history every one; an end user only those of calls its own extension made,
received or was transferred into (the calls "My calls" lists)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from telephony.models import CdrSegment

from .access import own_extension_number
from .models import Recording

__all__ = ["recordings_for", "recordings_of_number"]


def recordings_of_number(number: str) -> QuerySet[Recording]:
    """Recordings of calls extension ``number`` took part in."""
    segments = CdrSegment.objects.filter(Q(from_number=number) | Q(to_number=number))
    return Recording.objects.filter(
        Q(caller=number)
        | Q(callee=number)
        | Q(cdr__caller_number=number)
        | Q(cdr__callee_number=number)
        | Q(cdr_id__in=segments.values("cdr_id"))
    )


def recordings_for(user, tenant, *, every: bool) -> QuerySet[Recording]:
    """``every``: the caller reads the whole call history; else only its own extension's."""
    if every:
        return Recording.objects.all()
    number = own_extension_number(user, tenant)
    return recordings_of_number(number) if number else Recording.objects.none()
