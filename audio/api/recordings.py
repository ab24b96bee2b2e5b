"""Call recordings of the host tenant, and the recording control of its live calls.

- ``/recordings/``: newest first; filters ``call`` (call id), ``started_after`` /
  ``started_before``, ``extension`` (caller or callee), ``status``. Tenant admins
  (``extensions.view``, as for CDRs) see every recording, an end user only those of its own
  extension's calls; deleting (stored objects and row) needs ``extensions.manage``.
- ``/recordings/{id}/download/?format=wav|mp3``: after the permission check, a 302 to a
  short-lived signed URL (S3 presigned, Azure SAS), or the file streamed (local disk, or a
  recording still waiting for its upload).
- ``POST /calls/{call_id}/recording/`` ``{"action": "start|stop|pause|resume"}``: asks the
  engines (``contract.RecordCall`` on the control channel) to change a call's recording.
  The call must be in the tenant's live-call mirror: another tenant's call is 404.
"""

from __future__ import annotations

from types import SimpleNamespace

import django_filters
from django.db.models import Q
from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from audio import storage
from audio.access import own_extension_number
from audio.models import Recording, RecordingStatus
from audio.recording_access import recordings_for
from audio.recording_actions import do_delete_recording
from pbx import audit
from pbx.api.filters import UtcIsoDateTimeFilter
from pbx.api.pagination import CursorPagination
from pbx.api.permissions import TenantMember, host_permissions
from pbx.api.viewsets import TenantScopedViewSet
from pbx.audit import Actor
from telephony.engine.state import active_call, send_control
from telephony.sip.contract import RecordCall, RecordingAction
from tenants.choices import Permission

RECORDING_CODES = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
SIGNED_URL_SECONDS = 300


class RecordingPermission(BasePermission):
    """``extensions.view`` reads every recording; without it an end user with an extension
    reads those of its own calls. Deleting needs ``extensions.manage``."""

    def has_permission(self, request, view):
        held = host_permissions(request)
        if request.method in SAFE_METHODS:
            view.every = RECORDING_CODES[0] in held
            tenant = request._request.tenant
            return view.every or own_extension_number(request.user, tenant) is not None
        view.every = True
        return RECORDING_CODES[1] in held


class RecordingSerializer(serializers.ModelSerializer):
    cdr = serializers.IntegerField(source="cdr_id", read_only=True, allow_null=True)

    class Meta:
        model = Recording
        fields = (
            "id",
            "recording_id",
            "call_id",
            "cdr",
            "caller",
            "callee",
            "started_at",
            "seconds",
            "status",
            "size",
            "attempts",
            "error",
            "stored_at",
        )
        read_only_fields = fields


class RecordingFilter(django_filters.FilterSet):
    call = django_filters.CharFilter(field_name="call_id", label="Call id")
    extension = django_filters.CharFilter(method="filter_extension", label="Extension number")
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    status = django_filters.ChoiceFilter(choices=RecordingStatus.choices)

    class Meta:
        model = Recording
        fields = ("call", "extension", "started_after", "started_before", "status")

    def filter_extension(self, queryset, name, value):
        return queryset.filter(Q(caller=value) | Q(callee=value))


class FormatIsAParameter(DefaultContentNegotiation):
    """``?format=`` names the audio format here, not DRF's renderer override."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)  # type: ignore[assignment]  # the one key read


class RecordingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):  # fmt: skip
    """The tenant's call recordings, newest first."""

    permission_classes = (RecordingPermission,)  # type: ignore[assignment]  # own calls too
    content_negotiation_class = FormatIsAParameter
    queryset = Recording.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = RecordingSerializer
    pagination_class = CursorPagination.ordered_by("-started_at", "-id")
    filterset_class = RecordingFilter
    search_fields = ("caller", "callee", "call_id")
    ordering_fields: tuple[str, ...] = ()
    every = False

    def get_queryset(self):
        rows = recordings_for(self.request.user, self.tenant, every=self.every)
        return rows.order_by("-started_at", "-id")

    def destroy(self, request, pk=None):
        do_delete_recording(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=storage.FORMATS)],
        responses={
            (200, "audio/wav"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="A short-lived signed URL of the file"),
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The recording as WAV (stereo: caller left, callee right) or MP3."""
        rec = self.get_object()
        fmt = request.query_params.get("format", "wav")
        if fmt not in storage.FORMATS:
            raise exceptions.ValidationError({"format": [f"one of {', '.join(storage.FORMATS)}"]})
        if rec.status == RecordingStatus.FAILED:
            raise exceptions.NotFound(f"This recording could not be converted: {rec.error}")
        try:
            url = storage.signed_url(rec, fmt, SIGNED_URL_SECONDS)
            if url:
                return HttpResponseRedirect(url)
            stream = storage.open_recording(rec, fmt)
        except FileNotFoundError:
            raise exceptions.NotFound("The recording's file is not there (yet).") from None
        except storage.StorageError as exc:
            raise exceptions.NotFound(str(exc)) from None
        stamp = rec.started_at.strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            stream,
            content_type=storage.CONTENT_TYPES[fmt],
            as_attachment=request.query_params.get("inline") != "1",
            filename=f"recording-{stamp}-{rec.pk}.{fmt}",
        )


# ---------------------------------------------------------------------- live call control


class RecordCallSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[a.value for a in RecordingAction])


class _CallTarget:
    def __init__(self, call_id: str) -> None:
        self.pk = call_id

    def __str__(self) -> str:
        return f"call {self.pk}"


class CallRecordingView(APIView):
    """Start, stop, pause or resume the recording of a call in progress. Tenant admins
    (``extensions.manage``) any call of the tenant; an end user a call its extension is in."""

    permission_classes = (TenantMember,)
    held: set[str] = set()

    @extend_schema(
        request=RecordCallSerializer,
        responses={202: OpenApiResponse(description="Sent to the engine")},
    )
    def post(self, request, call_id: str):
        held = self.held
        tenant = request._request.tenant
        call = active_call(tenant.schema_name, call_id)
        if call is None:
            raise exceptions.NotFound("No such call.")
        if RECORDING_CODES[1] not in held:
            number = own_extension_number(request.user, tenant)
            if not number or number not in (call.get("caller"), call.get("callee")):
                raise exceptions.NotFound("No such call.")
        ser = RecordCallSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        what = ser.validated_data["action"]
        actor = Actor.from_request(request)
        send_control(RecordCall(schema=tenant.schema_name, call_id=call_id, action=what))
        audit.record(actor, f"call.record_{what}", _CallTarget(call_id), tenant=tenant)
        return Response(
            {"call_id": call_id, "action": what, "status": "requested"},
            status=status.HTTP_202_ACCEPTED,
        )
