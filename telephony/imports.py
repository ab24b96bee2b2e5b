"""The ``extensions`` CSV import: extensions, each with a portal user when it has an e-mail and
a web password. The file, the dry run and the all-or-nothing run are :mod:`pbx.imports`'.

A row's values are judged by the extension action's rules (``validate_extension``), so a bad
value gets the same message here as through the API and the portal; this module only turns
columns into the action's fields and checks what only a file can get wrong (a number or an
e-mail twice in it, the batch over the quota)."""

from __future__ import annotations

import re

from pbx.errors import ValidationFailed
from pbx.imports import Importer, RowError, register

_TRUE = {"", "1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
# Columns that are the extension's fields as they are; empty means the default.
TEXT_COLUMNS = (
    "display_name",
    "email",
    "mobile",
    "voicemail_pin",
    "caller_id_name",
    "caller_id_number",
    "forward_always",
    "forward_busy",
    "forward_no_answer",
)
NUMBER_COLUMNS = ("no_answer_timeout", "max_registrations")


def _fields(row: dict) -> tuple[dict, dict[str, str]]:
    """The action's fields of ``row``, and the columns that are not even of the right type."""
    fields = {name: row[name] for name in TEXT_COLUMNS if row[name] or name == "display_name"}
    if "email" in fields:
        fields["email"] = fields["email"].lower()
    bad: dict[str, str] = {}
    for name in NUMBER_COLUMNS:
        if row[name]:
            if row[name].isascii() and row[name].isdigit():
                fields[name] = int(row[name])
            else:
                bad[name] = "a whole number"
    if row["allowed_transports"]:
        # Several in one cell, as "udp;tcp" or "udp tcp" (the comma separates columns).
        fields["allowed_transports"] = [
            t for t in re.split(r"[;\s]+", row["allowed_transports"]) if t
        ]
    if row["enabled"].lower() in _TRUE | _FALSE:
        fields["enabled"] = row["enabled"].lower() in _TRUE
    else:
        bad["enabled"] = "yes/no, true/false or 1/0"
    return fields, bad


@register
class ExtensionImporter(Importer):
    """Extensions, each with a portal user when it has an e-mail and a web password."""

    kind = "extensions"
    label = "Extensions and users"
    columns = (
        "number",
        "display_name",
        "email",
        "mobile",
        "sip_password",
        "web_password",
        "voicemail_pin",
        "enabled",
        "caller_id_name",
        "caller_id_number",
        "forward_always",
        "forward_busy",
        "forward_no_answer",
        "no_answer_timeout",
        "max_registrations",
        "allowed_transports",
    )
    required = ("number", "display_name")
    permission = "extensions.manage"

    def validate(self, tenant, rows):
        from routing.models import IvrMenu
        from tenants.models import User, login_key
        from tenants.passwords import policy_problems

        from .actions import validate_extension
        from .models import Extension

        errors: list[RowError] = []
        numbers = [row["number"] for _, row in rows]
        taken = set(Extension.objects.filter(number__in=numbers).values_list("number", flat=True))
        menus = dict(IvrMenu.objects.filter(number__in=numbers).values_list("number", "name"))
        emails = [row["email"].lower() for _, row in rows if row["email"]]
        taken_logins = set(
            User.objects.filter(
                login_key__in=[login_key(e, tenant.id) for e in emails]
            ).values_list("email", flat=True)
        )
        seen_numbers: dict[str, int] = {}
        seen_emails: dict[str, int] = {}
        for index, row in rows:
            fields, bad = _fields(row)
            number = row["number"]
            secrets = {name: row[name] or None for name in ("sip_password", "web_password")}
            try:
                validate_extension(tenant, fields, number or None, secrets=secrets)
            except ValidationFailed as exc:
                for column, messages in exc.fields.items():
                    bad.setdefault(column, messages[0])
            if not number:
                bad["number"] = "required"
            elif "number" not in bad:
                if number in seen_numbers:
                    bad["number"] = f"{number} is also on row {seen_numbers[number]}"
                elif number in taken:
                    bad["number"] = f"extension {number} already exists"
                elif number in menus:
                    bad["number"] = f"IVR menu '{menus[number]}' has this number"
                seen_numbers.setdefault(number, index)

            email = fields.get("email", "")
            if row["web_password"] and not email:
                bad["email"] = "required when a web password is given"
            elif row["web_password"] and "email" not in bad:
                if email in seen_emails:
                    bad["email"] = f"{email} is also on row {seen_emails[email]}"
                elif email in taken_logins:
                    bad["email"] = f"a user with {email} already exists"
                seen_emails.setdefault(email, index)

            errors.extend(RowError(index, column, message) for column, message in bad.items())
            # The tenant's password policy can fail several ways at once: list them all.
            for column, kind, identity in (
                ("sip_password", "sip", number),
                ("web_password", "web", email.split("@")[0]),
            ):
                if row[column] and column not in bad:
                    for problem in policy_problems(
                        tenant, row[column], kind=kind, identifiers=(identity,)
                    ):
                        errors.append(RowError(index, column, problem))

        used = Extension.objects.count()
        if used + len(rows) > tenant.max_extensions:
            errors.append(
                RowError(
                    0,
                    "number",
                    f"the tenant has {used} of {tenant.max_extensions} extensions; "
                    f"{len(rows)} more would exceed its quota",
                )
            )
        return errors

    def apply_row(self, tenant, row, actor):
        from .actions import do_create_extension

        fields, _ = _fields(row)
        ext, _ = do_create_extension(
            number=row["number"],
            sip_password=row["sip_password"] or None,
            web_password=row["web_password"] or None,
            actor=actor,
            **fields,
        )
        # The generated SIP passwords are not put in the report: it is kept, and a phone is
        # provisioned with the password anyway (or an admin reads it once in the portal).
        return {"number": ext.number, "user": ext.email if ext.user_id else ""}
