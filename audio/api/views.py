"""The host tenant's prompts, music on hold, mailboxes and voicemail messages.

Prompts and music classes need ``audio.view`` to read and ``audio.manage`` to write. Mailboxes
and messages too, except that an end user reaches its own extension's box and messages (and
nothing else: another's is 404). Uploads are multipart (``file``); every write goes through
``audio.actions`` (converted, audited, republished); a bad file is a 400 with a field error.
"""

from __future__ import annotations

import os

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from audio import actions
from audio.access import mailboxes_for, messages_for, own_extension_number
from audio.actions import GREETING_KINDS
from audio.models import Folder, Mailbox, MusicClass, MusicTrack, Prompt, VoicemailMessage
from pbx.api.parsers import FormParser, JSONParser, MultiPartParser
from pbx.api.permissions import host_permissions
from pbx.api.viewsets import TenantScopedViewSet
from tenants.choices import Permission

from .serializers import (
    GreetingUploadSerializer,
    MailboxSerializer,
    MusicClassSerializer,
    MusicTrackSerializer,
    PromptChangeSerializer,
    PromptSerializer,
    TrackOrderSerializer,
    TrackUploadSerializer,
    VoicemailMessageSerializer,
)

AUDIO_CODES = (Permission.AUDIO_VIEW, Permission.AUDIO_MANAGE)
UPLOADS = (MultiPartParser, FormParser, JSONParser)


