"""The base viewset: thin views that declare queryset, serializer and filters, and call actions.

It also makes every POST idempotent under an ``Idempotency-Key`` header: the key's record is
written in the same transaction as the create, so a retry (even a concurrent one) replays the
first answer and never creates a duplicate.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from pbx.api.permissions import TenantPermission
from pbx.audit import Actor
from pbx.crypto import decrypt, encrypt
from pbx.errors import IdempotencyInProgress, IdempotencyKeyReused, PbxError, ValidationFailed
from pbx.models import IdempotencyRecord
from tenants.models import Tenant

IDEMPOTENCY_HEADER = "Idempotency-Key"


class _Replay(Exception):
    def __init__(self, record):
        self.record = record


class IdempotentMixin:
    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and request.headers.get(IDEMPOTENCY_HEADER):
            with transaction.atomic():
                return super().dispatch(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._idempotency = None
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or not key:
            return
        if not request.user.is_authenticated:
            # Records are kept per user; an anonymous POST (sign-in, token refresh) creates
            # nothing that a retry could duplicate, so the key has nothing to guard.
            return
        if len(key) > 255:
            raise PbxError("Idempotency-Key is at most 255 characters.")
        if not key.isprintable():
            raise PbxError("Idempotency-Key must not contain control characters.")
        tenant = getattr(request._request, "tenant", None)
        scope = tenant.schema_name if tenant is not None else "public"
        fingerprint = hashlib.sha256(
            request.path.encode() + b"\0" + (request.body or b"")
        ).hexdigest()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=request.user,
                    key=key,
                    scope=scope,
                    method="POST",
                    path=request.path[:512],
                    fingerprint=fingerprint,
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=request.user, scope=scope, key=key)
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request."
                ) from None
            if record.status_code is None:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still in progress."
                ) from None
            raise _Replay(record) from None
        self._idempotency = record

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            body = json.loads(decrypt(exc.record.body["enc"]))
            response = Response(body, status=exc.record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency", None)
        if record is not None:
            if response.status_code >= 500:
                transaction.set_rollback(True)
            else:
                record.status_code = response.status_code
                # Encrypted: a create's answer may carry a secret shown once (a SIP password).
                record.body = {"enc": encrypt(json.dumps(response.data, cls=JSONEncoder))}
                record.save(update_fields=["status_code", "body"])
        return response


class BaseViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Subclasses declare ``queryset``, ``serializer_class``, ``filterset_fields`` and scoping."""

    @property
    def actor(self) -> Actor:
        return Actor.from_request(self.request)


class TenantScopedViewSet(BaseViewSet):
    """A resource of the host's tenant: ``permission_codes = (read, write)`` within it, and
    ``self.tenant`` is the tenant the request's host name chose."""

    permission_classes = (TenantPermission,)

    @property
    def tenant(self) -> Tenant:
        return self.request._request.tenant  # type: ignore[attr-defined]  # django-tenants sets it


class ActionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """A tenant's resource listed and read as its queryset, written through its audited
    actions: ``create_action(actor=, fields=)``, ``update_action(obj, actor=, fields=)`` and
    ``delete_action(obj, actor=)`` (set with ``staticmethod``). The fields are the
    serializer's ``action_fields()`` when it has one, else its validated data; PUT is a partial
    update; the answer is the object as ``get_queryset`` reads it again."""

    create_action: Callable[..., Any]
    update_action: Callable[..., Any]
    delete_action: Callable[..., Any]

    def _answer(self, obj, code=status.HTTP_200_OK):
        obj = self.get_queryset().get(pk=obj.pk)
        return Response(self.get_serializer(obj).data, status=code)

    def _fields(self, ser) -> dict:
        action_fields = getattr(ser, "action_fields", None)
        return action_fields() if action_fields is not None else dict(ser.validated_data)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        obj = self.create_action(actor=self.actor, fields=self._fields(ser))
        return self._answer(obj, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        obj = self.get_object()
        ser = self.get_serializer(obj, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        obj = self.update_action(obj, actor=self.actor, fields=self._fields(ser))
        return self._answer(obj)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        self.delete_action(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def scoped(queryset, pk, field: str, what: str):
    """The row ``pk`` of ``queryset`` (the caller's scope), or a field error naming ``field``
    (None for no ``pk``): an id given in a request body that the caller may not see is unknown."""
    if pk is None:
        return None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise ValidationFailed(f"Unknown {what}.", fields={field: [f"unknown {what}"]})
    return found
