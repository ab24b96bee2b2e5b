"""Public-schema models: tenants, their host names, users and roles."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

from pbx import versioned

from .choices import (
    TENANT_ADMIN_PERMISSIONS,
    TENANT_USER_PERMISSIONS,
    BillingMode,
    Role,
    SrtpMode,
    TenantStatus,
)
from .fields import CAPABILITY_FIELDS

# Every process caches the host table (tenants.hosts); saving or deleting a Tenant or a Domain
# replaces this token, so each web worker reloads on its next request.
HOSTS_VERSION_KEY = "tenants:hosts:version"


def forget_hosts() -> None:
    """Every process's host cache reloads on its next request (now, and after the commit)."""
    versioned.bump(HOSTS_VERSION_KEY)


class Capabilities(models.Model):
    """What an owner (dealer or tenant) is allowed: numeric quotas and feature switches.

    A dealer's capabilities bound what it can give its tenants and sub-dealers.
    """

    max_extensions = models.PositiveIntegerField(default=100)
    max_concurrent_calls = models.PositiveIntegerField(default=20)
    max_ring_groups = models.PositiveIntegerField(default=10)
    max_queues = models.PositiveIntegerField(default=5)
    max_ivrs = models.PositiveIntegerField(default=5)
    max_conference_rooms = models.PositiveIntegerField(default=5)
    feature_recording = models.BooleanField(default=True)
    feature_queues = models.BooleanField(default=True)
    feature_conferences = models.BooleanField(default=True)
    feature_tenant_trunks = models.BooleanField(default=False)
    billing_mode = models.CharField(
        max_length=16, choices=BillingMode.choices, default=BillingMode.NONE
    )

    class Meta:
        abstract = True

    def capabilities(self) -> dict:
        return {name: getattr(self, name) for name in CAPABILITY_FIELDS}


class PasswordPolicy(models.Model):
    """A tenant's rules for web and SIP passwords."""

    pw_min_length = models.PositiveSmallIntegerField(default=10)
    pw_require_upper = models.BooleanField(default=True)
    pw_require_lower = models.BooleanField(default=True)
    pw_require_digit = models.BooleanField(default=True)
    pw_require_symbol = models.BooleanField(default=False)
    sip_pw_min_length = models.PositiveSmallIntegerField(default=12)

    class Meta:
        abstract = True


