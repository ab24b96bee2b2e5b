"""Form controls the portal's forms share."""

from collections.abc import Callable, Iterable

from django import forms
from django.utils.html import format_html, format_html_join


class DatalistInput(forms.TextInput):
    """A text box with a searchable list of suggestions (``<datalist>``): type part of a value
    or of its label ("berl" finds "Europe/Berlin (UTC+01:00)"), or a value not in the list
    where the field allows one (an outside number as a forward target). The field's rules stay
    the action's; the list only helps.

    ``options``: ``(value, label)`` pairs, or a callable returning them when the form renders.
    ``shared_list``: the id of a ``<datalist>`` the page renders once for many boxes (the rows
    of a phone's lines); the box then renders none of its own.
    """

    def __init__(
        self,
        options: Iterable | Callable[[], Iterable] = (),
        attrs=None,
        *,
        shared_list: str = "",
    ):
        super().__init__(attrs={"autocomplete": "off", **(attrs or {})})
        self.options = options
        self.shared_list = shared_list

    def __deepcopy__(self, memo):
        copy = super().__deepcopy__(memo)
        copy.options = self.options  # shared: a callable or an immutable tuple
        return copy

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        own = f"{context['widget']['attrs'].get('id', name)}-list"
        context["widget"]["attrs"]["list"] = self.shared_list or own
        return context

    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        if self.shared_list:
            return html
        list_id = f"{(attrs or {}).get('id', name)}-list"
        options = self.options() if callable(self.options) else self.options
        items = format_html_join("", '<option value="{}">{}</option>', options)
        return format_html('{}<datalist id="{}">{}</datalist>', html, list_id, items)
