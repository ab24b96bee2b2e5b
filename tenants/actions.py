"""Business writes for tenants, their users and roles.

Each ``do_*`` runs in one transaction, writes an audit entry and schedules side effects on commit.
Views, serializers, admin, commands and tasks call these; nothing else writes these rows.
"""

import logging

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists, tenant_context

from pbx import audit
from pbx.audit import Actor
from pbx.crypto import encrypt
from pbx.errors import Conflict, ErrorCode, PbxError, ValidationFailed
from pbx.tenancy import current_schema, use_public_schema
from trunks.actions import release_tenant

from . import lockout
from .capabilities import check_totals, check_within, with_default_totals
from .choices import Permission, Role, SrtpMode, TenantStatus
from .fields import CAPABILITY_FIELDS, COMPANY_FIELDS
from .models import (
    CertificateHost,
    DeviceIndex,
    Domain,
    Tenant,
    TenantCertificate,
    TenantRole,
    User,
)
from .passwords import check_password
from .validators import clean_identity

log = logging.getLogger(__name__)


def ensure_public_tenant() -> Tenant:
    """The public schema's row and its host names (the service provider's portal)."""
    public, _ = Tenant.objects.get_or_create(
        schema_name="public", defaults={"name": "Platform", "slug": "public"}
    )
    for i, host in enumerate(settings.PBX_PUBLIC_HOSTS):
        Domain.objects.get_or_create(domain=host, defaults={"tenant": public, "is_primary": i == 0})
    return public


def ensure_template_schema() -> None:
    """Create or migrate the schema new tenants are cloned from.

    Run after every ``migrate_schemas`` so that a clone never lacks a migration.
    """
    from django.core.management import call_command

    name = settings.TENANT_BASE_SCHEMA
    if not schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
    call_command("migrate_schemas", schema_name=name, interactive=False, verbosity=0)


#: The range each password-length rule may be set to (below: guessable; above: not typable).
PASSWORD_LENGTHS = {"pw_min_length": (6, 128), "sip_pw_min_length": (8, 128)}


def _validate_tenant_fields(fields: dict) -> None:
    from pbx.text import single_line_errors

    from . import locale

    # The name is written into mail (subjects, greetings) and shown on phones: one line.
    errors = single_line_errors(fields, {"name": 120})
    lo, hi = fields.get("ext_min_length"), fields.get("ext_max_length")
    if lo is not None and hi is not None and (lo < 1 or lo > hi or hi > 64):
        errors["ext_max_length"] = ["extension lengths must satisfy 1 <= min <= max <= 64"]
    for name, (low, high) in PASSWORD_LENGTHS.items():
        if name in fields and not low <= fields[name] <= high:
            errors[name] = [f"must be from {low} to {high} characters"]
    if "time_zone" in fields and not locale.is_time_zone(fields["time_zone"]):
        errors["time_zone"] = [f"unknown time zone '{fields['time_zone']}'"]
    if "language" in fields and not locale.is_language(fields["language"]):
        errors["language"] = [f"unknown language code '{fields['language']}'"]
    if "srtp" in fields and (fields["srtp"] not in SrtpMode.values or not fields["srtp"]):
        errors["srtp"] = ["one of: off, optional, required"]
    if "currency" in fields and not locale.is_currency(fields["currency"]):
        errors["currency"] = [f"not a currency in use (ISO 4217): '{fields['currency']}'"]
    if errors:
        raise ValidationFailed("Invalid tenant settings.", fields=errors)