class OwnOrAudioPermission(BasePermission):
    """``audio.view`` / ``audio.manage`` for every box (``view.every``); without it, an end
    user with an extension reaches its own box only. Another tenant's caller: 404."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        held = host_permissions(request)
        tenant = request._request.tenant
        needed = AUDIO_CODES[0] if request.method in SAFE_METHODS else AUDIO_CODES[1]
        view.every = needed in held
        return view.every or own_extension_number(user, tenant) is not None


def wav_response(path: str, name: str) -> FileResponse:
    if not path or not os.path.isfile(path):
        raise exceptions.NotFound("The audio file is missing.")
    return FileResponse(open(path, "rb"), content_type="audio/wav", filename=name)  # noqa: SIM115


class PromptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's recordings: one named as a default prompt replaces it for its calls;
    others are custom prompts (IVR greetings)."""

    permission_codes = AUDIO_CODES
    serializer_class = PromptSerializer
    parser_classes = UPLOADS
    search_fields = ("name", "description")
    ordering_fields = ("name", "created_at", "id")
    ordering = ("name",)

    def get_queryset(self):
        return Prompt.objects.order_by("name")

    def create(self, request):
        ser = PromptSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        prompt = actions.do_upload_prompt(
            actor=self.actor, name=data["name"], upload=data["file"],
            description=data.get("description", ""),
        )  # fmt: skip
        return Response(PromptSerializer(prompt).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PromptChangeSerializer, responses={200: PromptSerializer})
    def partial_update(self, request, pk=None):
        prompt = self.get_object()
        ser = PromptChangeSerializer(prompt, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        prompt = actions.do_replace_prompt(
            prompt, actor=self.actor, upload=data.get("file"), name=data.get("name"),
            description=data.get("description"),
        )  # fmt: skip
        return Response(PromptSerializer(prompt).data)

    @extend_schema(request=PromptChangeSerializer, responses={200: PromptSerializer})
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_prompt(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "audio/wav"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def audio(self, request, pk=None):
        """The recording (8 kHz mono WAV)."""
        prompt = self.get_object()
        return wav_response(prompt.path, f"{prompt.name}.wav")


class MusicClassViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Music on hold: classes (playlists) and their tracks. ``is_default`` marks what held
    callers hear (no default class: the shipped music)."""

    permission_codes = AUDIO_CODES
    serializer_class = MusicClassSerializer
    parser_classes = UPLOADS
    search_fields = ("name",)
    ordering_fields = ("name", "id")
    ordering = ("name",)

    def get_queryset(self):
        return MusicClass.objects.prefetch_related("tracks").order_by("name")

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        music = actions.do_create_music_class(
            actor=self.actor,
            name=ser.validated_data.get("name", ""),
            is_default=ser.validated_data.get("is_default", False),
        )
        return Response(self.get_serializer(music).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        music = self.get_object()
        ser = self.get_serializer(music, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        if "name" in data:
            music = actions.do_rename_music_class(music, actor=self.actor, name=data["name"])
        if "is_default" in data and data["is_default"] != music.is_default:
            actions.do_set_default_music_class(
                music if data["is_default"] else None, actor=self.actor
            )
        return Response(self.get_serializer(self.get_queryset().get(pk=music.pk)).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_music_class(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TrackUploadSerializer, responses={201: MusicTrackSerializer})
    @action(detail=True, methods=["post"])
    def tracks(self, request, pk=None):
        """Add a track (multipart ``file``) at the end of the playlist."""
        music = self.get_object()
        ser = TrackUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        track = actions.do_add_track(music, actor=self.actor, upload=ser.validated_data["file"])
        return Response(MusicTrackSerializer(track).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("track_id", int, OpenApiParameter.PATH)],
    )
    @action(detail=True, methods=["delete"], url_path=r"tracks/(?P<track_id>\d+)")
    def delete_track(self, request, pk=None, track_id=None):
        """Remove one track (and its file)."""
        music = self.get_object()
        track = get_object_or_404(MusicTrack, pk=track_id, music_class=music)
        actions.do_delete_track(track, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TrackOrderSerializer, responses={200: MusicClassSerializer})
    @action(detail=True, methods=["post"])
    def order(self, request, pk=None):
        """Play the tracks in this order (every track id of the class once)."""
        music = self.get_object()
        ser = TrackOrderSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        actions.do_reorder_tracks(music, actor=self.actor, track_ids=ser.validated_data["tracks"])
        return Response(self.get_serializer(self.get_queryset().get(pk=music.pk)).data)


class MailboxViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Voicemail boxes, one per extension, by the extension's number. Tenant admins see all;
    an end user its own."""

    permission_classes = (OwnOrAudioPermission,)  # type: ignore[assignment]  # own box too
    queryset = Mailbox.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = MailboxSerializer
    parser_classes = UPLOADS
    lookup_field = "extension"
    lookup_value_regex = r"[^/]+"
    search_fields = ("extension__number", "email")
    ordering_fields = ("extension__number",)
    ordering = ("extension__number",)
    every = False

    def get_queryset(self):
        return mailboxes_for(self.request.user, self.tenant, every=self.every)

    def get_object(self):
        box = self.get_queryset().filter(extension__number=self.kwargs["extension"]).first()
        if box is None:
            raise exceptions.NotFound()
        return box

    def partial_update(self, request, extension=None):
        box = self.get_object()
        ser = self.get_serializer(box, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        pin = data.pop("pin", None)
        box = actions.do_update_mailbox(box, actor=self.actor, fields=data, pin=pin)
        return Response(self.get_serializer(box).data)

    def update(self, request, extension=None):
        return self.partial_update(request, extension)

    @extend_schema(
        request=GreetingUploadSerializer,
        responses={200: MailboxSerializer, 204: None},
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=GREETING_KINDS)],
    )
    @action(detail=True, methods=["put", "delete"], url_path=r"greetings/(?P<kind>[a-z]+)")
    def greeting(self, request, extension=None, kind=None):
        """PUT a recorded greeting (multipart ``file``) for ``unavailable`` or ``busy``;
        DELETE it to go back to the default prompt."""
        box = self.get_object()
        if kind not in GREETING_KINDS:
            raise exceptions.NotFound()
        if request.method == "DELETE":
            actions.do_clear_greeting(box, kind, actor=self.actor)
            return Response(status=status.HTTP_204_NO_CONTENT)
        ser = GreetingUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        box = actions.do_set_greeting(
            box, kind, actor=self.actor, upload=ser.validated_data["file"]
        )
        return Response(self.get_serializer(box).data)


class VoicemailViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):  # fmt: skip
    """Voicemail messages, newest first: a tenant admin's are every box's, an end user's its
    own box's. Filter with ``box`` (an extension number) and ``folder`` (new, saved)."""

    permission_classes = (OwnOrAudioPermission,)  # type: ignore[assignment]  # own box too
    queryset = VoicemailMessage.objects.none()  # the model, for the schema; get_queryset scopes
    serializer_class = VoicemailMessageSerializer
    search_fields = ("caller", "caller_name")
    ordering_fields = ("created_at", "id")
    ordering = ("-created_at", "-id")
    every = False

    def get_queryset(self):
        messages = messages_for(self.request.user, self.tenant, every=self.every)
        params = self.request.query_params
        if params.get("box"):
            messages = messages.filter(mailbox__extension__number=params["box"])
        if params.get("folder"):
            if params["folder"] not in Folder.values:
                raise exceptions.ValidationError({"folder": [f"one of {', '.join(Folder.values)}"]})
            messages = messages.filter(folder=params["folder"])
        return messages

    @extend_schema(
        parameters=[
            OpenApiParameter("box", str, description="an extension number"),
            OpenApiParameter("folder", str, enum=Folder.values),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def destroy(self, request, pk=None):
        actions.do_delete_message(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: VoicemailMessageSerializer})
    @action(detail=True, methods=["post"])
    def save(self, request, pk=None):
        """Mark the message heard: it moves to the saved ones."""
        message = actions.do_save_message(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(message).data)

    @extend_schema(responses={(200, "audio/wav"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def audio(self, request, pk=None):
        """The message's recording (8 kHz mono WAV)."""
        message = self.get_object()
        stamp = message.created_at.strftime("%Y%m%d-%H%M%S")
        return wav_response(message.path, f"voicemail-{stamp}.wav")
