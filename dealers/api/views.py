from rest_framework import mixins, status
from rest_framework.response import Response

from dealers import actions
from dealers.access import can_manage_dealer, dealers_visible_to
from dealers.api.serializers import DealerSerializer
from dealers.models import Dealer
from pbx.api.permissions import PlatformAdmin
from pbx.api.viewsets import BaseViewSet
from pbx.errors import Forbidden, PbxError
from tenants.choices import Role


class DealerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """Dealers and sub-dealers. A dealer admin sees its subtree and manages what lies below it."""

    serializer_class = DealerSerializer
    permission_classes = (PlatformAdmin,)
    filterset_fields = ("parent", "is_active")
    search_fields = ("name",)
    ordering_fields = ("name", "id", "created_at")
    ordering = ("name", "id")
    queryset = Dealer.objects.none()

    def get_queryset(self):
        return dealers_visible_to(self.request.user).select_related("parent").order_by("name", "id")

    def _check_manage(self, dealer):
        if not can_manage_dealer(self.request.user, dealer):
            raise Forbidden("A dealer is managed by its parent, not by itself.")

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        parent_id = data.pop("parent_id", None)
        user = request.user
        if parent_id is None:
            parent = user.dealer if user.role == Role.DEALER_ADMIN else None
        else:
            parent = self.get_queryset().filter(pk=parent_id).first()
            if parent is None:
                raise PbxError("Unknown parent dealer.", fields={"parent_id": ["unknown"]})
        dealer = actions.do_create_dealer(parent=parent, actor=self.actor, **data)
        return Response(self.get_serializer(dealer).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        dealer = self.get_object()
        self._check_manage(dealer)
        ser = self.get_serializer(dealer, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        dealer = actions.do_update_dealer(dealer, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(dealer).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        dealer = self.get_object()
        self._check_manage(dealer)
        actions.do_delete_dealer(dealer, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
