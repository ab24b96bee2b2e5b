"""Sign-in, tenants, users, roles and the audit log."""

import contextlib
import logging

from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Manager, Prefetch, Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from pbx.api.authentication import check_token, check_user_scope
from pbx.api.permissions import Authenticated, PlatformAdmin, TenantPermission
from pbx.api.throttling import AddressRateThrottle, SignInRateThrottle
from pbx.api.viewsets import BaseViewSet, TenantScopedViewSet
from pbx.audit import Actor
from pbx.credentials import FAMILY_CLAIM, SESSION_CLAIM, issue_tokens, revoke_session
from pbx.errors import ErrorCode, NotFound, PbxError
from pbx.models import AuditEntry
from pbx.security import host_family
from tenants import actions, lockout
from tenants.access import dealer_subtree_q, tenant_users, tenants_visible_to
from tenants.auth import locked_for as sign_in_locked_for
from tenants.choices import Permission, Role, TenantStatus
from tenants.fields import COMPANY_FIELDS
from tenants.models import Domain, Tenant, TenantCertificate, TenantRole, User

from .serializers import (
    AuditEntrySerializer,
    CertificateSerializer,
    CompanySerializer,
    MeSerializer,
    PlatformUserSerializer,
    RefreshSerializer,
    RoleSerializer,
    SignInSerializer,
    TenantDeleteSerializer,
    TenantSerializer,
    TokenPairSerializer,
    UserSerializer,
)

log = logging.getLogger("pbx.auth")


class AccountLocked(exceptions.Throttled):
    """429 ``ACCOUNT_LOCKED`` with ``Retry-After``: too many wrong passwords for the account."""

    def __init__(self, wait: int):
        super().__init__(wait=wait)
        self.detail = {
            "code": ErrorDetail(ErrorCode.ACCOUNT_LOCKED),
            "message": ErrorDetail(lockout.message(wait)),
        }


def _auth_failed(message="Wrong e-mail or password.", code=ErrorCode.AUTHENTICATION_FAILED):
    error = PbxError(message, code=code)
    error.status = 401
    return error


class SignInView(APIView):
    """Exchange e-mail (or extension@domain) and password — plus a TOTP code when the account
    has one — for an access and a refresh token. Valid only on the caller's own host.

    Not idempotent by key: an anonymous caller has no key space, every sign-in is a new session,
    and a failed sign-in's writes (the lock-out's audit entry) must not be rolled back."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = (SignInRateThrottle, AddressRateThrottle)

    @extend_schema(request=SignInSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = SignInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            email=data.validated_data["email"],
            password=data.validated_data["password"],
        )
        if user is None:
            locked = sign_in_locked_for(request._request)
            if locked:
                raise AccountLocked(locked)
            raise _auth_failed()
        self._check_mfa(user, data.validated_data.get("otp") or "")
        tenant = getattr(request._request, "tenant", None)
        check_user_scope(user, tenant)
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        return Response(issue_tokens(user, host_family(tenant)))

    @staticmethod
    def _check_mfa(user, otp: str) -> None:
        from allauth.mfa.models import Authenticator
        from allauth.mfa.totp.internal.auth import TOTP

        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if totp is None:
            return
        if not otp:
            raise _auth_failed("A one-time code is required.", ErrorCode.MFA_REQUIRED)
        if not TOTP(totp).validate_code(otp):
            raise _auth_failed("The one-time code is wrong.", ErrorCode.MFA_REQUIRED)


class RefreshView(APIView):
    """A new access token (and a rotated refresh token) for a valid refresh token."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = (AddressRateThrottle,)

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer})
    def post(self, request):
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = getattr(request._request, "tenant", None)
        try:
            old = RefreshToken(data.validated_data["refresh"])
            check_token(old, tenant)  # its host family, and its sign-in session not signed out
            user = User.objects.filter(pk=old["user_id"], is_active=True).first()
            if user is None:
                raise _auth_failed("The account is disabled.")
            check_user_scope(user, tenant)
            _, spent_now = old.blacklist()
            if not spent_now:  # a concurrent refresh with the same token won
                raise _auth_failed("The refresh token is invalid or expired.")
        except TokenError as exc:
            raise _auth_failed("The refresh token is invalid or expired.") from exc
        except exceptions.AuthenticationFailed as exc:
            # This view has no authentication classes, so DRF would answer 403: keep it 401.
            detail = exc.detail if isinstance(exc.detail, dict) else {"message": exc.detail}
            raise _auth_failed(str(detail.get("message", "Not valid."))) from exc
        # Rotation keeps the sign-in session: signing out later revokes the new pair too.
        return Response(issue_tokens(user, old[FAMILY_CLAIM], session=old[SESSION_CLAIM]))


