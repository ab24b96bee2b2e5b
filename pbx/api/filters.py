import datetime
import threading

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters


class SearchFilter(filters.SearchFilter):
    """``?q=`` free-text search over a view's ``search_fields``."""

    search_param = "q"


#: The largest id a primary key holds (PostgreSQL ``integer``): a bigger one is a field error,
#: not a database error in a query.
MAX_ID = 2**31 - 1


class IdFilter(django_filters.Filter):
    """An id in a query: a whole number a primary key can hold, else a field error."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, handed on in UTC.

    Python accepts offsets up to ±23:59 and any year from 1 to 9999; PostgreSQL refuses offsets
    beyond ±15:59, and a moment near year 1 or 9999 may not exist in UTC. Converting here turns
    the first into a plain UTC moment and the second into a field error instead of a 500.
    """

    default_error_messages = {"overflow": "This moment is outside the supported range."}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


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
