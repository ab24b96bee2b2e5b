"""From ORM rows to rendered files: layered settings, the render context, URLs.

Layers, least specific first (``provisioning.vendors.LAYER_ORDER``):

``system``  ``settings.PBX_PROVISIONING_DEFAULTS``
``dealer``  the tenant's dealer chain, top reseller first (``Dealer.provisioning_settings``)
``tenant``  the tenant's time zone and language, then ``Tenant.provisioning_settings``
``model``   the tenant's ``ModelSettings`` row for the device's model
``device``  ``Device.settings``

Runs inside the tenant's schema (``connection.tenant`` is the device's tenant).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from pbx.errors import ValidationFailed
from pbx.text import single_line_problem
from provisioning.vendors import (
    MODELS,
    TRANSPORTS,
    BlfKey,
    Branding,
    Line,
    ProvisioningContext,
    RenderedFile,
    ResolvedSetting,
    render,
    render_source,
    resolve_settings,
    setting_values,
    spec_for,
    time_zone_info,
)

from .layers import TenantLayers, tenant_layers
from .models import Device

#: Settings the Django side understands; any other key (``[a-z][a-z0-9_]*``, scalar value) is
#: passed to templates as ``settings.<key>`` for custom templates to use.
KNOWN_SETTINGS = {
    "transport": "SIP transport phones use: udp, tcp or tls",
    "time_zone": "IANA time zone, e.g. Europe/Berlin",
    "language": "Phone language (ISO code: en, de, fr...)",
    "ntp_server": "NTP server host",
    "firmware_url": "Firmware URL (empty: keep the phone's firmware)",
    "admin_password": "Phone web admin password",
    "outbound_proxy": "Outbound proxy host (default: the SIP server)",
    "product_name": "Product name shown on the phone",
    "logo_url": "Logo image URL",
    "background_url": "Wallpaper image URL",
}
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_MAX_VALUE = 1024


def validate_settings(values: Any, field: str = "settings") -> dict[str, Any]:
    """A settings layer as entered by an admin; :class:`ValidationFailed` naming bad keys."""
    if not isinstance(values, dict):
        raise ValidationFailed("Settings must be an object.", fields={field: ["an object"]})
    problems: list[str] = []
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"{key!r}: keys are lower-case letters, digits and _")
            continue
        if value is None:
            continue  # "inherit"
        if not isinstance(value, str | int | float | bool):
            problems.append(f"{key}: a text, number or yes/no value")
        elif isinstance(value, str) and single_line_problem(value, max_length=_MAX_VALUE):
            # Each value becomes one line (or one XML attribute) of the phone's file.
            problems.append(f"{key}: {single_line_problem(value, max_length=_MAX_VALUE)}")
        elif key == "transport" and value not in TRANSPORTS:
            problems.append(f"transport: one of {', '.join(TRANSPORTS)}")
        elif key == "time_zone":
            try:
                time_zone_info(str(value))
            except ValueError:
                problems.append(f"time_zone: unknown time zone {value!r}")
        elif (
            key in ("firmware_url", "logo_url", "background_url")
            and value
            and not re.match(r"^(https?|tftp|ftp)://\S+$", str(value))
        ):
            problems.append(f"{key}: an http(s), ftp or tftp URL")
    if problems:
        raise ValidationFailed("Invalid provisioning settings.", fields={field: problems})
    return dict(values)


def validate_networks(values: Any) -> list[str]:
    """CIDR allow-list entries, normalised (``10.0.0.7`` becomes ``10.0.0.7/32``)."""
    if not isinstance(values, list):
        raise ValidationFailed("A list of networks.", fields={"allowed_networks": ["a list"]})
    out, problems = [], []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            problems.append(f"{value!r} is not an address or network (CIDR)")
    if problems:
        raise ValidationFailed("Invalid networks.", fields={"allowed_networks": problems})
    return out


def address_allowed(device: Device, address: str | None) -> bool:
    """Whether ``address`` is inside the device's allow-list (False for an empty list)."""
    if not device.allowed_networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net) for net in device.allowed_networks)


# --- layers ---------------------------------------------------------------------------------


