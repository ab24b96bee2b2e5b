import threading

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters


class SearchFilter(filters.SearchFilter):
    """``?q=`` free-text search over a view's ``search_fields``."""

    search_param = "q"


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with the ``FilterSet`` class a view's ``filterset_fields``
    describe built once per (model, fields) instead of on every request (a new class each
    time: its metaclass and filters were a few per cent of a list request). The filterset
    itself is still made per request from the request's query parameters."""

    _classes: dict[tuple, type] = {}
    _lock = threading.Lock()

    def get_filterset_class(self, view, queryset=None):
        fields = getattr(view, "filterset_fields", None)
        if getattr(view, "filterset_class", None) or not fields or queryset is None:
            return super().get_filterset_class(view, queryset)
        key = (queryset.model, type(self), tuple(fields) if not isinstance(fields, dict) else None)
        if key[2] is None:  # a dict of lookups: not hashable as given, rare; build each time
            return super().get_filterset_class(view, queryset)
        cls = self._classes.get(key)
        if cls is None:
            cls = super().get_filterset_class(view, queryset)
            with self._lock:
                self._classes[key] = cls
        return cls
