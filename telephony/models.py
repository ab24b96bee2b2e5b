"""Tenant-schema telephony configuration."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from pbx.crypto import decrypt, encrypt
from tenants.choices import RecordingPolicy, SrtpMode


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"
    WS = "ws", "WebSocket"
    WSS = "wss", "Secure WebSocket"


def all_transports() -> list[str]:
    return list(Transport.values)


class CallScope(models.TextChoices):
    INTERNAL = "internal", "Internal calls only"
    NATIONAL = "national", "Internal and national"
    INTERNATIONAL = "international", "No restriction"


class Extension(models.Model):
    """A numbered endpoint of the tenant: phones register to it and calls ring it.

    The SIP password is stored encrypted (phones are provisioned with it) and its digest HA1s
    (MD5 and SHA-256, RFC 8760) are kept in step so the SIP engine never needs the clear text.
    """

    number = models.CharField(max_length=64, unique=True)
    display_name = models.CharField(max_length=120)
    sip_password_encrypted = models.TextField(editable=False)
    ha1_md5 = models.CharField(max_length=32, editable=False)
    ha1_sha256 = models.CharField(max_length=64, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="extension",
        db_constraint=False,
    )
    email = models.EmailField(blank=True)
    mobile = models.CharField(max_length=32, blank=True)
    enabled = models.BooleanField(default=True)
    voicemail_pin = models.CharField(max_length=12, blank=True)
    dnd = models.BooleanField(default=False)
    caller_id_name = models.CharField(max_length=120, blank=True)
    caller_id_number = models.CharField(max_length=32, blank=True)
    outbound_caller_ids = models.JSONField(default=list, blank=True)
    max_registrations = models.PositiveSmallIntegerField(default=3)
    allowed_transports = models.JSONField(default=all_transports)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Call forwarding, as the engine reads it from the routing snapshot: a target (an
    # extension or an outside number) per condition, empty for off. "Always" wins over the
    # others; "no answer" takes effect after ``no_answer_timeout`` seconds of ringing.
    forward_always = models.CharField(max_length=32, blank=True)
    forward_busy = models.CharField(max_length=32, blank=True)
    forward_no_answer = models.CharField(max_length=32, blank=True)
    no_answer_timeout = models.PositiveSmallIntegerField(default=20)
    # Call barring: the widest class of number the extension may dial.
    call_scope = models.CharField(
        max_length=16, choices=CallScope.choices, default=CallScope.INTERNATIONAL
    )
    # Hot desking: users may log in at this extension's phones (a shared desk), and the
    # extension logged in there now ("" = nobody; set by the log-in code or an admin).
    hot_desk = models.BooleanField(default=False)
    hotdesk_user = models.CharField(max_length=64, blank=True)
    # Recording of its calls (contract.RecordingPolicy); "" = the tenant's policy.
    recording = models.CharField(
        max_length=16, choices=RecordingPolicy.choices, blank=True, default=""
    )
    # SRTP towards its TLS phones (contract.SrtpMode; "" = the tenant's), and whether its user
    # may call from the web app's softphone.
    srtp = models.CharField(max_length=16, choices=SrtpMode.choices, blank=True, default="")
    web_softphone = models.BooleanField(default=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"

    @property
    def sip_password(self) -> str:
        return decrypt(self.sip_password_encrypted)

    def set_sip_password(self, password: str, realm: str) -> None:
        from telephony.sip.contract import ha1

        self.sip_password_encrypted = encrypt(password)
        self.ha1_md5 = ha1("MD5", self.number, realm, password)
        self.ha1_sha256 = ha1("SHA-256", self.number, realm, password)


def own_extension(user, tenant) -> Extension | None:
    """The extension ``user`` signs in as in ``tenant`` (run in its schema); None: it has none,
    or it is no user of that tenant (a provider-side admin who switched in)."""
    if (
        not getattr(user, "is_authenticated", False)
        or getattr(user, "tenant_id", None) != tenant.pk
    ):
        return None
    return Extension.objects.filter(user_id=user.pk).first()


class SpeedDial(models.Model):
    """One speed dial of an extension: dialling ``code`` ("2".."9": speed dial 8; "00".."99":
    speed dial 100) calls ``number`` (an extension, an outside number or a feature code).
    Written by ``telephony.desk`` (the API, the portal and the phone's ``*74``/``*75``)."""

    extension = models.ForeignKey(Extension, on_delete=models.CASCADE, related_name="speed_dials")
    code = models.CharField(max_length=2)
    number = models.CharField(max_length=32)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["extension_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["extension", "code"], name="speed_dial_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.extension_id}: {self.code} -> {self.number}"


class ImportJob(models.Model):
    """One bulk import (a CSV file of one ``kind``): its dry-run report, then its run's progress.

    The uploaded text is kept in ``payload`` only between the dry run and the start of the real
    run (it may hold clear-text passwords): the run takes it and empties it in the same
    transaction that marks the job running, and a job checked but never started loses it after
    ``PBX_IMPORT_PAYLOAD_TTL_MINUTES`` (``expired``). The per-row report stays for the admin.
    """

    class Status(models.TextChoices):
        INVALID = "invalid", "Has errors"
        VALIDATED = "validated", "Ready to import"
        PENDING = "pending", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (never started)"

    # A UUID, not a counter: job URLs are not guessable and cache keys for progress stay unique
    # across databases that share one Redis (test workers, staging).
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32)
    filename = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVALID)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    payload = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.filename or self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.EXPIRED)

    @property
    def errors(self) -> list[dict]:
        return self.report.get("errors", [])


