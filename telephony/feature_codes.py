"""A tenant's feature codes as stored, read from the model only: the defaults of the contract
(``FEATURE_DEFAULTS``) changed or switched off by ``FeatureCode`` rows. The engine's snapshot
is built with :func:`codes` (``telephony.engine.snapshots``); the actions that change them
are in ``features.py``, which publishes, so this module imports no publisher."""

from __future__ import annotations

from .models import FeatureCode
from .sip.contract import FEATURE_DEFAULTS

__all__ = ["codes"]


def _stored() -> dict[str, FeatureCode]:
    return {row.feature: row for row in FeatureCode.objects.all()}


def _effective(stored: dict[str, FeatureCode]) -> dict[str, tuple[str, bool]]:
    """feature -> (code, enabled) for every known feature."""
    out = {}
    for feature, default in FEATURE_DEFAULTS.items():
        row = stored.get(feature)
        out[str(feature)] = (row.code, row.enabled) if row is not None else (default, True)
    return out


def codes() -> dict[str, str]:
    """The tenant's enabled features and their codes (``MediaSnapshot.codes``)."""
    return {f: code for f, (code, on) in _effective(_stored()).items() if on}
