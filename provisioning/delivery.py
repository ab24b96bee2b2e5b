"""Who may fetch a phone's files, over HTTP(S), TFTP and SIP PnP, and the fetch itself.

The rule, the same on every path (also in ``provisioning/README.md``):

1. A source address banned for too many failed fetches gets nothing (HTTP 429 for
   ``PBX_PROV_BAN_SECONDS``; TFTP "file not found"; PnP 404). A failure is any refused or
   unknown fetch; ``PBX_PROV_MAX_FAILURES`` of them within ``PBX_PROV_FAILURE_WINDOW`` seconds
   from one address start a ban. The counters live in Redis, shared by every web process.
2. A device with a non-empty ``allowed_networks`` list is served only to addresses inside it,
   whatever else the request carries.
3. Then any one of these grants the fetch:
   a. the device's HTTP credentials (Basic, compared in constant time) — HTTP only;
   b. the source address is inside the device's (non-empty) allow-list;
   c. the provisioning window is open (``now < provisioning_until``) and the request names the
      device by its secret token (``/prov/<token>/<file>``), or comes over TFTP / PnP (which
      cannot carry a secret: the window is their only protection).
   The plain path ``/prov/<file>`` carries no secret, so only (a) or (b) open it; a MAC alone
   never does.
4. On the plain path a missing/wrong password and an unknown MAC get the same 401 answer (same
   body, same challenge), so guessing MACs reveals nothing. On the token path an unknown token
   is 404 (the token is the secret; a wrong one says nothing about MACs).

The tenant comes from the host name on HTTP (``request.tenant``), and from the public
``DeviceIndex`` (MAC -> tenant) on TFTP and PnP.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection
from django_tenants.utils import tenant_context

from pbx.tenancy import current_schema
from provisioning.vendors import (
    ProvisioningError,
    RenderedFile,
    identify_user_agent,
    match_request_all,
    normalize_mac,
    spec_for,
)
from tenants.choices import TenantStatus

from .config import address_allowed, render_device_file, tenant_host, token_url
from .models import AUTO_MODEL, Device, DeviceStatus

log = logging.getLogger("pbx.provisioning")

FAIL_KEY = "prov:fail:{address}"
BAN_KEY = "prov:ban:{address}"
REALM = "provisioning"
FETCHES_KEY = "prov:fetches"
FETCH_FIELDS = ["last_fetch_at", "last_fetch_address", "last_fetch_user_agent", "last_fetch_file"]


# --- failure counting ---------------------------------------------------------------------


def _redis():
    return get_redis_connection("default")


def banned_for(address: str | None) -> int:
    """Seconds left of ``address``'s ban (0 when it is not banned)."""
    if not address:
        return 0
    ttl = _redis().ttl(BAN_KEY.format(address=address))
    return max(int(ttl), 0) if ttl and ttl > 0 else 0