class CallDirection(models.TextChoices):
    INTERNAL = "internal", "Internal"
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    ANSWERED = "answered", "Answered"
    NO_ANSWER = "no_answer", "No answer"
    BUSY = "busy", "Busy"
    CANCELLED = "cancelled", "Cancelled"
    UNAVAILABLE = "unavailable", "Unavailable"
    FAILED = "failed", "Failed"


class Cdr(models.Model):
    """One call detail record per call, as PortSIP keeps it: the call as the caller saw it,
    with every part of it (the first ringing, each transfer) in :class:`CdrSegment` rows.

    Written only by the CDR consumer (``telephony.engine.cdr``) from the engine's event stream,
    keyed by the engine's ``call_id`` so a re-delivered event never makes a second record.
    """

    call_id = models.CharField(max_length=128, unique=True)
    direction = models.CharField(
        max_length=16, choices=CallDirection.choices, default=CallDirection.INTERNAL
    )
    caller_number = models.CharField(max_length=64, blank=True)
    caller_name = models.CharField(max_length=120, blank=True)
    callee_number = models.CharField(max_length=64, blank=True)
    # An outside call's facts (``contract.CDR_FIELDS``): the trunk's id (trunks live in the
    # public schema), the DID called in, the number as dialled, the outside number in E.164
    # and the caller ID the far end was shown.
    trunk = models.PositiveIntegerField(null=True, blank=True)
    did = models.CharField(max_length=32, blank=True)
    dialled = models.CharField(max_length=64, blank=True)
    number = models.CharField(max_length=32, blank=True)
    presented = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=CallStatus.choices, default=CallStatus.IN_PROGRESS
    )
    end_reason = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(default=0)  # seconds, start to end
    billsec = models.PositiveIntegerField(default=0)  # seconds, answer to end
    # What the call cost the tenant (its sell rate; billing.charging writes it with the charge)
    # and what the carrier charges for it (the trunk's buy rate), in ``currency``; the rate's
    # prefix. None: not rated (not an outside call, or no rate covers the number).
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    buy_cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    rate_prefix = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="cdr_started_idx"),
            models.Index(fields=["caller_number"], name="cdr_caller_idx"),
            models.Index(fields=["callee_number"], name="cdr_callee_idx"),
            models.Index(fields=["trunk", "-started_at"], name="cdr_trunk_idx"),
            models.Index(fields=["did", "-started_at"], name="cdr_did_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.caller_number} -> {self.callee_number} ({self.status})"

    @property
    def end_reason_text(self) -> str:
        """How the call ended, in words (the engine records terse reasons and SIP codes)."""
        return end_reason_text(self.end_reason)


#: The engine's end reasons (telephony.sip.calls) and the SIP codes it records, in words.
END_REASONS = {
    "bye caller": "the caller hung up",
    "bye callee": "the called party hung up",
    "caller cancelled": "the caller hung up before the answer",
    "cancelled": "the ringing was stopped",
    "no answer": "nobody answered in time",
    "api hangup": "an administrator ended it",
    "shutdown": "the phone system was restarting",
    "attended transfer": "it was transferred",
    "credit": "the account ran out of credit",
    "400": "the request was malformed",
    "402": "the account has no credit left",
    "403": "the call was not allowed",
    "404": "the number does not exist",
    "408": "nobody answered in time",
    "410": "the number is no longer in use",
    "480": "the phone is not reachable (not registered or offline)",
    "484": "the number is incomplete",
    "486": "the line was busy",
    "487": "the ringing was stopped",
    "488": "the phones have no audio format in common",
    "500": "an error in the phone system",
    "503": "the phone system was busy or unavailable",
    "600": "the line was busy",
    "603": "the call was declined",
}


def end_reason_text(reason: str) -> str:
    return END_REASONS.get(reason, reason.replace("_", " "))


class CdrSegment(models.Model):
    """One part of a call: who talked to whom, from when to when (``seq`` 1 is the original
    call; a transfer opens the next one)."""

    cdr = models.ForeignKey(Cdr, on_delete=models.CASCADE, related_name="segments")
    seq = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, default="call")  # call, blind, attended
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=CallStatus.choices, default=CallStatus.IN_PROGRESS
    )
    started_at = models.DateTimeField(default=timezone.now)
    ringing_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    legs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["cdr_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["cdr", "seq"], name="cdr_segment_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.cdr_id}#{self.seq} {self.from_number} -> {self.to_number}"


