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


class FirstAdminFields(forms.Form):
    """A new tenant's first admin, optional: the tenant action makes the user without a
    password and e-mails an invitation to choose one on the tenant's host."""

    admin_email = forms.EmailField(
        required=False,
        label="First admin's e-mail",
        help_text="Gets an e-mail with a link to choose a password and sign in.",
    )
    admin_name = forms.CharField(max_length=150, required=False, label="First admin's name")

    def first_admin(self) -> dict | None:
        """The action's ``admin`` argument, or None when no e-mail was given."""
        email = self.cleaned_data.get("admin_email")
        return (
            {"email": email, "full_name": self.cleaned_data.get("admin_name", "")}
            if email
            else None
        )


class TenantDeleteForm(forms.Form):
    """Deleting a tenant erases its schema: its identifier must be typed (the action checks)."""

    confirm = forms.CharField(label="Type the tenant's identifier to confirm")
