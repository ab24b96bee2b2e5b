"""The ``extensions`` CSV import: extensions, each with a portal user when it has an e-mail and
a web password. The file, the dry run and the all-or-nothing run are :mod:`pbx.imports`'."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from pbx.imports import Importer, RowError, register
from pbx.text import single_line_errors

_TRUE = {"", "1", "true", "yes", "y", "on"}
# Every column ends up in SIP headers, provisioning files or mail: one line each (passwords
# included: phones are provisioned with them). Lengths are the columns' in the database.
TEXT_COLUMNS = {
    "number": 64,
    "display_name": 120,
    "email": 254,
    "mobile": 32,
    "sip_password": 128,
    "web_password": 128,
    "voicemail_pin": 12,
    "enabled": 8,
}
_FALSE = {"0", "false", "no", "n", "off"}


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
    )
    required = ("number", "display_name")
    permission = "extensions.manage"

    def validate(self, tenant, rows):
        from tenants.models import User, login_key
        from tenants.passwords import policy_problems

        from .actions import number_problem
        from .models import Extension

        errors: list[RowError] = []
        numbers = [row["number"] for _, row in rows]
        taken = set(Extension.objects.filter(number__in=numbers).values_list("number", flat=True))
        emails = [row["email"].lower() for _, row in rows if row["email"]]
        taken_logins = set(
            User.objects.filter(
                login_key__in=[login_key(e, tenant.id) for e in emails]
            ).values_list("email", flat=True)
        )
        seen_numbers: dict[str, int] = {}
        seen_emails: dict[str, int] = {}
        for index, row in rows:

            def err(column, message, index=index):
                errors.append(RowError(index, column, message))

            bad = single_line_errors(row, TEXT_COLUMNS)
            for column, messages in bad.items():
                err(column, messages[0])
            number = row["number"]
            problem = number_problem(tenant, number) if number else None
            if not number:
                err("number", "required")
            elif "number" in bad:
                pass
            elif problem is not None:
                err("number", problem[0])
            elif number in seen_numbers:
                err("number", f"{number} is also on row {seen_numbers[number]}")
            elif number in taken:
                err("number", f"extension {number} already exists")
            seen_numbers.setdefault(number, index)

            if not row["display_name"]:
                err("display_name", "required")

            email = row["email"].lower()
            if email and "email" not in bad:
                try:
                    validate_email(email)
                except ValidationError:
                    err("email", "not a valid e-mail address")
                else:
                    if row["web_password"] and email in seen_emails:
                        err("email", f"{email} is also on row {seen_emails[email]}")
                    elif row["web_password"] and email in taken_logins:
                        err("email", f"a user with {email} already exists")
                    if row["web_password"]:
                        seen_emails.setdefault(email, index)
            if row["web_password"] and not email:
                err("email", "required when a web password is given")

            mobile = row["mobile"].replace(" ", "")
            if mobile and "mobile" not in bad and not mobile.lstrip("+").isdigit():
                err("mobile", "a phone number")

            if row["sip_password"] and "sip_password" not in bad:
                for problem in policy_problems(
                    tenant, row["sip_password"], kind="sip", identifiers=(number,)
                ):
                    err("sip_password", problem)
            if row["web_password"] and "web_password" not in bad:
                for problem in policy_problems(
                    tenant, row["web_password"], identifiers=(email.split("@")[0],)
                ):
                    err("web_password", problem)

            pin = row["voicemail_pin"]
            if pin and (not pin.isdigit() or not 4 <= len(pin) <= 12):
                err("voicemail_pin", "4 to 12 digits")
            if row["enabled"].lower() not in _TRUE | _FALSE:
                err("enabled", "yes/no, true/false or 1/0")

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

        ext, _ = do_create_extension(
            number=row["number"],
            display_name=row["display_name"],
            sip_password=row["sip_password"] or None,
            web_password=row["web_password"] or None,
            email=row["email"].lower(),
            mobile=row["mobile"],
            voicemail_pin=row["voicemail_pin"],
            enabled=row["enabled"].lower() in _TRUE,
            actor=actor,
        )
        # The generated SIP passwords are not put in the report: it is kept, and a phone is
        # provisioned with the password anyway (or an admin reads it once in the portal).
        return {"number": ext.number, "user": ext.email if ext.user_id else ""}