class FeatureCode(models.Model):
    """A tenant's own code for a feature (``contract.Feature``), or the feature switched off.
    A feature without a row has its default (``contract.FEATURE_DEFAULTS``); the effective
    codes are ``telephony.features.codes()``."""

    feature = models.CharField(max_length=32, unique=True)
    code = models.CharField(max_length=8)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["feature"]

    def __str__(self) -> str:
        return f"{self.feature} {self.code}"


# ------------------------------------------------------------------------- team features


class RingStrategy(models.TextChoices):
    """How a ring group rings its members (``contract.RingStrategy``)."""

    RING_ALL = "ring_all", "All at once"
    HUNT = "hunt", "One after the other, in order"
    ROUND_ROBIN = "round_robin", "One after the other, taking turns"
    LONGEST_IDLE = "longest_idle", "The longest idle first"


class RingGroup(models.Model):
    """A number that rings several members (``contract.RingGroup``): its
    :class:`RingGroupMember` rows in order, each for ``member_seconds`` when they ring one after
    the other, the group for ``total_seconds`` at most; nobody answers: ``overflow``
    (``{"kind", "target"}`` like an inbound rule's, None: the caller hears "unavailable")."""

    number = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    strategy = models.CharField(
        max_length=16, choices=RingStrategy.choices, default=RingStrategy.RING_ALL
    )
    member_seconds = models.PositiveSmallIntegerField(default=20)
    total_seconds = models.PositiveSmallIntegerField(default=60)
    skip_busy = models.BooleanField(default=True)
    # Put before the caller's name on the members' phones ("Sales: Alice").
    caller_id_prefix = models.CharField(max_length=16, blank=True)
    overflow = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class RingGroupMember(models.Model):
    """One member of a ring group at ``position`` (0 first): an extension, or (no extension)
    an outside ``number`` in E.164 dialled through the tenant's outbound rules. A deleted
    extension leaves its groups with it (the row cascades)."""

    group = models.ForeignKey(RingGroup, on_delete=models.CASCADE, related_name="members")
    position = models.PositiveSmallIntegerField()
    extension = models.ForeignKey(
        Extension,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ring_group_members",
    )
    number = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["group_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["group", "position"], name="ring_member_position"),
        ]

    def __str__(self) -> str:
        return self.extension.number if self.extension is not None else self.number


class PagingGroup(models.Model):
    """A number that calls every member's phones with auto-answer (``contract.PagingGroup``):
    a one-way page, or with ``duplex`` an intercom conversation."""

    number = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    duplex = models.BooleanField(default=False)
    members = models.ManyToManyField(Extension, blank=True, related_name="paging_groups")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class PickupGroup(models.Model):
    """Extensions that may answer each other's ringing calls with the group pickup code; an
    extension may be in several (``ExtensionSnapshot.pickup_groups``: these ids)."""

    name = models.CharField(max_length=120, unique=True)
    members = models.ManyToManyField(Extension, blank=True, related_name="pickup_groups")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserGroup(models.Model):
    """A named set of the tenant's extensions (PortSIP's user groups): a department shown as
    one list (a phone's BLF keys, the directory), and a unit that rules and permissions can
    name. An extension may be in any number of groups; deleting it leaves them all."""

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(Extension, related_name="user_groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ParkSettings(models.Model):
    """Call park (``contract.ParkSettings``): ``count`` slots numbered from ``first``; a call
    parked longer than ``timeout`` seconds rings its parker again. At most one row per tenant
    (``ParkSettings.load()``); until the first change it has none and the defaults apply."""

    first = models.PositiveIntegerField(default=701)
    count = models.PositiveSmallIntegerField(default=10)
    timeout = models.PositiveSmallIntegerField(default=120)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "park settings"
        verbose_name_plural = "park settings"

    def __str__(self) -> str:
        return f"Park slots {self.first}-{self.first + self.count - 1}"

    @classmethod
    def load(cls) -> "ParkSettings":
        """The tenant's settings; unsaved defaults while it has none (a read never writes)."""
        found = cls.objects.order_by("pk").first()
        return found if found is not None else cls()

    def slots(self) -> range:
        return range(self.first, self.first + self.count)

    def snapshot(self):
        """As the engine reads it (``contract.ParkSettings``)."""
        from telephony.sip.contract import ParkSettings as Park

        return Park(first=self.first, count=self.count, timeout=float(self.timeout))