class SignOutView(APIView):
    """End the sign-in session of the access token used for this call: that access token, every
    other access token and every refresh token issued from the same sign-in (through refresh
    rotation) are refused from now on, on every host. A ``refresh`` token in the body (of the
    same user) is revoked with its own session too."""

    permission_classes = (Authenticated,)

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request):
        refresh = request.data.get("refresh") if hasattr(request.data, "get") else None
        if refresh:
            with contextlib.suppress(TokenError):
                token = RefreshToken(refresh)
                if str(token.get("user_id")) == str(request.user.pk):
                    token.blacklist()
                    revoke_session(token)
        if request.auth is not None and hasattr(request.auth, "get"):
            revoke_session(request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = (Authenticated,)

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        return Response(MeSerializer(request.user, context={"request": request}).data)


class TenantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """Tenants of the caller's scope: all for the system admin, the subtree for a dealer."""

    serializer_class = TenantSerializer
    permission_classes = (PlatformAdmin,)
    filterset_fields = ("status", "dealer")
    search_fields = ("name", "slug", "sip_domain")
    ordering_fields = ("name", "created_at", "id")
    ordering = ("name", "id")
    queryset = Tenant.objects.none()

    def get_queryset(self):
        return (
            tenants_visible_to(self.request.user)
            .select_related("dealer")
            .prefetch_related(Prefetch("domains", queryset=Domain.objects.order_by("id")))
            .order_by("name", "id")
        )

    def _dealer_for_create(self, dealer_id):
        user = self.request.user
        from dealers.access import dealers_visible_to

        if dealer_id is None:
            if user.role == Role.DEALER_ADMIN:
                return user.dealer
            return None
        dealer = dealers_visible_to(user).filter(pk=dealer_id).first()
        if dealer is None:
            raise PbxError("Unknown dealer.", fields={"dealer_id": ["unknown dealer"]})
        return dealer

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        dealer = self._dealer_for_create(data.pop("dealer_id", None))
        tenant = actions.do_create_tenant(
            dealer=dealer,
            actor=self.actor,
            invite_origin=(request.scheme, request.get_port()),
            **data,
        )
        tenant = self.get_queryset().get(pk=tenant.pk)
        return Response(self.get_serializer(tenant).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        tenant = self.get_object()
        ser = self.get_serializer(tenant, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        actions.do_update_tenant(tenant, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=tenant.pk)).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(request=None, responses={200: TenantSerializer})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        tenant = actions.do_set_tenant_status(
            self.get_object(), TenantStatus.SUSPENDED, actor=self.actor
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=tenant.pk)).data)

    @extend_schema(request=None, responses={200: TenantSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        tenant = actions.do_set_tenant_status(
            self.get_object(), TenantStatus.ACTIVE, actor=self.actor
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=tenant.pk)).data)

    @extend_schema(request=None, responses={200: TokenPairSerializer})
    @action(detail=True, methods=["post"])
    def token(self, request, pk=None):
        """A token pair valid on this tenant's host (and only there) for the calling system or
        dealer admin: the API's counterpart of the portal's "Manage" link. Tokens issued on
        the provider's host are not accepted on tenants' hosts."""
        tenant = self.get_object()
        actions.do_open_tenant_api(tenant, actor=self.actor)
        return Response(issue_tokens(request.user, host_family(tenant)))

    @extend_schema(request=TenantDeleteSerializer, responses={204: None})
    def destroy(self, request, pk=None):
        tenant = self.get_object()
        confirm = request.data.get("confirm") if hasattr(request.data, "get") else None
        confirm = confirm or request.query_params.get("confirm", "")
        actions.do_delete_tenant(tenant, confirm=confirm, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CompanyView(APIView):
    """The host tenant's company settings, for holders of ``tenant.settings``: name, time
    zone, language and extension number lengths. Quotas and capabilities are shown, not set."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)

    @extend_schema(responses={200: CompanySerializer})
    def get(self, request):
        return Response(CompanySerializer(request._request.tenant).data)

    @extend_schema(request=CompanySerializer, responses={200: CompanySerializer})
    def patch(self, request):
        tenant = request._request.tenant
        ser = CompanySerializer(tenant, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        # Fields the dealer sets are refused by the action, not silently dropped.
        fixed = {k: request.data[k] for k in request.data if k in CompanySerializer.Meta.fields}
        fixed = {k: v for k, v in fixed.items() if k not in COMPANY_FIELDS}
        tenant = actions.do_update_company(
            tenant, actor=Actor.from_request(request), **fixed, **ser.validated_data
        )
        return Response(CompanySerializer(tenant).data)


class _UserWritesMixin:
    """Writes shared by the tenant's users and the platform's users: through the actions; a
    user created without a password is invited by e-mail to choose one on this host."""

    search_fields = ("email", "full_name")
    ordering_fields = ("email", "full_name", "date_joined", "id")
    ordering = ("email", "id")
    queryset: QuerySet[User] | Manager[User] | None = User.objects.none()

    def _create(self, request, *, password, **fields):
        with transaction.atomic():
            user = actions.do_create_user(password=password, actor=self.actor, **fields)
            if password is None:
                actions.do_invite_user(
                    user, actor=self.actor, origin=(request.scheme, request.get_port())
                )
        return Response(self.get_serializer(user).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        user = self.get_object()
        ser = self.get_serializer(user, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        user = actions.do_update_user(user, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(user).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def perform_destroy(self, instance):
        actions.do_delete_user(instance, actor=self.actor)


class UserViewSet(
    _UserWritesMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """The host tenant's users (sign-in accounts). A user created without a password is
    invited by e-mail to choose one."""

    serializer_class = UserSerializer
    permission_codes = (Permission.USERS_VIEW, Permission.USERS_MANAGE)
    filterset_fields = ("role", "is_active", "custom_role")

    def get_queryset(self):
        return tenant_users(self.tenant).order_by("email", "id")

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        data.pop("is_active", None)
        # Without a password the user is invited by e-mail to choose one on this host.
        password = data.pop("password", None)
        return self._create(request, tenant=self.tenant, password=password, **data)


class PlatformUserViewSet(
    _UserWritesMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    BaseViewSet,
):
    """The platform's own users, on the provider's host: every system and dealer admin for a
    system admin; the dealer admins of its subtree for a dealer admin. Others' are 404."""

    serializer_class = PlatformUserSerializer
    permission_classes = (PlatformAdmin,)
    filterset_fields = ("role", "is_active", "dealer")

    def get_queryset(self):
        user = self.request.user
        qs = User.objects.filter(tenant=None).select_related("dealer").order_by("email", "id")
        if user.role == Role.SYSTEM_ADMIN:
            return qs.filter(role__in=[Role.SYSTEM_ADMIN, Role.DEALER_ADMIN])
        return qs.filter(Q(role=Role.DEALER_ADMIN) & dealer_subtree_q(user))

    def create(self, request):
        from dealers.access import dealers_visible_to

        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        data.pop("is_active", None)
        dealer_id = data.pop("dealer_id", None)
        caller = request.user
        if caller.role != Role.SYSTEM_ADMIN and data["role"] != Role.DEALER_ADMIN:
            raise PbxError("You may add dealer admins only.", fields={"role": ["not allowed"]})
        dealer = None
        if data["role"] == Role.DEALER_ADMIN:
            if dealer_id is None and caller.role == Role.DEALER_ADMIN:
                dealer_id = caller.dealer_id
            dealer = dealers_visible_to(caller).filter(pk=dealer_id).first()
            if dealer is None:
                raise PbxError("Unknown dealer.", fields={"dealer_id": ["unknown dealer"]})
        return self._create(request, dealer=dealer, password=data.pop("password", None), **data)


class RoleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Custom roles: named permission sets a tenant admin gives to users."""

    serializer_class = RoleSerializer
    permission_codes = (Permission.USERS_VIEW, Permission.ROLES_MANAGE)
    search_fields = ("name",)
    ordering_fields = ("name", "id")
    ordering = ("name", "id")
    queryset = TenantRole.objects.none()

    def get_queryset(self):
        return TenantRole.objects.filter(tenant=self.tenant).order_by("name", "id")

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        role = actions.do_create_role(self.tenant, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(role).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        role = self.get_object()
        ser = self.get_serializer(role, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        role = actions.do_update_role(role, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(role).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_role(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """The audit log of the caller's scope: a tenant's on its host (``audit.view``); on the
    provider's host, everything for the system admin and the subtree for a dealer."""

    serializer_class = AuditEntrySerializer
    filterset_fields = ("action", "object_type", "tenant", "dealer")
    search_fields = ("action", "object_repr", "actor_label")
    ordering_fields = ("at", "id")
    ordering = ("-at", "-id")
    queryset = AuditEntry.objects.none()

    def get_permissions(self):
        tenant = getattr(self.request._request, "tenant", None)
        if tenant is None or tenant.is_public:
            return [PlatformAdmin()]
        return [TenantPermission()]

    permission_codes = (Permission.AUDIT_VIEW, Permission.AUDIT_VIEW)

    def get_queryset(self):
        user = self.request.user
        tenant = getattr(self.request._request, "tenant", None)
        qs = AuditEntry.objects.order_by("-at", "-id")
        if tenant is not None and not tenant.is_public:
            return qs.filter(tenant=tenant)
        if user.role == Role.SYSTEM_ADMIN:
            return qs
        if user.role == Role.DEALER_ADMIN:
            return qs.filter(
                dealer_subtree_q(user, "tenant__dealer") | dealer_subtree_q(user, "dealer")
            )
        raise NotFound("Not found.")


class CertificateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The host's tenant's TLS certificates (served by SNI on SIP TLS and WSS): upload a chain
    and its key, read what is served where and until when, delete one."""

    serializer_class = CertificateSerializer
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)
    ordering_fields = ("uploaded_at", "not_after", "id")
    ordering = ("-uploaded_at", "-id")
    queryset = TenantCertificate.objects.none()

    def get_queryset(self):
        return (
            TenantCertificate.objects.filter(tenant=self.tenant)
            .select_related("uploaded_by")
            .prefetch_related("host_rows")
            .order_by("-uploaded_at", "-id")
        )

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        cert = actions.do_upload_certificate(
            self.tenant,
            chain=ser.validated_data["chain"],
            key=ser.validated_data["key"],
            actor=self.actor,
        )
        cert = self.get_queryset().get(pk=cert.pk)
        return Response(self.get_serializer(cert).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        actions.do_delete_certificate(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