def record_failure(address: str | None) -> None:
    """Count a failed fetch; the ``PBX_PROV_MAX_FAILURES``-th in the window starts a ban."""
    if not address:
        return
    client = _redis()
    key = FAIL_KEY.format(address=address)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    if ttl is None or ttl < 0:
        client.expire(key, settings.PBX_PROV_FAILURE_WINDOW)
    if count >= settings.PBX_PROV_MAX_FAILURES:
        client.set(BAN_KEY.format(address=address), 1, ex=settings.PBX_PROV_BAN_SECONDS)
        client.delete(key)
        log.warning("provisioning: %s banned after %d failed fetches", address, count)


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def parse_basic(header: str | None) -> Credentials | None:
    """``Authorization: Basic ...`` as credentials, or None when absent or malformed."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return Credentials(username, password) if sep else None


def credentials_match(device: Device | None, credentials: Credentials | None) -> bool:
    """Constant-time check of the per-device HTTP credentials."""
    if credentials is None:
        return False
    # Compare against something even when there is no device, so that the answer time does
    # not tell a known user name from an unknown one.
    expected_user = device.http_username if device else "\0"
    expected_pass = device.http_password if device else "\0" * 24
    user_ok = hmac.compare_digest(credentials.username.encode(), expected_user.encode())
    pass_ok = hmac.compare_digest(credentials.password.encode(), expected_pass.encode())
    return device is not None and user_ok and pass_ok


def resolve_model(device: Device, user_agent: str, filename: str) -> str | None:
    """The model ``filename`` is rendered as, or None when the device does not fetch it.

    A device stored as "auto" is recognised from its User-Agent (the result is kept, so TFTP
    and later fetches without a recognisable User-Agent use it).
    """
    candidates: list[str] = []
    if device.model_id != AUTO_MODEL:
        candidates.append(device.model_id)
    else:
        recognised = identify_user_agent(user_agent or "")
        if recognised is not None:
            candidates.append(recognised.id)
        if device.detected_model_id:
            candidates.append(device.detected_model_id)
    for model_id in candidates:
        try:
            spec_for(model_id, filename, device.mac)
        except ProvisioningError:
            continue
        if device.model_id == AUTO_MODEL and model_id != device.detected_model_id:
            Device.objects.filter(pk=device.pk).update(detected_model_id=model_id)
            device.detected_model_id = model_id
            log.info("provisioning: %s recognised as %s", device.mac, model_id)
        return model_id
    return None


def _record_fetch(device: Device, address: str | None, user_agent: str, filename: str) -> None:
    """Note the fetch on the device (portal and API show it).

    A fetch that changes the device's status (its first, or the first after an error or a
    reboot/re-provision request) is written at once. Repeated fetches — every phone of a site
    after a power cut, periodic re-syncs — only set a field of a Redis hash, which
    :func:`flush_fetches` writes to the database in one batch every
    ``PBX_PROV_FETCH_FLUSH_SECONDS`` (a Celery beat task): no committed write per fetch.
    """
    at = timezone.now()
    ua = (user_agent or "")[:255]
    if device.status != DeviceStatus.PROVISIONED:
        # One UPDATE, no save(): the row may be edited in the portal at the same moment.
        Device.objects.filter(pk=device.pk).update(
            last_fetch_at=at,
            last_fetch_address=address,
            last_fetch_user_agent=ua,
            last_fetch_file=filename[:255],
            status=DeviceStatus.PROVISIONED,
        )
        return
    value = json.dumps({"at": at.isoformat(), "a": address, "ua": ua, "f": filename[:255]})
    _redis().hset(FETCHES_KEY, f"{current_schema()}:{device.pk}", value)


def flush_fetches() -> int:
    """Write the fetches noted in Redis to their devices (every tenant); the rows updated."""
    from django_tenants.utils import schema_context
    from redis.exceptions import ResponseError

    from tenants.models import Tenant

    client = _redis()
    batch = f"{FETCHES_KEY}:flushing:{uuid.uuid4().hex}"
    try:
        # Atomic: fetches noted from now on go to a new hash, none is lost or written twice.
        client.rename(FETCHES_KEY, batch)
    except ResponseError:  # no such key: nothing fetched since the last flush
        return 0
    try:
        by_schema: dict[str, list[Device]] = {}
        for field, value in client.hgetall(batch).items():
            schema, _, pk = field.decode().rpartition(":")
            data = json.loads(value)
            by_schema.setdefault(schema, []).append(
                Device(
                    pk=int(pk),
                    last_fetch_at=datetime.fromisoformat(data["at"]),
                    last_fetch_address=data["a"],
                    last_fetch_user_agent=data["ua"],
                    last_fetch_file=data["f"],
                )
            )
        live = set(
            Tenant.objects.filter(schema_name__in=list(by_schema))
            .exclude(status=TenantStatus.DELETED)
            .values_list("schema_name", flat=True)
        )
        updated = 0
        for schema, devices in by_schema.items():
            if schema not in live:
                continue
            with schema_context(schema):
                # Rows deleted meanwhile are simply not matched.
                updated += Device.objects.bulk_update(devices, FETCH_FIELDS, batch_size=500)
        return updated
    finally:
        client.delete(batch)


@dataclass(frozen=True)
class Outcome:
    """What to answer: a file (200), or a refusal ``status`` (401, 403, 404, 429, 500)."""

    status: int
    file: RenderedFile | None = None
    retry_after: int = 0


NOT_FOUND = Outcome(404)
UNAUTHORIZED = Outcome(401)
FORBIDDEN = Outcome(403)


def _fail(outcome: Outcome, address: str | None, why: str, *args: object) -> Outcome:
    log.info("provisioning refused %s (%d): " + why, address, outcome.status, *args)
    record_failure(address)
    return outcome


def _serve(
    tenant,
    device: Device,
    filename: str,
    *,
    address: str | None,
    user_agent: str,
    host: str,
    scheme: str | None = None,
    port: int | None = None,
) -> Outcome:
    model_id = resolve_model(device, user_agent, filename)
    if model_id is None:
        return _fail(NOT_FOUND, address, "%s does not fetch %r", device.mac, filename)
    try:
        rendered = render_device_file(
            tenant, device, model_id, filename, host=host, scheme=scheme, port=port
        )
    except ProvisioningError as exc:
        return _fail(NOT_FOUND, address, "%s: %s", device.mac, exc)
    except Exception:
        # A context that no longer fits the model, or a custom template failing on real data.
        log.exception("provisioning: rendering %s for %s failed", filename, device.mac)
        Device.objects.filter(pk=device.pk).update(status=DeviceStatus.ERROR)
        return Outcome(500)
    _record_fetch(device, address, user_agent, filename)
    log.info("provisioning: %s fetched %s from %s", device.mac, filename, address)
    return Outcome(200, rendered)


def _one(queryset) -> Device | None:
    """The row of a lookup by a unique column (no ORDER BY, unlike ``first()``)."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def fetch_by_token(
    tenant,
    token: str,
    filename: str,
    *,
    address: str | None,
    user_agent: str,
    authorization: str | None,
    scheme: str,
    port: int | None,
    host: str,
) -> Outcome:
    """``/prov/<token>/<filename>`` on ``tenant``'s host (inside its schema)."""
    wait = banned_for(address)
    if wait:
        return Outcome(429, retry_after=wait)
    device = _one(Device.objects.filter(token=token)) if token else None
    if device is None:
        return _fail(NOT_FOUND, address, "unknown token for %r", filename)
    if device.allowed_networks and not address_allowed(device, address):
        return _fail(FORBIDDEN, address, "%s is outside the allow-list of %s", address, device.mac)
    granted = (
        device.window_open()
        or address_allowed(device, address)
        or credentials_match(device, parse_basic(authorization))
    )
    if not granted:
        return _fail(UNAUTHORIZED, address, "window of %s closed, no valid credentials", device.mac)
    return _serve(
        tenant,
        device,
        filename,
        address=address,
        user_agent=user_agent,
        host=host,
        scheme=scheme,
        port=port,
    )


