"""Form helpers shared by the Django admin and the portal, both of which write through actions."""

from django import forms


def add_action_errors(form: forms.Form, exc) -> None:
    """Show an action's error on the fields it names; the rest (and the message) on the form."""
    placed = False
    for name, messages in (exc.fields or {}).items():
        messages = messages if isinstance(messages, list) else [messages]
        target = name if name in form.fields else None
        for message in messages:
            if target is None:
                form.add_error(None, f"{name.replace('_', ' ')}: {message}")
            else:
                form.add_error(target, str(message))
        placed = placed or target is not None
    if not placed or not exc.fields:
        form.add_error(None, exc.message)
