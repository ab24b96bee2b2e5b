"""The contact centre in the API (the host tenant's):

- ``/api/v1/queues/``: call queues (CRUD; agents and supervisors as extension numbers);
  ``GET /queues/{id}/agents/`` each agent's current state; ``POST
  /queues/{id}/agents/{number}/state/`` ``{state, reason}`` sets one agent's state in that
  queue; ``POST /queues/{id}/supervise/`` ``{supervisor, agent, mode}`` asks the engine to
  join a supervisor to an agent's call (202).
- ``POST /api/v1/agents/{number}/state/`` ``{state, reason}``: an agent's state in every
  queue it is an agent of.
- ``/api/v1/agent-skills/`` (GET: every extension's skills) and
  ``/api/v1/agent-skills/{number}/`` (GET, PUT ``{skills}``: replaced).
- ``/api/v1/me/agent/``: the signed-in end user's own queues and states (GET) and setting
  its own state (POST ``{state, reason, queue}``; no queue: all of them).

Queues are where calls go: reading needs ``routing.view``, writing and setting others' states
``routing.manage`` (as ring groups). A user who supervises a queue (its extension is one of
the queue's supervisors) may ask to supervise it without that permission. Every write goes
through ``callcenter.actions``.
"""

from __future__ import annotations

import time

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from audio.access import own_extension_number
from callcenter import actions
from callcenter.agents import agent_states
from callcenter.models import AgentSkill, Queue
from pbx.api.permissions import TenantMember, TenantPermission
from pbx.api.viewsets import ActionViewSet
from pbx.audit import Actor
from telephony.models import Extension
from telephony.sip import contract
from tenants.choices import Permission

from .serializers import (
    AgentStatusSerializer,
    MeAgentSerializer,
    MeSetAgentStateSerializer,
    QueueSerializer,
    SetAgentStateSerializer,
    SkillsSerializer,
    SuperviseSerializer,
)

QUEUE_CODES = (Permission.ROUTING_VIEW, Permission.ROUTING_MANAGE)


def _status_rows(queues) -> list[dict]:
    now = time.time()
    return [
        {
            "queue": queue,
            "agent": agent,
            "state": s.effective(now),
            "reason": s.reason,
            "since": s.since,
            "until": s.until,
            "by": s.by,
        }
        for (queue, agent), s in agent_states(queues).items()
    ]


def _written(extension: str, written: dict[str, contract.AgentStatus]) -> list[dict]:
    return [{"queue": q, "agent": extension, **s.to_dict()} for q, s in sorted(written.items())]


