"""Brands: what the portal, e-mails and SIP headers call the product, per dealer or tenant."""

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from .storage import brand_storage

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour such as #1f6feb.")
# A display name goes into a From: header and a SIP User-Agent: no control characters.
single_line_validator = RegexValidator(r"^[^\x00-\x1f\x7f]*$", "One line of text.")


def _asset_path(instance: "Brand", filename: str) -> str:
    # The owner is in the path and the name is ours: an upload can't choose where it lands.
    owner = instance.owner_key
    suffix = filename.rsplit(".", 1)[-1].lower()[:5] if "." in filename else "bin"
    return f"branding/{owner}/{timezone.now():%Y%m%d%H%M%S%f}.{suffix}"


class Brand(models.Model):
    """The look and names of the product: the platform's (no owner), one dealer's or one
    tenant's own (at most one owner: ``dealer`` or ``tenant``).

    A tenant shows its own brand over its dealer's, else the nearest ancestor dealer's that has
    one, else the platform's (see :mod:`branding.effective`); every field left blank is taken
    from further up the same chain. One model for the three owners: they carry the same fields,
    the same checks, uploads and cache, and one chain query reads them all.
    Written only by :mod:`branding.actions`.
    """

    dealer = models.OneToOneField(
        "dealers.Dealer", null=True, blank=True, on_delete=models.CASCADE, related_name="brand"
    )
    tenant = models.OneToOneField(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="own_brand",
    )
    # Blank: inherited (the platform's falls back to PBX_PRODUCT_NAME).
    product_name = models.CharField(max_length=80, blank=True, validators=[single_line_validator])
    company_name = models.CharField(max_length=120, blank=True, validators=[single_line_validator])
    website_url = models.URLField(blank=True)
    logo = models.FileField(upload_to=_asset_path, storage=brand_storage, blank=True)
    logo_url = models.URLField(blank=True)
    favicon = models.FileField(upload_to=_asset_path, storage=brand_storage, blank=True)
    favicon_url = models.URLField(blank=True)
    primary_color = models.CharField(max_length=7, blank=True, validators=[colour_validator])
    accent_color = models.CharField(max_length=7, blank=True, validators=[colour_validator])
    support_url = models.URLField(blank=True)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True, validators=[single_line_validator])
    email_from_name = models.CharField(
        max_length=80, blank=True, validators=[single_line_validator]
    )
    email_from_address = models.EmailField(blank=True)
    login_footer = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Not a field: a cached brand's content tag (branding.effective), which asset URLs carry.
    version: str = ""

    class Meta:
        ordering = ["id"]
        constraints = [
            # One brand per owner, and one platform brand: NULL owners are not distinct here.
            models.UniqueConstraint(
                fields=["dealer", "tenant"], name="brand_one_per_owner", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=models.Q(dealer__isnull=True) | models.Q(tenant__isnull=True),
                name="brand_one_owner_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.product_name or f"brand of the {self.owner_label}"

    @property
    def owner_label(self) -> str:
        if self.tenant_id:
            return f"tenant {self.tenant_id}"
        return f"dealer {self.dealer_id}" if self.dealer_id else "platform"

    @property
    def owner_key(self) -> str:
        if self.tenant_id:
            return f"tenant-{self.tenant_id}"
        return f"dealer-{self.dealer_id}" if self.dealer_id else "platform"


# Fields that are inherited one by one when a nearer brand leaves them blank.
INHERITED_FIELDS = (
    "product_name",
    "company_name",
    "website_url",
    "logo",
    "logo_url",
    "favicon",
    "favicon_url",
    "primary_color",
    "accent_color",
    "support_url",
    "support_email",
    "support_phone",
    "email_from_name",
    "email_from_address",
    "login_footer",
)
#: The uploads among them; the rest are texts (names, addresses, colours, URLs).
FILE_FIELDS = ("logo", "favicon")
TEXT_FIELDS = tuple(name for name in INHERITED_FIELDS if name not in FILE_FIELDS)
