from rest_framework import pagination
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
