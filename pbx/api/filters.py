import datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework import filters


class SearchFilter(filters.SearchFilter):
    """``?q=`` free-text search over a view's ``search_fields``."""

    search_param = "q"


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
