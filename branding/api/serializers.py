from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from branding.effective import public_fields
from branding.images import image_problem
from branding.models import TEXT_FIELDS, Brand


def _validate_image(upload, use: str):
    if upload is None:
        return upload
    problem = image_problem(upload, use)
    if problem:
        raise serializers.ValidationError(problem)
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
        return _validate_image(value, "logo")

    def validate_favicon(self, value):
        return _validate_image(value, "favicon")

    def validate(self, attrs):
        if self.instance is not None and "dealer_id" in attrs:
            raise serializers.ValidationError({"dealer_id": ["a brand keeps its owner"]})
        for name in ("logo", "favicon"):
            if name in attrs and attrs[name] is None:
                attrs[name] = ""  # cleared: an empty FileField
        return attrs


OWN_FIELDS = TEXT_FIELDS

#: What a tenant shows where its own brand leaves a field blank: every text field, as text.
InheritedBrandSerializer = type(
    "InheritedBrandSerializer",
    (serializers.Serializer,),
    {name: serializers.CharField() for name in TEXT_FIELDS},
)


class TenantBrandSerializer(serializers.ModelSerializer):
    """The host tenant's own brand: each field blank is inherited from its dealer's chain
    (``inherited`` shows those values). ``logo``/``favicon``: an upload, or null to remove it."""

    logo = serializers.FileField(required=False, allow_null=True, write_only=True)
    favicon = serializers.FileField(required=False, allow_null=True, write_only=True)
    has_logo_upload = serializers.SerializerMethodField()
    has_favicon_upload = serializers.SerializerMethodField()
    inherited = serializers.SerializerMethodField()

    class Meta:
        model = Brand
        fields = (
            *OWN_FIELDS,
            "logo",
            "has_logo_upload",
            "favicon",
            "has_favicon_upload",
            "inherited",
            "updated_at",
        )
        read_only_fields = ("updated_at",)

    def get_has_logo_upload(self, obj) -> bool:
        return bool(obj.logo)

    def get_has_favicon_upload(self, obj) -> bool:
        return bool(obj.favicon)

    @staticmethod
    def inherited_values(brand) -> dict:
        data = {name: getattr(brand, name) or "" for name in OWN_FIELDS}
        for kind in ("logo", "favicon"):
            data[f"{kind}_url"] = public_fields(brand)[f"{kind}_url"]
        return data

    @extend_schema_field(InheritedBrandSerializer)
    def get_inherited(self, obj) -> dict:
        return self.inherited_values(self.context["inherited"])

    def validate_logo(self, value):
        return _validate_image(value, "logo")

    def validate_favicon(self, value):
        return _validate_image(value, "favicon")

    def validate(self, attrs):
        for name in ("logo", "favicon"):
            if name in attrs and attrs[name] is None:
                attrs[name] = ""  # removed: an empty FileField
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
