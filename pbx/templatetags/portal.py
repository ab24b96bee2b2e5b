"""Template filters of the portal's pages."""

from django import template

register = template.Library()


@register.filter
def has_required(form) -> bool:
    """Whether the form shows a required field (then it explains the ``*`` mark)."""
    return any(f.field.required and f.widget_type != "checkbox" for f in form.visible_fields())