def settings_layers(
    tenant, model_id: str, device: Device | None, layers: TenantLayers | None = None
) -> list[tuple[str, dict]]:
    """The five layers for ``device`` (or for a model, when ``device`` is None)."""
    layers = layers or tenant_layers(tenant)
    model_layer = layers.models.get(model_id) if model_id else None
    tenant_layer = {"time_zone": tenant.time_zone, "language": tenant.language}
    tenant_layer.update(tenant.provisioning_settings or {})
    return [
        ("system", dict(settings.PBX_PROVISIONING_DEFAULTS)),
        ("dealer", dict(layers.dealer)),
        ("tenant", tenant_layer),
        ("model", dict(model_layer or {})),
        ("device", dict(device.settings) if device else {}),
    ]


def effective_settings(tenant, device: Device) -> dict[str, ResolvedSetting]:
    """Every setting of ``device`` with the layer it comes from (shown in portal and API)."""
    return resolve_settings(settings_layers(tenant, device.effective_model_id, device))


# --- URLs -----------------------------------------------------------------------------------


def tenant_host(tenant) -> str:
    """The tenant's primary web host name (provisioning answers on it)."""
    from tenants.models import Domain

    domain = Domain.objects.filter(tenant=tenant).order_by("-is_primary", "id").first()
    if domain is None:
        raise ValidationFailed("The tenant has no web host name.")
    return domain.domain


def base_url(host: str, scheme: str | None = None, port: int | None = None) -> str:
    """``<scheme>://<host>[:port]`` of the URLs handed to phones and shown to admins.

    Only URLs this installation answers on: the explicit public setting when there is one
    (``PBX_PROV_URL_SCHEME``/``PBX_PROV_URL_PORT``, e.g. https on 443 behind a TLS proxy); else
    the scheme and port the current request came in on (``scheme``/``port``, see
    :func:`request_listener`); else the web server's own listener, plain HTTP on
    ``PBX_HTTP_PORT`` (what ``make run`` starts).
    """
    if settings.PBX_PROV_URL_SCHEME or settings.PBX_PROV_URL_PORT:
        scheme = settings.PBX_PROV_URL_SCHEME or "https"
        port = settings.PBX_PROV_URL_PORT or None
    elif scheme is None:
        scheme, port = "http", settings.PBX_HTTP_PORT
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if not port or port == default else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def request_listener(request) -> dict[str, Any]:
    """The scheme and port a request reached us on, as ``base_url`` takes them: the port the
    client put in its Host header (what it dialled), none for the scheme's default."""
    host = request.get_host()
    _, _, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
    return {"scheme": request.scheme, "port": int(port) if port.isdigit() else None}


def admin_listener(request) -> dict[str, Any]:
    """The listener a URL shown to an admin (for a phone) names: the request's, as
    :func:`request_listener` reads it, except when the admin is on the web server's own HTTPS
    (``PBX_HTTPS``, not through a proxy). Its certificate is self-signed unless replaced and
    many desk phones fetch over plain HTTP only, so the URL names the plain HTTP listener
    (``PBX_HTTP_PORT``), which serves provisioning; ``PBX_PROV_URL_SCHEME``/``PORT`` (e.g.
    https with a real certificate) override both."""
    own_https = settings.PBX_HTTPS and not settings.PBX_TRUST_X_FORWARDED_PROTO
    if own_https and request.scheme == "https":
        return {}
    return request_listener(request)


def token_url(device: Device, host: str, *, scheme=None, port=None, credentials=False) -> str:
    """The device's folder URL ``<scheme>://[user:pass@]host/prov/<token>/``.

    Phones append the file name. With ``credentials`` the per-device user and password are in
    the URL, so a phone keeps re-fetching after the provisioning window has closed.
    """
    url = base_url(host, scheme, port)
    if credentials:
        user = quote(device.http_username, safe="")
        password = quote(device.http_password, safe="")
        url = url.replace("://", f"://{user}:{password}@", 1)
    return f"{url}/prov/{device.token}/"


def plain_url(host: str, *, scheme=None, port=None) -> str:
    """The shared folder (DHCP option 66): files there need the per-device credentials.
    (``/provision/`` serves the same files, for phones set up with PortSIP's path.)"""
    return f"{base_url(host, scheme, port)}/prov/"


# --- rendering ------------------------------------------------------------------------------


def _lines(device: Device) -> list[Line]:
    lines = []
    rows = (
        device.lines.select_related("extension")
        # Only what a line shows: a phone fetch reads no other extension column.
        .only(
            "device",
            "index",
            "label",
            "extension__number",
            "extension__caller_id_name",
            "extension__display_name",
            "extension__sip_password_encrypted",
        )
        .order_by("index")
    )
    for row in rows:
        ext = row.extension
        lines.append(
            Line(
                index=row.index,
                extension=ext.number,
                display_name=ext.caller_id_name or ext.display_name,
                auth_user=ext.number,
                password=ext.sip_password,
                label=row.label or ext.number,
            )
        )
    return lines