def do_create_tenant(
    *,
    name: str,
    slug: str,
    sip_domain: str,
    web_host: str | None = None,
    dealer=None,
    admin: dict | None = None,
    invite_origin: tuple[str, str] | None = None,
    actor: Actor,
    **fields,
) -> Tenant:
    """Create a tenant with its schema, web host and SIP domain.

    The tenant's capabilities may not exceed its dealer's. The schema is cloned from the
    template schema in the same transaction, so a failure leaves nothing behind. With
    ``admin`` (``{"email", "full_name"}``) its first tenant admin is made too, without a
    password, and invited by e-mail to set one on the tenant's host (``invite_origin``: the
    scheme and port for the link, as the caller sees them).
    """
    identity, errors = clean_identity(
        slug=slug, sip_domain=sip_domain, web_host=sip_domain if web_host is None else web_host
    )
    if errors:
        raise ValidationFailed("Invalid identifier or host name.", fields=errors)
    slug, sip_domain, web_host = identity["slug"], identity["sip_domain"], identity["web_host"]
    check_within(dealer, fields, parent_label=str(dealer) if dealer else "")
    _validate_tenant_fields({"ext_min_length": 3, "ext_max_length": 6, "name": name, **fields})
    with transaction.atomic():
        if dealer is not None:
            from dealers.models import Dealer

            dealer = Dealer.objects.select_for_update().get(pk=dealer.pk)
            # An unset extension quota is the default, or what the dealer has left if less.
            fields = with_default_totals(dealer, Tenant, fields, names=("max_extensions",))
            check_totals(
                dealer,
                {"max_tenants": 1, "max_extensions": fields["max_extensions"]},
                fields_as={"max_tenants": "dealer"},
            )
        errors = {}
        if Tenant.objects.filter(slug=slug).exists():
            errors["slug"] = ["a tenant with this identifier exists"]
        errors.update(_host_clashes(sip_domain, web_host))
        if errors:
            raise Conflict("The tenant clashes with an existing one.", fields=errors)
        tenant = Tenant(
            name=name,
            slug=slug,
            schema_name=f"t_{slug}",
            sip_domain=sip_domain,
            dealer=dealer,
            **fields,
        )
        try:
            with transaction.atomic():
                tenant.save(verbosity=0)
                Domain.objects.create(domain=web_host, tenant=tenant, is_primary=True)
        except IntegrityError as exc:
            raise Conflict("The tenant clashes with an existing one.") from exc
        use_public_schema()
        audit.record(
            actor,
            "tenant.create",
            tenant,
            tenant=tenant,
            dealer=dealer,
            changes={"slug": slug, "sip_domain": sip_domain, "web_host": web_host, **fields},
        )
        if admin:
            first = do_create_user(
                email=admin["email"],
                full_name=admin.get("full_name", ""),
                password=None,
                role=Role.TENANT_ADMIN,
                tenant=tenant,
                actor=actor,
            )
            do_invite_user(first, actor=actor, origin=invite_origin)
        transaction.on_commit(lambda: _publish(tenant))
    return tenant


def _host_clashes(sip_domain, web_host, *, tenant=None) -> dict:
    """Which of the given host names another tenant already has (None: not being set)."""
    errors = {}
    others = Tenant.objects.all() if tenant is None else Tenant.objects.exclude(pk=tenant.pk)
    if sip_domain is not None and others.filter(sip_domain=sip_domain).exists():
        errors["sip_domain"] = ["this SIP domain is taken"]
    hosts = Domain.objects.exclude(tenant_id=getattr(tenant, "pk", None))
    if web_host is not None and hosts.filter(domain=web_host).exists():
        errors["web_host"] = ["this host name is taken"]
    return errors


def _publish(tenant: Tenant) -> None:
    from telephony.engine.snapshots import publish_tenant

    publish_tenant(tenant.pk)


