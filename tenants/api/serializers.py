from rest_framework import serializers

from dealers.models import Dealer
from pbx.api.serializers import ActionJudgesValues
from pbx.models import AuditEntry
from tenants.choices import Permission, Role
from tenants.fields import CAPABILITY_FIELDS, COMPANY_FIELDS, TENANT_SETTINGS_FIELDS
from tenants.models import Tenant, TenantCertificate, TenantRole, User


class FirstAdminSerializer(serializers.Serializer):
    """The tenant's first admin: invited by e-mail to set a password (none is sent here)."""

    email = serializers.EmailField()
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class TenantSerializer(ActionJudgesValues, serializers.ModelSerializer):
    judged_by_action = ("name",)  # one line, 120 characters: tenants.actions
    web_host = serializers.CharField(required=False, max_length=253)
    admin = FirstAdminSerializer(required=False, write_only=True)
    dealer = serializers.PrimaryKeyRelatedField[Dealer](read_only=True)
    dealer_id = serializers.IntegerField(required=False, allow_null=True, write_only=True)

    class Meta:
        model = Tenant
        fields = (
            "id",
            *TENANT_SETTINGS_FIELDS,
            "slug",
            "sip_domain",
            "web_host",
            "status",
            "dealer",
            "dealer_id",
            "admin",
            *CAPABILITY_FIELDS,
            "created_at",
            "suspended_at",
        )
        read_only_fields = ("status", "created_at", "suspended_at")
        # The identifier and host name rules, and uniqueness (409 with the clashing fields),
        # are the action's to decide (tenants.validators), not repeated here.
        extra_kwargs = {
            "sip_domain": {"required": True, "allow_null": False, "validators": []},
            "slug": {"validators": []},
        }

    def to_representation(self, instance):
        data = super().to_representation(instance)
        domains = [d for d in instance.domains.all() if d.is_primary]
        data["web_host"] = domains[0].domain if domains else None
        return data

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:  # the identifier (schema name) is fixed once created
            for name in ("slug", "dealer_id", "admin"):
                fields[name].read_only = True
        return fields


class CompanySerializer(serializers.ModelSerializer):
    """The host tenant's own settings; what its dealer set (quotas, capabilities) is read-only."""

    web_host = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = (
            *COMPANY_FIELDS,
            "slug",
            "sip_domain",
            "web_host",
            "currency",
            *CAPABILITY_FIELDS,
        )
        read_only_fields = tuple(f for f in fields if f not in COMPANY_FIELDS)

    def get_web_host(self, tenant) -> str | None:
        domain = tenant.domains.filter(is_primary=True).first()
        return domain.domain if domain else None


class TenantDeleteSerializer(serializers.Serializer):
    confirm = serializers.CharField(required=False, default="", allow_blank=True)


class UserSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, required=False, trim_whitespace=False)
    role = serializers.ChoiceField(
        choices=[Role.TENANT_ADMIN, Role.TENANT_USER], default=Role.TENANT_USER
    )
    custom_role = serializers.PrimaryKeyRelatedField(
        queryset=TenantRole.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "full_name",
            "role",
            "custom_role",
            "is_active",
            "password",
            "date_joined",
            "last_login",
        )
        read_only_fields = ("date_joined", "last_login")

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        tenant = getattr(getattr(request, "_request", None), "tenant", None)
        fields["custom_role"].queryset = TenantRole.objects.filter(tenant=tenant)
        return fields


class PlatformUserSerializer(serializers.ModelSerializer):
    """The provider's own staff: system admins and dealer admins. Without a password the new
    user is invited by e-mail to choose one."""

    password = serializers.CharField(write_only=True, required=False, trim_whitespace=False)
    role = serializers.ChoiceField(choices=[Role.SYSTEM_ADMIN, Role.DEALER_ADMIN])
    dealer = serializers.PrimaryKeyRelatedField[Dealer](read_only=True)
    dealer_id = serializers.IntegerField(required=False, allow_null=True, write_only=True)

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "full_name",
            "role",
            "dealer",
            "dealer_id",
            "is_active",
            "password",
            "date_joined",
            "last_login",
        )
        read_only_fields = ("date_joined", "last_login")

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:  # moving a user between scopes is not an edit
            for name in ("role", "dealer_id"):
                fields[name].read_only = True
        return fields


class RoleSerializer(serializers.ModelSerializer):
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=Permission.choices), allow_empty=True
    )

    class Meta:
        model = TenantRole
        fields = ("id", "name", "description", "permissions")


class AuditEntrySerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField[Tenant](read_only=True)
    dealer = serializers.PrimaryKeyRelatedField[Dealer](read_only=True)

    class Meta:
        model = AuditEntry
        fields = (
            "id",
            "at",
            "actor_label",
            "address",
            "tenant",
            "dealer",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
        )
        read_only_fields = fields


class SignInSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=256)
    otp = serializers.CharField(required=False, allow_blank=True, max_length=16)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class MeSerializer(serializers.ModelSerializer):
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("id", "email", "full_name", "role", "tenant", "dealer", "permissions")

    def get_permissions(self, user) -> list[str]:
        from tenants.access import tenant_permissions

        request = self.context["request"]
        tenant = getattr(request._request, "tenant", None)
        return sorted(tenant_permissions(user, tenant) or ())


class CertificateSerializer(serializers.ModelSerializer):
    """A tenant's TLS certificate as shown (never its key); written as ``chain`` and ``key``
    PEM text, checked by ``tenants.actions.do_upload_certificate``."""

    chain = serializers.CharField(write_only=True, trim_whitespace=False, max_length=70_000)
    key = serializers.CharField(write_only=True, trim_whitespace=False, max_length=20_000)
    chain_pem = serializers.CharField(read_only=True)
    hosts = serializers.SerializerMethodField()
    days_left = serializers.IntegerField(read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by_label", read_only=True)

    class Meta:
        model = TenantCertificate
        fields = (
            "id",
            "hosts",
            "names",
            "subject",
            "issuer",
            "key_type",
            "not_before",
            "not_after",
            "days_left",
            "fingerprint",
            "uploaded_by",
            "uploaded_at",
            "chain_pem",
            "chain",
            "key",
        )
        read_only_fields = (
            "names",
            "subject",
            "issuer",
            "key_type",
            "not_before",
            "not_after",
            "fingerprint",
            "uploaded_at",
        )

    def get_hosts(self, obj) -> list[str]:
        return sorted(row.host for row in obj.host_rows.all())
