"""Layered provisioning settings: system -> dealer -> tenant -> model -> device."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["LAYER_ORDER", "ResolvedSetting", "resolve_settings", "setting_values"]

#: The order the Django side passes layers in, least specific first.
LAYER_ORDER = ("system", "dealer", "tenant", "model", "device")


class ResolvedSetting(NamedTuple):
    """A setting's effective value and the layer it came from (shown in the portal)."""

    value: Any
    source: str


def resolve_settings(
    layers: Sequence[tuple[str, Mapping[str, Any]]],
) -> dict[str, ResolvedSetting]:
    """Merge ``layers`` (least specific first) so the most specific layer wins.

    A ``None`` value means "not set here, inherit": the portal stores cleared fields as
    NULL, and a cleared device field must fall back to the tenant's value rather than
    blank it. Keys keep first-seen order so the portal lists them stably.
    """
    resolved: dict[str, ResolvedSetting] = {}
    for layer_name, values in layers:
        for key, value in values.items():
            if value is None:
                continue
            resolved[key] = ResolvedSetting(value, layer_name)
    return resolved


def setting_values(resolved: Mapping[str, ResolvedSetting]) -> dict[str, Any]:
    """The bare values of a :func:`resolve_settings` result (``ProvisioningContext.settings``)."""
    return {key: item.value for key, item in resolved.items()}
