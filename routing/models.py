"""Where a tenant's outside calls go (tenant schema): inbound rules for its DID numbers, office
hours and holidays, the caller blacklist, outbound rules over trunks, emergency numbers, and
the tenant's routing settings. Field names are those of the contract's snapshot types
(``telephony.sip.contract.RoutingSnapshot`` and its rows); the engine gets them on commit.
Trunks are referred to by id (they live in the public schema, ``trunks.Trunk``).
"""

from django.db import models
from django.utils import timezone


class MatchKind(models.TextChoices):
    EXACT = "exact", "Exact number"
    RANGE = "range", "Number range"
    PATTERN = "pattern", "Pattern"


class BlockAction(models.TextChoices):
    BUSY = "busy", "Busy"
    REJECT = "reject", "Reject"
    HANGUP = "hangup", "Hang up"


def closed_week() -> list:
    return [[] for _ in range(7)]


class RoutingSettings(models.Model):
    """At most one row per tenant (``RoutingSettings.load()``); until the first change it has
    none and the defaults apply."""

    # Office hours: per weekday (Monday first) a list of [start, end] minutes after midnight,
    # in the tenant's time zone; ``hours_enabled`` False = always open.
    hours_enabled = models.BooleanField(default=False)
    weekly = models.JSONField(default=closed_week)
    privacy_code = models.CharField(max_length=8, default="*67")
    blocked_prefixes = models.JSONField(default=list, blank=True)
    allowed_countries = models.JSONField(default=list, blank=True)  # ISO codes; [] = all
    caller_id = models.CharField(max_length=32, blank=True)
    emergency_caller_id = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return "Routing settings"

    @classmethod
    def load(cls) -> "RoutingSettings":
        """The tenant's settings; unsaved defaults while it has none (a read never writes:
        ``routing.actions.do_update_settings`` saves the row)."""
        found = cls.objects.order_by("pk").first()
        return found if found is not None else cls()


class Holiday(models.Model):
    name = models.CharField(max_length=120)
    start = models.DateField()
    end = models.DateField()
    yearly = models.BooleanField(default=False)

    class Meta:
        ordering = ["start", "id"]

    def __str__(self) -> str:
        return self.name


class _Rule(models.Model):
    """What inbound and outbound rules share: a name, the order they are tried in (lowest
    priority first), a switch and when they were made."""

    name = models.CharField(max_length=120)
    priority = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name


class InboundRule(_Rule):
    """A called number (or range, or pattern), optionally a caller, to destinations. The
    destinations are ``{"kind": ..., "target": ...}`` (``contract.RouteTarget``)."""

    match = models.CharField(max_length=8, choices=MatchKind.choices, default=MatchKind.EXACT)
    number = models.CharField(max_length=64)
    number_end = models.CharField(max_length=20, blank=True)
    caller = models.CharField(max_length=64, blank=True)
    use_hours = models.BooleanField(default=True)
    in_hours = models.JSONField()
    out_of_hours = models.JSONField(null=True, blank=True)
    holiday = models.JSONField(null=True, blank=True)


class OutboundRule(_Rule):
    prefix = models.CharField(max_length=32, blank=True)
    pattern = models.CharField(max_length=64, blank=True)
    min_length = models.PositiveSmallIntegerField(default=0)
    max_length = models.PositiveSmallIntegerField(default=0)
    extensions = models.JSONField(default=list, blank=True)  # numbers; [] = every extension
    trunks = models.JSONField(default=list)  # trunk ids, in failover order
    strip = models.PositiveSmallIntegerField(default=0)
    prepend = models.CharField(max_length=16, blank=True)
    caller_id = models.CharField(max_length=32, blank=True)


class EmergencyNumber(models.Model):
    number = models.CharField(max_length=16, unique=True)
    trunks = models.JSONField(default=list, blank=True)  # [] = every trunk the tenant may use
    caller_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class BlacklistEntry(models.Model):
    number = models.CharField(max_length=32)
    prefix = models.BooleanField(default=False)
    action = models.CharField(max_length=8, choices=BlockAction.choices, default=BlockAction.BUSY)
    note = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number", "id"]
        verbose_name = "blacklist entry"
        verbose_name_plural = "blacklist"
        constraints = [models.UniqueConstraint(fields=["number", "prefix"], name="blacklist_once")]

    def __str__(self) -> str:
        return self.number


class IvrMenu(models.Model):
    """A virtual receptionist (``contract.IvrMenu``): reached at ``number`` like an extension
    (an inbound rule, another menu's key or a phone dialling it), it plays ``greeting`` and
    takes a key (its :class:`IvrOption` rows) or, when ``dial_extension``, an extension's number.

    Prompts are stored by NAME (a default prompt of ``telephony.media.prompts.PROMPTS`` or one
    of the tenant's own); "" is the default for that place (welcome, invalid, closed). The
    snapshot turns names into files. Targets are ``{"kind": ..., "target": ...}``; None for
    ``timeout_target`` hangs up, for ``closed_target`` plays the menu after the closed greeting.
    """

    number = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    greeting = models.CharField(max_length=120, blank=True)
    invalid = models.CharField(max_length=120, blank=True)
    dial_extension = models.BooleanField(default=True)
    timeout = models.PositiveSmallIntegerField(default=5)  # seconds, 1..60
    tries = models.PositiveSmallIntegerField(default=3)  # 1..10
    timeout_target = models.JSONField(null=True, blank=True)
    use_hours = models.BooleanField(default=False)
    closed_greeting = models.CharField(max_length=120, blank=True)
    closed_target = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        verbose_name = "IVR menu"
        verbose_name_plural = "IVR menus"

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class IvrOption(models.Model):
    """A key of a menu (``0``-``9``, ``*``, ``#``) and where it leads."""

    menu = models.ForeignKey(IvrMenu, on_delete=models.CASCADE, related_name="options")
    digit = models.CharField(max_length=1)
    target = models.JSONField()

    class Meta:
        ordering = ["menu_id", "digit"]
        verbose_name = "IVR option"
        constraints = [
            models.UniqueConstraint(fields=["menu", "digit"], name="ivr_option_digit_once")
        ]

    def __str__(self) -> str:
        return f"{self.digit}: {self.target}"


class Disa(models.Model):
    """Direct inward system access (``contract.Disa``): a caller reaching it (an inbound rule
    or an IVR key, ``{"kind": "disa", "target": "<id>"}``) who knows the PIN may dial a number,
    called as if ``extension`` had dialled it (its outbound rules, call barring and caller ID).

    The PIN is kept only as ``contract.pin_hash`` (never shown again); an entry without one
    never opens. An extension named here is not deleted (the action says so first)."""

    name = models.CharField(max_length=120)
    pin_hash = models.CharField(max_length=200, blank=True)
    extension = models.ForeignKey(
        "telephony.Extension", on_delete=models.PROTECT, related_name="disa_entries"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "DISA entry"
        verbose_name_plural = "DISA entries"

    def __str__(self) -> str:
        return self.name