# django-tenants is untyped, so the type checker cannot see Domain.tenant's reverse manager.
class Tenant(TenantMixin, Capabilities, PasswordPolicy):  # type: ignore[django-manager-missing]
    """One business on the platform, with a PostgreSQL schema of its own.

    The public schema is a Tenant row too (django-tenants); it has ``schema_name='public'`` and is
    never listed. A deleted tenant keeps a tombstone row (status ``deleted``) for the audit trail;
    its schema, domains, users and SIP domain are gone.
    """

    name = models.CharField(max_length=120)
    # Identifier and host names follow tenants.validators, applied by the tenant actions.
    slug = models.CharField(max_length=31, unique=True)
    sip_domain = models.CharField(max_length=253, unique=True, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE, db_index=True
    )
    dealer = models.ForeignKey(
        "dealers.Dealer", null=True, blank=True, on_delete=models.PROTECT, related_name="tenants"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    # ISO 3166 code: how the tenant's national numbers read (dialling, DIDs, caller IDs).
    country = models.CharField(max_length=2, blank=True)
    language = models.CharField(max_length=16, default="en")
    currency = models.CharField(max_length=3, default="USD")
    ext_min_length = models.PositiveSmallIntegerField(default=3)
    ext_max_length = models.PositiveSmallIntegerField(default=6)
    created_at = models.DateTimeField(default=timezone.now)
    suspended_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Phone provisioning defaults of this tenant (layer "tenant"; see provisioning.layers).
    provisioning_settings = models.JSONField(default=dict, blank=True)
    # Offer RFC 8760 SHA-256 digest (first, then MD5) to this tenant's phones. Off by default:
    # some SIP stacks (baresip/libre, SIPp, sipvicious) fail on any SHA-256 challenge at all.
    sip_digest_sha256 = models.BooleanField(default=False)
    # SDES-SRTP towards the tenant's TLS phones (extensions may set their own); never "".
    srtp = models.CharField(
        max_length=16,
        choices=[c for c in SrtpMode.choices if c[0]],
        default=SrtpMode.OFF,
    )

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or self.schema_name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        forget_hosts()  # status and schema are read from the host cache (tenants.hosts)

    def delete(self, *args, **kwargs):
        forget_hosts()
        return super().delete(*args, **kwargs)

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE

    @property
    def sip_realm(self) -> str:
        """The digest realm of the tenant's extensions: its SIP domain, which every tenant but
        the public schema's stand-in has."""
        if not self.sip_domain:
            raise ValueError(f"tenant {self.schema_name} has no SIP domain")
        return self.sip_domain


class Domain(DomainMixin):
    """A web host name served for a tenant (the portal, API and provisioning answer on it)."""

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        forget_hosts()

    def delete(self, *args, **kwargs):
        forget_hosts()
        return super().delete(*args, **kwargs)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(role=Role.SYSTEM_ADMIN, is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


def login_key(email: str, tenant_id: int | None) -> str:
    return f"{tenant_id or 0}:{email.lower()}"


class User(AbstractBaseUser, PermissionsMixin):
    """Everyone who signs in: system admins, dealer users and tenant users, in one table.

    A tenant user belongs to one tenant and signs in only on that tenant's host name; an e-mail
    address is unique within its scope (the platform, or one tenant), hence ``login_key``.
    """

    login_key = models.CharField(max_length=300, unique=True, editable=False)
    email = models.EmailField()
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.TENANT_USER)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    dealer = models.ForeignKey(
        "dealers.Dealer", null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    custom_role = models.ForeignKey(
        "tenants.TenantRole", null=True, blank=True, on_delete=models.SET_NULL, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    USERNAME_FIELD = "login_key"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    objects = UserManager()

    class Meta:
        ordering = ["email", "id"]
        constraints = [
            models.CheckConstraint(
                name="user_scope_matches_role",
                condition=(
                    Q(role=Role.SYSTEM_ADMIN, tenant__isnull=True, dealer__isnull=True)
                    | Q(role=Role.DEALER_ADMIN, tenant__isnull=True, dealer__isnull=False)
                    | Q(
                        role__in=[Role.TENANT_ADMIN, Role.TENANT_USER],
                        tenant__isnull=False,
                        dealer__isnull=True,
                    )
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        self.email = self.email.lower()
        self.login_key = login_key(self.email, self.tenant_id)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "login_key"}
        super().save(*args, **kwargs)

    def tenant_permissions(self) -> frozenset[str]:
        """Permission codes this user holds inside its own tenant."""
        if self.role == Role.TENANT_ADMIN:
            return TENANT_ADMIN_PERMISSIONS
        if self.custom_role_id is not None and self.custom_role is not None:
            return frozenset(self.custom_role.permissions)
        return TENANT_USER_PERMISSIONS


class TenantRole(models.Model):
    """A custom role a tenant admin defines: a named set of permission codes."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=255, blank=True)
    permissions = models.JSONField(default=list)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="tenant_role_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceIndex(models.Model):
    """Which tenant owns a phone's MAC address, across the whole platform.

    A MAC identifies one physical phone, so it may be registered once on the platform. TFTP and
    SIP PnP requests carry no host name, only the MAC: this public-schema row is how they find
    the tenant schema holding the device. Written only by ``provisioning.actions``, in the same
    transaction as the tenant-schema ``Device`` row.
    """

    mac = models.CharField(max_length=12, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="device_macs")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["mac"]
        verbose_name_plural = "device index entries"

    def __str__(self) -> str:
        return f"{self.mac} -> {self.tenant_id}"


class TenantCertificate(models.Model):
    """A TLS certificate (with its chain and key) a tenant uploaded for its own host names.

    Checked by ``tenants.certificates`` on upload and written only by ``tenants.actions``. The
    private key is stored encrypted (``pbx.crypto``), as SIP passwords are. Which of the
    tenant's host names it serves is :class:`CertificateHost` (one certificate per host name);
    a host name without one is served the platform's certificate.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="certificates")
    chain_pem = models.TextField()
    key_encrypted = models.TextField()
    names = models.JSONField(default=list)  # the leaf's DNS names (subjectAltName)
    subject = models.CharField(max_length=500)
    issuer = models.CharField(max_length=500)
    key_type = models.CharField(max_length=16)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    fingerprint = models.CharField(max_length=95)  # SHA-256 of the leaf, "AB:CD:..."
    uploaded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_by_label = models.CharField(max_length=254, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.fingerprint[:23]})"

    @property
    def days_left(self) -> int:
        return (self.not_after - timezone.now()).days


class CertificateHost(models.Model):
    """The certificate that serves one of a tenant's host names (TLS and WSS, by SNI)."""

    host = models.CharField(max_length=253, unique=True)
    certificate = models.ForeignKey(
        TenantCertificate, on_delete=models.CASCADE, related_name="host_rows"
    )

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host