def _mac_in(filename: str) -> str | None:
    for match in match_request_all(filename):
        if match.mac:
            return match.mac
    return None


def fetch_plain(
    tenant,
    filename: str,
    *,
    address: str | None,
    user_agent: str,
    authorization: str | None,
    scheme: str,
    port: int | None,
    host: str,
) -> Outcome:
    """``/prov/<filename>`` (DHCP option 66 style): the device's credentials, or its allow-list."""
    wait = banned_for(address)
    if wait:
        return Outcome(429, retry_after=wait)
    if not match_request_all(filename):
        return _fail(NOT_FOUND, address, "%r is not a provisioning file", filename)
    credentials = parse_basic(authorization)
    mac = _mac_in(filename)
    device = None
    if credentials is not None:
        device = _one(Device.objects.filter(http_username=credentials.username))
        if not credentials_match(device, credentials):
            device = None
    if device is None and mac is not None:
        by_mac = _one(Device.objects.filter(mac=mac))
        if by_mac is None:
            log.info("provisioning: unknown MAC %s asked for %r from %s", mac, filename, address)
        elif address_allowed(by_mac, address):
            device = by_mac
    if device is None:
        # Unknown MAC, no or wrong credentials: one answer for all of them.
        return _fail(UNAUTHORIZED, address, "no valid credentials for %r", filename)
    if device.allowed_networks and not address_allowed(device, address):
        return _fail(FORBIDDEN, address, "%s is outside the allow-list of %s", address, device.mac)
    if mac is not None and mac != device.mac:
        return _fail(NOT_FOUND, address, "%s asked for %s's file", device.mac, mac)
    return _serve(
        tenant,
        device,
        filename,
        address=address,
        user_agent=user_agent,
        host=host,
        scheme=scheme,
        port=port,
    )


# --- TFTP and PnP: no host name, the MAC finds the tenant -----------------------------------


def _tenant_of(mac: str):
    from tenants.models import DeviceIndex

    row = DeviceIndex.objects.select_related("tenant", "tenant__dealer").filter(mac=mac).first()
    if row is None or row.tenant.status != TenantStatus.ACTIVE:
        return None
    return row.tenant


def _open_without_secret(device: Device, address: str | None) -> bool:
    """TFTP and PnP carry no secret: the window, or the allow-list, must let them in."""
    if device.allowed_networks and not address_allowed(device, address):
        return False
    return device.window_open() or address_allowed(device, address)


def tftp_lookup(filename: str, addr: tuple[str, int]) -> bytes | None:
    """The TFTP server's callback: the rendered file, or None ("file not found")."""
    address = addr[0]
    if banned_for(address):
        return None
    mac = _mac_in(filename)
    if mac is None:
        # Shared files (y000000000000.cfg) name no device, so no tenant: not served on TFTP.
        _fail(NOT_FOUND, address, "TFTP %r names no device", filename)
        return None
    tenant = _tenant_of(mac)
    if tenant is None:
        _fail(NOT_FOUND, address, "TFTP unknown MAC %s (%r)", mac, filename)
        return None
    with tenant_context(tenant):
        device = Device.objects.filter(mac=mac).first()
        if device is None:
            _fail(NOT_FOUND, address, "TFTP MAC %s indexed but not in its tenant", mac)
            return None
        if not _open_without_secret(device, address):
            _fail(NOT_FOUND, address, "TFTP %s: window closed and not allow-listed", mac)
            return None
        outcome = _serve(
            tenant, device, filename, address=address, user_agent="TFTP", host=tenant_host(tenant)
        )
    return outcome.file.content if outcome.file is not None else None


def pnp_url_for(mac: str, vendor: str, model: str, addr: tuple[str, int]) -> str | None:
    """The PnP responder's callback: the device's token URL on its tenant's host, or None."""
    address = addr[0]
    if banned_for(address):
        return None
    try:
        mac = normalize_mac(mac)
    except ValueError:
        return None
    tenant = _tenant_of(mac)
    if tenant is None:
        log.info("PnP: unknown MAC %s (%s %s) from %s", mac, vendor, model, address)
        return None
    with tenant_context(tenant):
        device = Device.objects.filter(mac=mac).first()
        if device is None or not _open_without_secret(device, address):
            log.info("PnP: %s (%s %s) from %s: window closed", mac, vendor, model, address)
            return None
        return token_url(device, tenant_host(tenant))