def build_context(
    tenant,
    device: Device,
    model_id: str,
    *,
    host: str,
    scheme=None,
    port=None,
    layers: TenantLayers | None = None,
) -> ProvisioningContext:
    """The render context of ``device`` as ``model_id``, URLs on ``host``."""
    layers = layers or tenant_layers(tenant)
    resolved = setting_values(resolve_settings(settings_layers(tenant, model_id, device, layers)))
    transport = resolved.get("transport", "udp")
    sip_port = settings.SIP_TLS_PORT if transport == "tls" else settings.SIP_UDP_PORT
    return ProvisioningContext(
        mac=device.mac,
        model_id=model_id,
        lines=tuple(_lines(device)),
        sip_domain=tenant.sip_domain or "",
        sip_server=settings.PBX_SIP_PUBLIC_HOST,
        sip_port=int(resolved.get("sip_port", sip_port)),
        transport=transport,
        outbound_proxy=resolved.get("outbound_proxy") or None,
        time_zone=str(resolved.get("time_zone", "UTC")),
        language=str(resolved.get("language", "en")),
        ntp_server=str(resolved.get("ntp_server", "pool.ntp.org")),
        blf_keys=tuple(
            BlfKey(label=k.get("label", ""), extension=k["extension"], kind=k.get("kind", "blf"))
            for k in device.blf_keys
        ),
        firmware_url=resolved.get("firmware_url") or None,
        branding=Branding(
            product_name=str(resolved.get("product_name", "")),
            logo_url=resolved.get("logo_url") or None,
            background_url=resolved.get("background_url") or None,
        ),
        provisioning_url=token_url(device, host, scheme=scheme, port=port, credentials=True),
        admin_password=str(resolved.get("admin_password", "")),
        handsets=tuple((int(h), int(li)) for h, li in (device.handsets or {}).items()),
        settings=resolved,
        codes=layers.codes,
    )


def render_device_file(
    tenant, device: Device, model_id: str, filename: str, *, host: str, scheme=None, port=None
) -> RenderedFile:
    """Render ``filename`` for ``device``: the tenant's custom template if any, else shipped.

    Raises ``ProvisioningError`` (a file this device does not fetch) or ``jinja2``/``ValueError``
    errors from a broken context or template.
    """
    spec = spec_for(model_id, filename, device.mac)
    layers = tenant_layers(tenant)
    ctx = build_context(
        tenant, device, model_id, host=host, scheme=scheme, port=port, layers=layers
    )
    custom = layers.templates.get((model_id, spec.pattern))
    if custom is not None:
        return render_source(custom, model_id, spec.pattern, ctx)
    return render(model_id, filename, ctx)


def current_tenant():
    tenant = connection.tenant
    if tenant is None or tenant.schema_name == "public":
        raise RuntimeError("provisioning runs inside a tenant's schema")
    return tenant


def model_choices() -> list[tuple[str, str]]:
    """(id, "Vendor Model") for forms, plus "auto"."""
    return [("auto", "Recognise automatically")] + [(m.id, m.display_name) for m in MODELS.values()]


def render_preview(
    tenant, device: Device, model_id: str, pattern: str, source: str | None, *, host: str
) -> RenderedFile:
    """Render a template (``source``, else the tenant's custom one, else the shipped one) for
    ``device``, as the portal's and the API's preview; problems become a 400 on ``source``."""
    from jinja2 import TemplateError

    from provisioning.vendors import ProvisioningError, get_model

    if device.effective_model_id != model_id:
        raise ValidationFailed(
            f"The phone is a {device.effective_model_id or 'model not yet recognised'}, "
            f"not a {model_id}.",
            fields={"device": ["another model"]},
        )
    spec = next((s for s in get_model(model_id).files if s.pattern == pattern), None)
    if spec is None:
        raise ValidationFailed("No such file.", fields={"file_pattern": ["not a file of it"]})
    filename = spec.filename(device.mac)
    try:
        if source is None:
            return render_device_file(tenant, device, model_id, filename, host=host)
        ctx = build_context(tenant, device, model_id, host=host)
        return render_source(source, model_id, pattern, ctx)
    except (TemplateError, ProvisioningError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise ValidationFailed(
            "The template does not render for this phone.",
            fields={"source": [f"{type(exc).__name__}: {message}"]},
        ) from None
