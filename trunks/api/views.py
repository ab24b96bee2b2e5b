"""Trunks and the DID pool, on two hosts.

- On the provider's host (system admins; dealer admins within their subtree, ``trunks.access``):
  ``/trunks/`` every trunk they manage, with its live state, created, changed and deleted
  through ``trunks.actions``; ``/trunks/states/`` the live states alone; ``/numbers/`` the DID
  pool: added one by one or as ranges, assigned to a tenant and released, changed, deleted.
- On a tenant's host (``routing.view`` / ``routing.manage``): ``/trunks/`` the trunks the
  tenant may use — its own in full, shared ones without any account detail — and only its own
  may be added, changed or deleted; ``/numbers/`` the numbers assigned to it, read-only.

Another tenant's or dealer's trunk or number is 404 on both hosts.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from dealers.access import dealers_visible_to
from pbx.api.filters import IdFilter
from pbx.api.permissions import PlatformAdmin, TenantPermission
from pbx.api.viewsets import BaseViewSet, scoped
from pbx.errors import Forbidden, ValidationFailed
from telephony.engine.carriers import trunk_states
from tenants.access import tenants_visible_to
from tenants.choices import Permission, Role
from trunks import actions
from trunks.access import numbers_managed_by, trunks_managed_by, usable_trunks
from trunks.models import DidNumber, Trunk, TrunkKind

from .serializers import (
    NumberAddSerializer,
    NumberAssignSerializer,
    NumbersAddedSerializer,
    NumberSerializer,
    TenantNumberSerializer,
    TenantTrunkSerializer,
    TrunkSerializer,
    TrunkStateRowSerializer,
)


class HostSides:
    """One resource on two hosts: the provider's side for platform admins on the provider's
    host, the tenant's side (``permission_codes``) on a tenant's host."""

    permission_codes = (Permission.ROUTING_VIEW, Permission.ROUTING_MANAGE)

    @property
    def host_tenant(self):
        request = getattr(self, "request", None)
        tenant = getattr(getattr(request, "_request", None), "tenant", None)
        return tenant if tenant is not None and not tenant.is_public else None

    def get_permissions(self):
        return [TenantPermission()] if self.host_tenant is not None else [PlatformAdmin()]


# ---------------------------------------------------------------------------------- trunks


class TrunkFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=TrunkKind.choices)
    enabled = django_filters.BooleanFilter()
    owner = django_filters.ChoiceFilter(
        choices=[("provider", "Provider"), ("dealer", "Dealer"), ("tenant", "Tenant")],
        method="filter_owner",
    )
    tenant = IdFilter(field_name="tenant_id", label="Owned by this tenant")
    dealer = IdFilter(field_name="dealer_id", label="Owned by this dealer")
    shared_with = IdFilter(field_name="shared_with", label="Shared with this tenant")

    class Meta:
        model = Trunk
        fields = ("kind", "enabled", "owner", "tenant", "dealer", "shared_with")

    def filter_owner(self, queryset, name, value):
        if value == "tenant":
            return queryset.filter(tenant__isnull=False)
        if value == "dealer":
            return queryset.filter(dealer__isnull=False)
        return queryset.filter(tenant__isnull=True, dealer__isnull=True)


class TrunkViewSet(HostSides, mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """SIP trunks with their live state. The password is write-only (``has_password``)."""

    serializer_class = TrunkSerializer
    filterset_class = TrunkFilter
    ordering_fields = ("name", "created_at", "id")
    ordering = ("name", "id")
    queryset = Trunk.objects.none()

    @property
    def search_fields(self):
        # A tenant may not probe a shared trunk's host by searching for it.
        return ("name",) if self.host_tenant is not None else ("name", "host")

    def get_queryset(self):
        tenant = self.host_tenant
        if tenant is not None:
            qs = usable_trunks(tenant)
        else:
            qs = trunks_managed_by(self.request.user).prefetch_related("shared_with")
        return qs.order_by("name", "id")

    def get_serializer_class(self):
        return TenantTrunkSerializer if self.host_tenant is not None else TrunkSerializer

    def _serialize(self, trunks, *, many: bool = False):
        rows = list(trunks) if many else [trunks]
        context = {
            **self.get_serializer_context(),
            "tenant": self.host_tenant,
            "states": trunk_states(t.pk for t in rows),
        }
        return self.get_serializer_class()(trunks, many=many, context=context).data

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._serialize(page, many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._serialize(self.get_object()))

    def _fresh(self, trunk):
        return self.get_queryset().get(pk=trunk.pk)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        password = data.pop("password", None)
        tenant_id, dealer_id = data.pop("tenant_id", None), data.pop("dealer_id", None)
        shared_ids = data.pop("shared_with", None) or []
        if self.host_tenant is not None:
            trunk = actions.do_create_trunk(
                actor=self.actor, fields=data, password=password, tenant=self.host_tenant
            )
        else:
            owner, dealer = self._owner(tenant_id, dealer_id)
            trunk = actions.do_create_trunk(
                actor=self.actor,
                fields=data,
                password=password,
                tenant=owner,
                dealer=dealer,
                shared_with=self._tenants(shared_ids),
            )
        return Response(self._serialize(self._fresh(trunk)), status=status.HTTP_201_CREATED)

    def _owner(self, tenant_id, dealer_id):
        user = self.request.user
        if tenant_id is not None and dealer_id is not None:
            raise ValidationFailed(
                "A trunk has one owner.", fields={"dealer_id": ["a tenant's trunk has no dealer"]}
            )
        tenant = scoped(tenants_visible_to(user), tenant_id, "tenant_id", "tenant")
        dealer = scoped(dealers_visible_to(user), dealer_id, "dealer_id", "dealer")
        if tenant is None and dealer is None and user.role == Role.DEALER_ADMIN:
            dealer = user.dealer  # a dealer admin's trunks are its dealer's, not the provider's
        return tenant, dealer

    def _tenants(self, ids):
        found = list(tenants_visible_to(self.request.user).filter(pk__in=ids))
        missing = sorted(set(ids) - {t.pk for t in found})
        if missing:
            raise ValidationFailed(
                "Unknown tenants.",
                fields={"shared_with": [f"unknown tenants: {', '.join(map(str, missing[:5]))}"]},
            )
        return found

    def _own(self, trunk) -> None:
        tenant = self.host_tenant
        if tenant is not None and trunk.tenant_id != tenant.pk:
            raise Forbidden("A shared trunk is managed by your provider.")

    def partial_update(self, request, pk=None):
        trunk = self.get_object()
        self._own(trunk)
        ser = self.get_serializer(trunk, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        password = data.pop("password", None)
        shared_ids = data.pop("shared_with", None)
        shared = None
        if shared_ids is not None and self.host_tenant is None:
            shared = self._tenants(shared_ids)
        trunk = actions.do_update_trunk(
            trunk, actor=self.actor, fields=data, password=password, shared_with=shared
        )
        return Response(self._serialize(self._fresh(trunk)))

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        trunk = self.get_object()
        self._own(trunk)
        actions.do_delete_trunk(trunk, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: TrunkStateRowSerializer(many=True)})
    @action(detail=False, methods=["get"])
    def states(self, request):
        """The live state of each trunk (as ``state`` in a trunk's body), without the rest."""
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        states = trunk_states(t.pk for t in page)
        items = []
        for trunk in page:
            row = {"id": trunk.pk, "name": trunk.name, **states.get(trunk.pk, {})}
            items.append(TrunkStateRowSerializer(row).data)
        return self.get_paginated_response(items)


# --------------------------------------------------------------------------------- numbers


class NumberFilter(django_filters.FilterSet):
    free = django_filters.BooleanFilter(
        field_name="tenant", lookup_expr="isnull", label="Free (not assigned to a tenant)"
    )
    tenant = IdFilter(field_name="tenant_id", label="Assigned to this tenant")
    dealer = IdFilter(field_name="dealer_id", label="Held by this dealer")
    trunk = IdFilter(field_name="trunk_id", label="Arriving on this trunk")

    class Meta:
        model = DidNumber
        fields = ("free", "tenant", "dealer", "trunk")


class NumberViewSet(HostSides, mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """The DID pool (provider's host) or the host tenant's numbers (a tenant's host)."""

    serializer_class = NumberSerializer
    search_fields = ("number", "description")
    ordering_fields = ("number", "assigned_at", "id")
    ordering = ("number",)
    queryset = DidNumber.objects.none()

    @property
    def filterset_class(self):
        return None if self.host_tenant is not None else NumberFilter

    def get_queryset(self):
        tenant = self.host_tenant
        if tenant is not None:
            return DidNumber.objects.filter(tenant=tenant).order_by("number")
        return numbers_managed_by(self.request.user).order_by("number")

    def get_serializer_class(self):
        return TenantNumberSerializer if self.host_tenant is not None else NumberSerializer

    def _provider_only(self) -> None:
        if self.host_tenant is not None:
            raise Forbidden("Numbers are added and assigned by your provider.")

    def _dealer(self, dealer_id, *, given: bool):
        user: Any = self.request.user
        if user.role == Role.DEALER_ADMIN and given and dealer_id is None:
            raise ValidationFailed(
                "Your numbers stay with a dealer.", fields={"dealer_id": ["a dealer is required"]}
            )
        dealer = scoped(dealers_visible_to(user), dealer_id, "dealer_id", "dealer")
        if dealer is None and not given and user.role == Role.DEALER_ADMIN:
            dealer = user.dealer
        return dealer

    def _trunk(self, trunk_id):
        return scoped(trunks_managed_by(self.request.user), trunk_id, "trunk_id", "trunk")

    @extend_schema(request=NumberAddSerializer, responses={201: NumbersAddedSerializer})
    def create(self, request):
        """Add a number, or the range ``number``..``last``; 409 when any is in the pool."""
        self._provider_only()
        ser = NumberAddSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        user = request.user
        created = actions.do_add_numbers(
            actor=self.actor,
            number=data["number"],
            last=data.get("last") or None,
            country=data.get("country") or "",
            dealer=self._dealer(data.get("dealer_id"), given="dealer_id" in data),
            tenant=scoped(tenants_visible_to(user), data.get("tenant_id"), "tenant_id", "tenant"),
            trunk=self._trunk(data.get("trunk_id")),
            description=data.get("description") or "",
        )
        items = NumberSerializer(created, many=True).data
        return Response({"total": len(items), "items": items}, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        """Change a number's description, trunk or holding dealer."""
        number = self.get_object()
        self._provider_only()
        ser = NumberSerializer(number, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        fields = {}
        if "description" in data:
            fields["description"] = data["description"]
        if "trunk_id" in data:
            fields["trunk"] = self._trunk(data["trunk_id"])
        if "dealer_id" in data:
            fields["dealer"] = self._dealer(data["dealer_id"], given=True)
        number = actions.do_update_number(number, actor=self.actor, fields=fields)
        return Response(NumberSerializer(number).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        number = self.get_object()
        self._provider_only()
        actions.do_delete_number(number, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=NumberAssignSerializer, responses={200: NumberSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Give the number to a tenant; 409 while another tenant holds it."""
        number = self.get_object()
        self._provider_only()
        ser = NumberAssignSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        tenant = scoped(
            tenants_visible_to(request.user), ser.validated_data["tenant_id"], "tenant_id", "tenant"
        )
        number = actions.do_assign_number(number, tenant, actor=self.actor)
        return Response(NumberSerializer(number).data)

    @extend_schema(request=None, responses={200: NumberSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Take the number back into the pool."""
        number = self.get_object()
        self._provider_only()
        number = actions.do_release_number(number, actor=self.actor)
        return Response(NumberSerializer(number).data)