def _lock(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def do_update_tenant(
    tenant: Tenant, *, actor: Actor, sip_domain=None, web_host=None, **fields
) -> Tenant:
    """Change settings, capabilities and host names; capabilities stay within the dealer's.

    The identifier (the schema's name) is fixed; the SIP domain and the web host may be
    corrected, under the same rules as at creation.
    """
    identity, errors = clean_identity(
        **{
            name: value
            for name, value in (("sip_domain", sip_domain), ("web_host", web_host))
            if value is not None
        }
    )
    if errors:
        raise ValidationFailed("Invalid host name.", fields=errors)
    with transaction.atomic():
        tenant = _lock(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise Conflict("The tenant is deleted.", code=ErrorCode.TENANT_DELETED)
        caps = {k: v for k, v in fields.items() if k in CAPABILITY_FIELDS}
        check_within(tenant.dealer, caps, parent_label=str(tenant.dealer or ""))
        merged = {
            "ext_min_length": tenant.ext_min_length,
            "ext_max_length": tenant.ext_max_length,
            **fields,
        }
        _validate_tenant_fields(merged)
        if "max_extensions" in caps and tenant.dealer_id is not None:
            from dealers.models import Dealer

            dealer = Dealer.objects.select_for_update().get(pk=tenant.dealer_id)
            check_totals(dealer, {"max_extensions": caps["max_extensions"]}, skip_tenant=tenant)
        if "max_extensions" in caps:
            with tenant_context(tenant):
                from telephony.models import Extension

                used = Extension.objects.count()
            if caps["max_extensions"] < used:
                raise Conflict(
                    f"The tenant already has {used} extensions.",
                    fields={"max_extensions": [f"at least {used} (extensions in use)"]},
                )
        clashes = _host_clashes(identity.get("sip_domain"), identity.get("web_host"), tenant=tenant)
        if clashes:
            raise Conflict("The host name belongs to another tenant.", fields=clashes)
        old_domain = tenant.sip_domain
        if identity.get("sip_domain", old_domain) != old_domain:
            fields["sip_domain"] = identity["sip_domain"]
        changes = audit.diff(tenant, fields)
        if "web_host" in identity:
            changes.update(_set_web_host(tenant, identity["web_host"]))
        for name, value in fields.items():
            setattr(tenant, name, value)
        tenant.save(update_fields=list(fields) or None)
        dropped = _drop_foreign_certificate_hosts(tenant)
        if dropped:
            changes["certificate_hosts_dropped"] = dropped
        audit.record(actor, "tenant.update", tenant, tenant=tenant, changes=changes)
        if "sip_domain" in fields:
            transaction.on_commit(lambda: _forget_runtime_state(old_domain, None))
        transaction.on_commit(lambda: _publish(tenant))
    return tenant


def _set_web_host(tenant: Tenant, host: str) -> dict:
    primary = Domain.objects.filter(tenant=tenant, is_primary=True).first()
    if primary is None:
        Domain.objects.create(tenant=tenant, domain=host, is_primary=True)
        return {"web_host": [None, host]}
    if primary.domain == host:
        return {}
    old = primary.domain
    primary.domain = host
    primary.save(update_fields=["domain"])
    return {"web_host": [old, host]}


# What a tenant's own admin (permission ``tenant.settings``) may change of its company; quotas,
# capabilities, billing and host names are its dealer's to set.


def do_update_company(tenant: Tenant, *, actor: Actor, **fields) -> Tenant:
    """A tenant admin's change of its own company settings (``COMPANY_FIELDS`` only)."""
    other = sorted(set(fields) - set(COMPANY_FIELDS))
    if other:
        raise ValidationFailed(
            "Only the company's own settings can be changed here.",
            fields={name: ["set by your provider"] for name in other},
        )
    return do_update_tenant(tenant, actor=actor, **fields)


def do_set_tenant_status(tenant: Tenant, status: str, *, actor: Actor) -> Tenant:
    """Suspend (data kept; sign-in, API and calls refused) or resume a tenant."""
    if status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
        raise ValidationFailed("Use delete to delete a tenant.", fields={"status": ["invalid"]})
    with transaction.atomic():
        tenant = _lock(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise Conflict("The tenant is deleted.", code=ErrorCode.TENANT_DELETED)
        if tenant.status == status:
            return tenant
        old = tenant.status
        tenant.status = status
        tenant.suspended_at = timezone.now() if status == TenantStatus.SUSPENDED else None
        tenant.save(update_fields=["status", "suspended_at"])
        verb = "suspend" if status == TenantStatus.SUSPENDED else "resume"
        audit.record(
            actor, f"tenant.{verb}", tenant, tenant=tenant, changes={"status": [old, status]}
        )
        transaction.on_commit(lambda: _publish(tenant))
    return tenant


def do_open_tenant_api(tenant: Tenant, *, actor: Actor) -> None:
    """Audit that a provider-side admin took API credentials for a tenant's host (the API's
    counterpart of the portal's "Manage"); the caller issues the token pair."""
    with transaction.atomic():
        audit.record(actor, "tenant.api_token", tenant, tenant=tenant)


def do_delete_tenant(tenant: Tenant, *, confirm: str, actor: Actor) -> Tenant:
    """Erase a tenant's schema, host names and users; keep a tombstone row for the audit trail.

    ``confirm`` must repeat the tenant's identifier (slug): deletion cannot be undone.
    """
    if confirm != tenant.slug:
        raise PbxError(
            f"Deleting erases every extension, recording and setting of '{tenant.name}'. "
            f"Confirm by sending confirm='{tenant.slug}'.",
            fields={"confirm": [f"must be '{tenant.slug}'"]},
            code=ErrorCode.CONFIRMATION_REQUIRED,
        )
    with transaction.atomic():
        tenant = _lock(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise Conflict("The tenant is already deleted.", code=ErrorCode.TENANT_DELETED)
        old_domain, old_schema = tenant.sip_domain, tenant.schema_name
        # Public rows first, while the tenant's tables still exist: deleting a user makes
        # Django look at the tenant tables that point at users (extensions, import jobs).
        delete_users(User.objects.filter(tenant=tenant), tenant=tenant)
        Domain.objects.filter(tenant=tenant).delete()
        TenantRole.objects.filter(tenant=tenant).delete()
        DeviceIndex.objects.filter(tenant=tenant).delete()
        cert_rows = CertificateHost.objects.filter(certificate__tenant=tenant)
        cert_hosts = list(cert_rows.values_list("host", flat=True))
        TenantCertificate.objects.filter(tenant=tenant).delete()
        delete_owned_brand(tenant=tenant, actor=actor)
        release_tenant(tenant)
        # Deferred constraint checks of this transaction must not be pending on tables we drop.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        tenant._drop_schema(force_drop=True)
        use_public_schema()
        tenant.status = TenantStatus.DELETED
        tenant.deleted_at = timezone.now()
        tenant.sip_domain = None
        # Free the identifier and schema name for reuse; the tombstone keeps its id.
        tenant.slug = f"deleted{tenant.pk}"
        tenant.schema_name = f"deleted_{tenant.pk}"
        tenant.save(update_fields=["status", "deleted_at", "sip_domain", "slug", "schema_name"])
        audit.record(
            actor, "tenant.delete", tenant, tenant=tenant, changes={"sip_domain": old_domain}
        )
        transaction.on_commit(lambda: _forget_runtime_state(old_domain, old_schema))
        transaction.on_commit(lambda: _publish_certificates(cert_hosts))
    return tenant


def delete_owned_brand(*, actor: Actor, tenant=None, dealer=None) -> None:
    """A deleted tenant's or dealer's own brand goes with it, its uploaded logo and icon
    included (the files once the transaction commits)."""
    from branding.actions import do_delete_brand
    from branding.models import Brand

    brand = Brand.objects.filter(tenant=tenant, dealer=dealer).first()
    if brand is not None:
        do_delete_brand(brand, actor=actor)


def delete_users(queryset, *, tenant: Tenant | None = None) -> None:
    """Delete users inside a schema that has the tenant tables: Django's delete cascades look
    at the tenant tables that point at users (extensions, import jobs), which the public
    schema alone does not have. Their ``tenant``'s schema (links to them are cleared there),
    else the current tenant's, else the empty template's (platform users). Their browser
    sessions go with them."""
    delete_sessions(list(queryset.values_list("pk", flat=True)))
    if tenant is not None:
        with tenant_context(tenant):
            queryset.delete()
    elif current_schema() == "public":
        with schema_context(settings.TENANT_BASE_SCHEMA):
            queryset.delete()
    else:
        queryset.delete()


def delete_sessions(user_ids) -> None:
    """Sign the users out of every browser: their database sessions go with them."""
    from django.contrib.sessions.models import Session

    wanted = {str(pk) for pk in user_ids}
    if not wanted:
        return
    doomed = [
        s.pk
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if s.get_decoded().get("_auth_user_id") in wanted
    ]
    Session.objects.filter(pk__in=doomed).delete()


def _forget_runtime_state(domain: str | None, schema: str | None) -> None:
    """Remove what Redis holds of a deleted tenant: its routing snapshot, registrations, live
    calls and cache entries (the schema name is reused by the next tenant of that identifier,
    which must not inherit a cached brand or a throttle)."""
    from django_redis import get_redis_connection

    from telephony.engine import store
    from telephony.engine.snapshots import unpublish_domain
    from telephony.engine.store import redis_key
    from telephony.sip.contract import CALLS, LOCATION

    unpublish_domain(domain)
    try:
        r = store.client(decode=True)
        keys = [redis_key(CALLS, schema=schema)] if schema else []
        if domain:
            keys += r.scan_iter(match=redis_key(LOCATION, domain=domain, user="*"))
        if keys:
            r.delete(*keys)
        cache = get_redis_connection("default")
        for pattern in (f"{schema}:*", f"branding:effective:*:{schema}") if schema else ():
            doomed = list(cache.scan_iter(match=pattern, count=1000))
            if doomed:
                cache.delete(*doomed)
    except Exception:
        log.exception("could not remove the runtime state of %s", schema)


# --- users -------------------------------------------------------------------------------------


def _check_role_scope(role: str, tenant, dealer, custom_role) -> None:
    if role in (Role.TENANT_ADMIN, Role.TENANT_USER) and tenant is None:
        raise ValidationFailed("A tenant user needs a tenant.", fields={"role": ["needs a tenant"]})
    if role == Role.DEALER_ADMIN and dealer is None:
        raise ValidationFailed("A dealer admin needs a dealer.", fields={"dealer": ["required"]})
    if custom_role is not None and (tenant is None or custom_role.tenant_id != tenant.id):
        raise ValidationFailed(
            "The role belongs to another tenant.", fields={"custom_role": ["unknown role"]}
        )


def do_create_user(
    *,
    email: str,
    password: str | None,
    role: str,
    tenant: Tenant | None = None,
    dealer=None,
    full_name: str = "",
    custom_role: TenantRole | None = None,
    actor: Actor,
) -> User:
    """Create a sign-in account within its scope (platform, dealer or tenant)."""
    from pbx.text import require_single_line

    # Names and addresses go into mail headers (To:, greetings) and SIP display names.
    require_single_line(
        {"email": email, "full_name": full_name}, {"email": 254, "full_name": 150}, "Invalid user."
    )
    _check_role_scope(role, tenant, dealer, custom_role)
    if password is not None:
        check_password(tenant, password, field="password", identifiers=(email.split("@")[0],))
    with transaction.atomic():
        user = User(
            email=email,
            role=role,
            tenant=tenant,
            dealer=dealer,
            full_name=full_name,
            custom_role=custom_role,
            is_staff=role == Role.SYSTEM_ADMIN,
            is_superuser=role == Role.SYSTEM_ADMIN,
        )
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            raise Conflict(
                "A user with this e-mail exists.", fields={"email": ["already in use"]}
            ) from exc
        audit.record(
            actor,
            "user.create",
            user,
            tenant=tenant,
            dealer=dealer,
            changes={"email": user.email, "role": role},
        )
    return user


def do_update_user(user: User, *, actor: Actor, password: str | None = None, **fields) -> User:
    from pbx.text import require_single_line

    require_single_line(fields, {"email": 254, "full_name": 150}, "Invalid user.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        _check_role_scope(
            fields.get("role", user.role),
            user.tenant,
            user.dealer,
            fields.get("custom_role", user.custom_role),
        )
        changes = audit.diff(user, fields)
        for name, value in fields.items():
            setattr(user, name, value)
        if password is not None:
            check_password(
                user.tenant, password, field="password", identifiers=(user.email.split("@")[0],)
            )
            user.set_password(password)
            changes["password"] = "changed"  # noqa: S105 - audit marker
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            raise Conflict(
                "A user with this e-mail exists.", fields={"email": ["already in use"]}
            ) from exc
        audit.record(
            actor, "user.update", user, tenant=user.tenant, dealer=user.dealer, changes=changes
        )
        if password is not None:
            # A new password set by an administrator lifts a sign-in lock-out.
            transaction.on_commit(lambda: lockout.unlock(user))
    return user


class SignInName:
    """An audit entry's object for a sign-in name that matched no account."""

    pk = None

    def __init__(self, name: str):
        self.name = name

    def __str__(self) -> str:
        return self.name


def do_lock_sign_in(*, user, identifier: str, tenant, seconds: int, actor: Actor) -> None:
    """Audit that repeated wrong passwords locked a sign-in name (the lock itself is in the
    security cache, :mod:`tenants.lockout`). Unknown names are locked and audited alike."""
    changes = {"locked_seconds": seconds, "sign_in_name": identifier}
    with transaction.atomic():
        if user is not None:
            audit.record(
                actor,
                "user.sign_in_locked",
                user,
                tenant=user.tenant,
                dealer=user.dealer,
                changes=changes,
            )
        else:
            audit.record(
                actor, "user.sign_in_locked", SignInName(identifier), tenant=tenant, changes=changes
            )


def do_delete_user(user: User, *, actor: Actor) -> None:
    if actor.user is not None and actor.user.pk == user.pk:
        raise Conflict("You cannot delete your own account.")
    with transaction.atomic():
        audit.record(actor, "user.delete", user, tenant=user.tenant, dealer=user.dealer)
        delete_users(User.objects.filter(pk=user.pk), tenant=user.tenant)


def do_invite_user(user: User, *, actor: Actor, origin: tuple[str, str] | None = None) -> None:
    """E-mail ``user`` a single-use, expiring link to set its password (a new account made
    without one). ``origin`` is the (scheme, port) the link should use."""
    if user.has_usable_password():
        raise Conflict("The user already has a password.", fields={"email": ["already signed up"]})
    scheme, port = origin or (None, None)
    with transaction.atomic():
        audit.record(
            actor,
            "user.invite",
            user,
            tenant=user.tenant,
            dealer=user.dealer,
            changes={"email": user.email},
        )
        from .tasks import send_invite

        transaction.on_commit(lambda: send_invite.delay(user.pk, scheme, port))


# --- custom roles ------------------------------------------------------------------------------


def _check_permissions(permissions: list[str]) -> list[str]:
    unknown = sorted(set(permissions) - set(Permission.values))
    if unknown:
        raise ValidationFailed(
            "Unknown permission codes.", fields={"permissions": [f"unknown: {', '.join(unknown)}"]}
        )
    return sorted(set(permissions))


def do_create_role(tenant: Tenant, *, name: str, permissions, description="", actor: Actor):
    permissions = _check_permissions(permissions)
    with transaction.atomic():
        if TenantRole.objects.filter(tenant=tenant, name=name).exists():
            raise Conflict("A role with this name exists.", fields={"name": ["already in use"]})
        role = TenantRole.objects.create(
            tenant=tenant, name=name, permissions=permissions, description=description
        )
        audit.record(
            actor, "role.create", role, tenant=tenant, changes={"permissions": permissions}
        )
    return role


def do_update_role(role: TenantRole, *, actor: Actor, **fields) -> TenantRole:
    if "permissions" in fields:
        fields["permissions"] = _check_permissions(fields["permissions"])
    with transaction.atomic():
        changes = audit.diff(role, fields)
        for name, value in fields.items():
            setattr(role, name, value)
        try:
            with transaction.atomic():
                role.save()
        except IntegrityError as exc:
            raise Conflict("A role with this name exists.", fields={"name": ["in use"]}) from exc
        audit.record(actor, "role.update", role, tenant=role.tenant, changes=changes)
    return role


def do_delete_role(role: TenantRole, *, actor: Actor) -> None:
    with transaction.atomic():
        if role.users.exists():
            raise Conflict(
                "The role is still given to users.", fields={"users": ["reassign them first"]}
            )
        audit.record(actor, "role.delete", role, tenant=role.tenant)
        role.delete()


# --- TLS certificates --------------------------------------------------------------------------


def tenant_hosts(tenant: Tenant) -> list[str]:
    """The host names a tenant is reached on: its SIP domain, then its web host names."""
    hosts = [tenant.sip_domain] if tenant.sip_domain else []
    hosts += (
        Domain.objects.filter(tenant=tenant)
        .order_by("-is_primary", "domain")
        .values_list("domain", flat=True)
    )
    return list(dict.fromkeys(h.lower() for h in hosts))


def _publish_certificates(hosts) -> None:
    from telephony.engine.tls import publish_hosts

    publish_hosts(hosts)


def _drop_orphan_certificates(tenant: Tenant, *, keep: int | None = None) -> list[str]:
    """Delete the tenant's certificates that serve no host name any more (replaced); their
    fingerprints."""
    orphans = TenantCertificate.objects.filter(tenant=tenant, host_rows__isnull=True)
    if keep is not None:
        orphans = orphans.exclude(pk=keep)
    gone = list(orphans.values_list("fingerprint", flat=True))
    orphans.delete()
    return gone


def _drop_foreign_certificate_hosts(tenant: Tenant) -> list[str]:
    """After a host name change: a certificate stops serving the names the tenant no longer
    has (published on commit). Returns those names."""
    rows = CertificateHost.objects.filter(certificate__tenant=tenant).exclude(
        host__in=tenant_hosts(tenant)
    )
    dropped = sorted(rows.values_list("host", flat=True))
    if dropped:
        rows.delete()
        _drop_orphan_certificates(tenant)
        transaction.on_commit(lambda: _publish_certificates(dropped))
    return dropped


def do_upload_certificate(tenant: Tenant, *, chain: str, key: str, actor: Actor):
    """Check a certificate chain and its private key (``tenants.certificates``) and make it
    the one served on each of the tenant's host names it covers.

    A certificate it replaces on every one of its host names is deleted. The key is stored
    encrypted; the engines get it on commit (``telephony.engine.tls``) and serve it by SNI.
    """
    from .certificates import CertificateProblem, inspect_upload, load_roots

    try:
        checked = inspect_upload(
            chain,
            key,
            tenant_hosts=tenant_hosts(tenant),
            roots=load_roots(tuple(settings.TLS_TRUSTED_CA_FILES)),
        )
    except CertificateProblem as exc:
        log.info("certificate for %s refused: %s", tenant.schema_name, exc.message)
        raise ValidationFailed(exc.message, fields={exc.field: [exc.message]}) from None
    with transaction.atomic():
        tenant = _lock(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise Conflict("The tenant is deleted.", code=ErrorCode.TENANT_DELETED)
        taken = sorted(
            CertificateHost.objects.filter(host__in=checked.hosts)
            .exclude(certificate__tenant=tenant)
            .values_list("host", flat=True)
        )
        if taken:
            # Another tenant's certificate serves the name: never taken over by an upload.
            log.warning("certificate for %s refused: %s served for another tenant",
                        tenant.schema_name, ", ".join(taken))  # fmt: skip
            message = f"Another tenant's certificate serves {', '.join(taken)}."
            raise Conflict(message, fields={"chain": [message]})
        cert = TenantCertificate.objects.create(
            tenant=tenant,
            chain_pem=checked.chain_pem,
            key_encrypted=encrypt(checked.key_pem),
            names=list(checked.names),
            subject=checked.subject[:500],
            issuer=checked.issuer[:500],
            key_type=checked.key_type,
            not_before=checked.not_before,
            not_after=checked.not_after,
            fingerprint=checked.fingerprint,
            uploaded_by=actor.user,
            uploaded_by_label=actor.label[:254],
        )
        # The tenant's own earlier certificate for these names is replaced.
        CertificateHost.objects.filter(host__in=checked.hosts).delete()
        CertificateHost.objects.bulk_create(
            [CertificateHost(host=h, certificate=cert) for h in checked.hosts]
        )
        replaced = _drop_orphan_certificates(tenant, keep=cert.pk)
        audit.record(
            actor,
            "certificate.upload",
            cert,
            tenant=tenant,
            changes={
                "hosts": list(checked.hosts),
                "fingerprint": checked.fingerprint,
                "not_after": checked.not_after.isoformat(),
                "replaced": replaced,
            },
        )
        hosts = list(checked.hosts)
        transaction.on_commit(lambda: _publish_certificates(hosts))
    return cert


def do_delete_certificate(cert, *, actor: Actor) -> None:
    """Stop serving a tenant's certificate: its host names get the platform's again."""
    with transaction.atomic():
        _lock(cert.tenant)
        hosts = list(cert.host_rows.values_list("host", flat=True))
        audit.record(
            actor,
            "certificate.delete",
            cert,
            tenant=cert.tenant,
            changes={"hosts": hosts, "fingerprint": cert.fingerprint},
        )
        cert.delete()
        transaction.on_commit(lambda: _publish_certificates(hosts))
