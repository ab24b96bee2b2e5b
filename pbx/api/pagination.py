import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.response import Response


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """Lists answer ``{"total", "limit", "offset", "items"}``."""

    default_limit = 50
    max_limit = 1000

    def get_paginated_response(self, data):
        return Response(
            {"total": self.count, "limit": self.limit, "offset": self.offset, "items": data}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["total", "items"],
            "properties": {
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "items": schema,
            },
        }


class CursorPagination(pagination.CursorPagination):
    """DRF's cursor, with the position it carries checked against the ordering field.

    A cursor is opaque but client-supplied: its position goes into a query, so a value that is
    not of the field's type (or a moment PostgreSQL cannot hold) must be an invalid cursor (404),
    not a database error.
    """

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            if "\x00" in cursor.position:
                raise ValueError("NUL")
            position = field.to_python(cursor.position)
            if isinstance(position, datetime.datetime):
                if timezone.is_naive(position):
                    raise ValueError("naive")
                position = position.astimezone(datetime.UTC)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor._replace(position=position)