class QueueViewSet(ActionViewSet):
    """Call queues: callers wait with music and announcements and are offered to the agents
    by the strategy; supervisors may listen, whisper and barge in."""

    serializer_class = QueueSerializer
    permission_codes = QUEUE_CODES
    create_action = staticmethod(actions.do_create_queue)
    update_action = staticmethod(actions.do_update_queue)
    delete_action = staticmethod(actions.do_delete_queue)
    filterset_fields = ("strategy", "enabled")
    search_fields = ("number", "name")
    ordering_fields = ("number", "name", "id")
    ordering = ("number",)
    held: set[str] = set()

    def get_queryset(self):
        return Queue.objects.prefetch_related("agents__extension", "supervisors").order_by("number")

    def get_permissions(self):
        if self.action == "supervise":
            return [TenantMember()]
        return super().get_permissions()

    @extend_schema(responses={200: AgentStatusSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def agents(self, request, pk=None):
        """Each agent's current state in the queue, in hunt order."""
        return Response(AgentStatusSerializer(_status_rows([self.get_object()]), many=True).data)

    @extend_schema(
        request=SetAgentStateSerializer, responses={200: AgentStatusSerializer(many=True)}
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"agents/(?P<number>[^/]+)/state",
        url_name="agent-state",
        filter_backends=[],
    )
    def agent_state(self, request, pk=None, number: str = ""):
        """Set one agent's state in this queue (``routing.manage``)."""
        queue = self.get_object()
        ser = SetAgentStateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        written = actions.do_set_agent_state(
            actor=self.actor,
            extension=number,
            queue=queue.number,
            state=ser.validated_data["state"],
            reason=ser.validated_data["reason"],
        )
        return Response(AgentStatusSerializer(_written(number, written), many=True).data)

    @extend_schema(
        request=SuperviseSerializer,
        responses={202: OpenApiResponse(description="Sent to the engine")},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def supervise(self, request, pk=None):
        """Ring a supervisor's phones and join it to an agent's current call of this queue
        (listen, whisper or barge). ``routing.manage`` names any of the queue's supervisors;
        a supervisor without it asks for itself."""
        queue = self.get_object()
        ser = SuperviseSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        supervisor = ser.validated_data.get("supervisor")
        if Permission.ROUTING_MANAGE not in self.held:
            own = own_extension_number(request.user, self.tenant)
            if own is None or not queue.supervisors.filter(number=own).exists():
                raise exceptions.PermissionDenied("You do not supervise this queue.")
            if supervisor not in (None, own):
                raise exceptions.PermissionDenied("You may only supervise as yourself.")
            supervisor = own
        if not supervisor:
            raise exceptions.ValidationError({"supervisor": ["required"]})
        actions.do_supervise(
            queue,
            actor=self.actor,
            supervisor=supervisor,
            agent=ser.validated_data["agent"],
            mode=ser.validated_data["mode"],
        )
        return Response(
            {"queue": queue.number, "supervisor": supervisor, "status": "requested"},
            status=status.HTTP_202_ACCEPTED,
        )


class AgentStateView(APIView):
    """Set an agent's state in every queue it is an agent of (``routing.manage``)."""

    permission_classes = (TenantPermission,)
    permission_codes = QUEUE_CODES

    @extend_schema(
        request=SetAgentStateSerializer, responses={200: AgentStatusSerializer(many=True)}
    )
    def post(self, request, number: str):
        if not Extension.objects.filter(number=number).exists():
            raise exceptions.NotFound("No such extension.")
        ser = SetAgentStateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        written = actions.do_set_agent_state(
            actor=Actor.from_request(request),
            extension=number,
            state=ser.validated_data["state"],
            reason=ser.validated_data["reason"],
        )
        return Response(AgentStatusSerializer(_written(number, written), many=True).data)


def _skills_of(extension: Extension) -> dict:
    return {"extension": extension.number, "skills": actions.agent_skills(extension)}


class AgentSkillsView(APIView):
    """Every extension that has skills, with them (``routing.view``)."""

    permission_classes = (TenantPermission,)
    permission_codes = QUEUE_CODES

    @extend_schema(responses={200: SkillsSerializer(many=True)})
    def get(self, request):
        found: dict[str, dict[str, int]] = {}
        rows = AgentSkill.objects.order_by("extension__number", "skill")
        for number, skill, level in rows.values_list("extension__number", "skill", "level"):
            found.setdefault(number, {})[skill] = level
        return Response([{"extension": n, "skills": s} for n, s in found.items()])


class AgentSkillView(APIView):
    """One extension's skills: read (``routing.view``), replaced (PUT, ``routing.manage``)."""

    permission_classes = (TenantPermission,)
    permission_codes = QUEUE_CODES

    def _extension(self, number: str) -> Extension:
        extension = Extension.objects.filter(number=number).first()
        if extension is None:
            raise exceptions.NotFound("No such extension.")
        return extension

    @extend_schema(responses={200: SkillsSerializer})
    def get(self, request, number: str):
        return Response(_skills_of(self._extension(number)))

    @extend_schema(request=SkillsSerializer, responses={200: SkillsSerializer})
    def put(self, request, number: str):
        extension = self._extension(number)
        ser = SkillsSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        actions.do_set_agent_skills(
            extension, actor=Actor.from_request(request), skills=dict(ser.validated_data["skills"])
        )
        return Response(_skills_of(extension))


class MeAgentView(APIView):
    """The signed-in user's own agent states: its extension's queues (GET) and setting its
    state in one or all of them (POST). A user without an extension gets 404."""

    permission_classes = (TenantMember,)
    held: set[str] = set()

    def _own(self, request) -> str:
        number = own_extension_number(request.user, request._request.tenant)
        if number is None:
            raise exceptions.NotFound("You have no extension.")
        return number

    def _answer(self, number: str) -> Response:
        queues = Queue.objects.filter(agents__extension__number=number).distinct()
        queues = queues.prefetch_related("agents__extension").order_by("number")
        rows = [r for r in _status_rows(queues) if r["agent"] == number]
        return Response(MeAgentSerializer({"extension": number, "queues": rows}).data)

    @extend_schema(responses={200: MeAgentSerializer})
    def get(self, request):
        return self._answer(self._own(request))

    @extend_schema(request=MeSetAgentStateSerializer, responses={200: MeAgentSerializer})
    def post(self, request):
        number = self._own(request)
        ser = MeSetAgentStateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        actions.do_set_agent_state(
            actor=Actor.from_request(request),
            extension=number,
            state=data["state"],
            reason=data["reason"],
            queue=data.get("queue"),
            by="api",
        )
        return self._answer(number)
