from django.conf import settings
from rest_framework import serializers

from branding.effective import public_fields
from branding.models import Brand

# Raster images only: an SVG served from the portal's own origin could carry script.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x00\x00\x01\x00", "ico"),
)


def image_kind(head: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _validate_image(upload):
    if upload is None:
        return upload
    limit = getattr(settings, "PBX_BRAND_ASSET_MAX_BYTES", 512 * 1024)
    if upload.size > limit:
        raise serializers.ValidationError(f"At most {limit // 1024} KiB.")
    head = upload.read(16)
    upload.seek(0)
    kind = image_kind(head)
    if kind is None:
        raise serializers.ValidationError("A PNG, JPEG, GIF, WebP or ICO image is required.")
    upload.name = f"upload.{kind}"
    return upload


class BrandSerializer(serializers.ModelSerializer):
    dealer_id = serializers.IntegerField(required=False, allow_null=True)
    owner = serializers.CharField(source="owner_label", read_only=True)
    logo = serializers.FileField(required=False, allow_null=True, write_only=True)
    favicon = serializers.FileField(required=False, allow_null=True, write_only=True)
    has_logo_upload = serializers.SerializerMethodField()
    has_favicon_upload = serializers.SerializerMethodField()

    class Meta:
        model = Brand
        fields = (
            "id",
            "dealer_id",
            "owner",
            "product_name",
            "company_name",
            "website_url",
            "logo",
            "logo_url",
            "has_logo_upload",
            "favicon",
            "favicon_url",
            "has_favicon_upload",
            "primary_color",
            "accent_color",
            "support_url",
            "support_email",
            "support_phone",
            "email_from_name",
            "email_from_address",
            "login_footer",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def get_has_logo_upload(self, obj) -> bool:
        return bool(obj.logo)

    def get_has_favicon_upload(self, obj) -> bool:
        return bool(obj.favicon)

    def validate_logo(self, value):
        return _validate_image(value)

    def validate_favicon(self, value):
        return _validate_image(value)

    def validate(self, attrs):
        if self.instance is not None and "dealer_id" in attrs:
            raise serializers.ValidationError({"dealer_id": ["a brand keeps its owner"]})
        for name in ("logo", "favicon"):
            if name in attrs and attrs[name] is None:
                attrs[name] = ""  # cleared: an empty FileField
        return attrs


class EffectiveBrandSerializer(serializers.Serializer):
    """The brand a host shows (public: the sign-in page needs it before anyone signs in)."""

    name = serializers.CharField()
    product_name = serializers.CharField()
    company_name = serializers.CharField()
    website_url = serializers.CharField()
    logo_url = serializers.CharField()
    favicon_url = serializers.CharField()
    primary_color = serializers.CharField()
    accent_color = serializers.CharField()
    support_url = serializers.CharField()
    support_email = serializers.CharField()
    support_phone = serializers.CharField()
    login_footer = serializers.CharField()

    @staticmethod
    def of(brand) -> dict:
        return public_fields(brand)
