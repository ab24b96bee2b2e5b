from __future__ import annotations

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
    """Lists of growing logs (CDRs, deliveries, events) answer ``{"next", "previous", "items"}``:
    offsets would get slower and skip rows while rows are added. A view picks its order with
    :meth:`ordered_by`.

    A cursor is opaque but client-supplied: its position goes into a query, so a value that is
    not of the ordering field's type (or a moment PostgreSQL cannot hold) must be an invalid
    cursor (404), not a database error.
    """

    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"

    @classmethod
    def ordered_by(cls, *ordering: str) -> type[CursorPagination]:
        """This paginator over ``ordering`` (its first field carries the cursor's position)."""
        name = "".join(part.strip("-").title().replace("_", "") for part in ordering)
        return type(f"CursorBy{name}", (cls,), {"ordering": ordering})

    def get_paginated_response(self, data):
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "items": data}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items"],
            "properties": {
                "next": {"type": "string", "nullable": True},
                "previous": {"type": "string", "nullable": True},
                "items": schema,
            },
        }

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
