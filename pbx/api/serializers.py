"""Serializer helpers shared by the apps' APIs."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, cast

from rest_framework import ISO_8601
from rest_framework import fields as drf_fields
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from rest_framework.serializers import Serializer

    _SerializerBase = Serializer
else:
    _SerializerBase = object  # a mixin: the serializer class comes after it in the bases


def _choice(field: drf_fields.ChoiceField):
    mapping = field.choice_strings_to_values

    def convert(value: Any) -> Any:
        return value if value == "" else mapping.get(str(value), value)

    return convert


def _datetime(field: drf_fields.DateTimeField):
    """ISO 8601 in the field's time zone, as DRF writes it ("Z" for UTC). The zone is read
    once per serializer (per request): it cannot change while one response is written."""
    fmt = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if fmt is None or fmt.lower() != ISO_8601:
        return None
    tz = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if tz is None:
        return None

    def convert(value: Any) -> Any:
        if isinstance(value, str) or value.tzinfo is None:
            return field.to_representation(value)  # DRF's rules for the unusual cases
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


def _list(field: drf_fields.ListField):
    item = _converter(field.child)
    if item is None:
        return None

    def convert(value: Any) -> Any:
        return [None if v is None else item(v) for v in value]

    return convert


def _converter(field: drf_fields.Field):
    """A function giving ``field.to_representation(value)`` for a non-None value, or None
    when the field is left to DRF."""
    kind = type(field)
    if kind in _PLAIN:
        return _PLAIN[kind]
    # The exact class, not a subclass (which may convert differently); cast only tells mypy.
    if kind is drf_fields.ChoiceField:
        return _choice(cast(drf_fields.ChoiceField, field))
    if kind is drf_fields.DateTimeField:
        return _datetime(cast(drf_fields.DateTimeField, field))
    if kind is drf_fields.ListField:
        return _list(cast(drf_fields.ListField, field))
    return None


# Field classes whose to_representation is exactly a conversion of the attribute's value
# (checked against DRF's own output in tests/api/test_fast_serializer.py). Subclasses are not
# included: they may override to_representation.
_PLAIN = {
    drf_fields.CharField: str,
    drf_fields.EmailField: str,
    drf_fields.SlugField: str,
    drf_fields.IntegerField: int,
    drf_fields.BooleanField: bool,
}


# Field classes a shallow copy is enough for: their instances hold no other field or
# serializer (ListField, nested serializers hold a bound child) and are not changed by use.
_SHALLOW = {
    *_PLAIN,
    drf_fields.ChoiceField,
    drf_fields.DateTimeField,
    drf_fields.ReadOnlyField,
    drf_fields.SerializerMethodField,
    drf_fields.HiddenField,
    drf_fields.BigIntegerField,
}
_FIELD_SETS: dict[type, dict[str, drf_fields.Field]] = {}


def _copy_field(field: drf_fields.Field) -> drf_fields.Field:
    kind = type(field)
    if isinstance(field, drf_fields.ListField) and kind is drf_fields.ListField:
        if type(field.child) not in _SHALLOW:
            return copy.deepcopy(field)
        new_list = copy.copy(field)
        new_list.child = _copy_field(field.child)
        # The copy was bound (name "") by the original's __init__; a list parents its child.
        new_list.child.parent = new_list  # type: ignore[assignment]
        new: drf_fields.Field = new_list
    elif kind in _SHALLOW:
        new = copy.copy(field)
    else:
        return copy.deepcopy(field)  # what DRF does: a new instance from the field's arguments
    if "_validators" in new.__dict__:  # DRF's cache behind Field.validators
        new.__dict__["_validators"] = list(new.__dict__["_validators"])
    return new


class FastReadMixin(_SerializerBase):
    """Reads a model instance into a dict like DRF's ``Serializer.to_representation``, with
    the plain fields (a model attribute shown as text, a number, a boolean, a choice, a date
    and time, or a list of those) read directly instead of through two method calls and a
    dozen checks each.

    A list page of 50 extensions has ~1,000 such field reads; DRF's generic path made them
    about a third of a list request's CPU. Every other field (dates, lists, nested and method
    fields, dotted sources) still goes through DRF, in the declared order.
    """

    def get_fields(self):
        """The class's fields, built once per process (``ModelSerializer.get_fields`` depends
        only on the class: its declared fields and ``Meta``) and copied for each serializer,
        so a subclass may still change its copy (``fields["number"].read_only = True``)."""
        cls = type(self)
        proto = _FIELD_SETS.get(cls)
        if proto is None:
            proto = super().get_fields()
            _FIELD_SETS[cls] = proto
        return {name: _copy_field(field) for name, field in proto.items()}

    def _read_plan(self) -> list[tuple[str, str | None, Any, Any]]:
        plan = getattr(self, "_fast_plan", None)
        if plan is None:
            plan = []
            for field in self._readable_fields:
                convert = _converter(field)
                direct = convert is not None and len(field.source_attrs) == 1
                attr = field.source_attrs[0] if direct else None
                plan.append((field.field_name, attr, convert if direct else None, field))
            self._fast_plan = plan
        return plan

    def to_representation(self, instance):
        ret: dict[str, Any] = {}
        for name, attr, convert, field in self._read_plan():
            if attr is not None:
                value = getattr(instance, attr)
                if callable(value):
                    # DRF calls simple callables (a method as source): keep its behaviour.
                    ret[name] = field.to_representation(field.get_attribute(instance))
                else:
                    ret[name] = None if value is None else convert(value)
                continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check is None else field.to_representation(attribute)
        return ret


class ActionJudgesValues:
    """For a serializer whose resource's action judges every value (``validate_<resource>``):
    the serializer only shapes input (types, lists, which fields are writable), and drops the
    checks DRF derives from the model (lengths, ranges, formats, uniqueness). A bad value then
    gets the action's field error, the same one the portal and the CSV import show.

    ``judged_by_action`` names the fields the action judges, when it does not judge them all.
    """

    judged_by_action: tuple[str, ...] | None = None

    def get_fields(self):
        fields = super().get_fields()
        names = self.judged_by_action
        for name, field in fields.items():
            if not field.read_only and (names is None or name in names):
                field.validators = []
                child = getattr(field, "child", None)
                if child is not None:
                    child.validators = []
        return fields
