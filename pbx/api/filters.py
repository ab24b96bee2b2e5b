from rest_framework import filters


class SearchFilter(filters.SearchFilter):
    """``?q=`` free-text search over a view's ``search_fields``."""

    search_param = "q"
