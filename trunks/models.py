"""SIP trunks to carriers and the DID pool (public schema: the engine finds a trunk call's
tenant from the trunk and the number, before any tenant is known).

A trunk belongs to one tenant, or to the provider (no owner) or a dealer, which share it with
chosen tenants (PortSIP's provider trunks). Its carrier password is stored encrypted and never
shown again. A DID number is held by the provider or a dealer in the pool and assigned to at
most one tenant at a time; it is stored in E.164.
"""

from django.db import models
from django.utils import timezone

from pbx.crypto import decrypt, encrypt
from tenants.choices import RecordingPolicy


class TrunkKind(models.TextChoices):
    REGISTER = "register", "Registration (the PBX registers to the carrier)"
    IP = "ip", "IP authentication (the carrier sends from known addresses)"


class TrunkTransport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"


class DtmfMode(models.TextChoices):
    RFC2833 = "rfc2833", "RFC 2833 / 4733 events"
    INFO = "info", "SIP INFO"
    INBAND = "inband", "In-band audio"


class CallerIdHeader(models.TextChoices):
    FROM = "from", "From"
    PAI = "pai", "P-Asserted-Identity"
    RPID = "rpid", "Remote-Party-ID"


def no_codecs() -> list:
    return []


class Trunk(models.Model):
    """A SIP trunk. Field names are those of ``telephony.sip.contract.TrunkSnapshot``."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=TrunkKind.choices, default=TrunkKind.IP)
    enabled = models.BooleanField(default=True)
    # Owner: a tenant (its own trunk), else a dealer, else the provider.
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="trunks"
    )
    dealer = models.ForeignKey(
        "dealers.Dealer", null=True, blank=True, on_delete=models.CASCADE, related_name="trunks"
    )
    shared_with = models.ManyToManyField("tenants.Tenant", blank=True, related_name="shared_trunks")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=0)  # 0: the transport's default
    transport = models.CharField(
        max_length=8, choices=TrunkTransport.choices, default=TrunkTransport.UDP
    )
    outbound_proxy = models.CharField(max_length=260, blank=True)
    realm = models.CharField(max_length=253, blank=True)
    username = models.CharField(max_length=128, blank=True)
    auth_username = models.CharField(max_length=128, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    register_expires = models.PositiveIntegerField(default=3600)
    addresses = models.JSONField(default=list, blank=True)  # IPs / CIDRs of an IP trunk
    source_port = models.PositiveIntegerField(default=0)
    country = models.CharField(max_length=2, blank=True)
    codecs = models.JSONField(default=no_codecs, blank=True)
    dtmf_mode = models.CharField(max_length=16, choices=DtmfMode.choices, default=DtmfMode.RFC2833)
    max_channels = models.PositiveIntegerField(default=0)
    from_user = models.CharField(max_length=128, blank=True)
    from_domain = models.CharField(max_length=253, blank=True)
    caller_id_header = models.CharField(
        max_length=8, choices=CallerIdHeader.choices, default=CallerIdHeader.PAI
    )
    send_diversion = models.BooleanField(default=True)
    caller_id = models.CharField(max_length=32, blank=True)
    options_interval = models.PositiveIntegerField(default=60)
    # Recording of calls through the trunk ("" = the tenant's / extension's policy).
    recording = models.CharField(
        max_length=16, choices=RecordingPolicy.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tenant__isnull=True) | models.Q(dealer__isnull=True),
                name="trunk_one_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def password(self) -> str:
        return decrypt(self.password_encrypted) if self.password_encrypted else ""

    def set_password(self, password: str) -> None:
        self.password_encrypted = encrypt(password) if password else ""

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def owner_label(self) -> str:
        if self.tenant_id:
            return f"tenant {self.tenant}"
        if self.dealer_id:
            return f"dealer {self.dealer}"
        return "provider"


class DidNumber(models.Model):
    """A number of the DID pool, in E.164. ``dealer``: the dealer that holds it (None: the
    provider); ``tenant``: the tenant it is assigned to (None: free in the pool)."""

    number = models.CharField(max_length=20, unique=True)
    dealer = models.ForeignKey(
        "dealers.Dealer", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    trunk = models.ForeignKey(
        Trunk, null=True, blank=True, on_delete=models.SET_NULL, related_name="numbers"
    )
    description = models.CharField(max_length=120, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        verbose_name = "DID number"

    def __str__(self) -> str:
        return self.number
