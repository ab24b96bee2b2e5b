"""Phone models, shipped templates and provisioning transports (HTTP render, TFTP, PnP).

Pure Python: no Django import, so the Django app (``provisioning.views``) and tests use it
alike. The Django side turns ORM rows into a :class:`ProvisioningContext` and calls
:func:`render`; TFTP and PnP servers call back into Django through plain callables.
"""

from .context import KEY_KINDS, TRANSPORTS, BlfKey, Branding, Line, ProvisioningContext
from .formats import FileFormat, FormatError, check_output
from .layers import LAYER_ORDER, ResolvedSetting, resolve_settings, setting_values
from .mac import format_mac, normalize_mac
from .registry import (
    FAMILIES,
    MODELS,
    FileSpec,
    PhoneFamily,
    PhoneModel,
    ProvisioningError,
    get_model,
    identify_user_agent,
)
from .render import (
    RenderedFile,
    RequestMatch,
    files_for,
    match_request,
    match_request_all,
    render,
    render_source,
    sample_context,
    spec_for,
    template_source,
    validate_template,
)
from .timezones import TimeZoneInfo, time_zone_info

__all__ = [
    "FAMILIES",
    "KEY_KINDS",
    "LAYER_ORDER",
    "MODELS",
    "TRANSPORTS",
    "BlfKey",
    "Branding",
    "FileFormat",
    "FileSpec",
    "FormatError",
    "Line",
    "PhoneFamily",
    "PhoneModel",
    "ProvisioningContext",
    "ProvisioningError",
    "RenderedFile",
    "RequestMatch",
    "ResolvedSetting",
    "TimeZoneInfo",
    "check_output",
    "files_for",
    "format_mac",
    "get_model",
    "identify_user_agent",
    "match_request",
    "match_request_all",
    "normalize_mac",
    "render",
    "render_source",
    "resolve_settings",
    "sample_context",
    "setting_values",
    "spec_for",
    "template_source",
    "time_zone_info",
    "validate_template",
]
