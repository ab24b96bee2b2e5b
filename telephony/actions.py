"""Business writes for telephony configuration (run inside the tenant's schema)."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ErrorCode, QuotaExceeded, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors
from tenants.choices import RecordingPolicy, Role, SrtpMode
from tenants.models import Tenant, User
from tenants.passwords import check_password, generate_sip_password

from .engine.snapshots import publish_on_commit
from .models import CallScope, Extension, Transport


def _current_tenant() -> Tenant:
    return require_tenant("extension actions")


FORWARD_FIELDS = ("forward_always", "forward_busy", "forward_no_answer")
# Texts that reach SIP headers (From display name, P-Asserted-Identity), provisioning files
# (line labels and display names) or mail: one line each, within the column's length.
TEXT_FIELDS = {
    "display_name": 120,
    "caller_id_name": 120,
    "caller_id_number": 32,
    "outbound_caller_ids": 32,
    "email": 254,
    "mobile": 32,
    "forward_always": 32,
    "forward_busy": 32,
    "forward_no_answer": 32,
    "voicemail_pin": 12,
}
#: PortSIP's service numbers (call announcement, park, voicemail, monitor): a phone dialling one
#: reaches the service, so no extension may take it.
RESERVED_NUMBERS = frozenset({"555", "666", "777", "888"})
#: The longest extension number any tenant may allow (PortSIP's limit for imported users).
NUMBER_MAX_LENGTH = 64
#: Seconds of ringing before "no answer" forwarding applies.
NO_ANSWER_TIMEOUT = (5, 120)
#: Phones (contacts) one extension may register at once.
MAX_REGISTRATIONS = (1, 20)
#: Passwords are kept encrypted (SIP) or hashed (web); longer ones are a mistake or an attack.
SECRET_MAX_LENGTH = 128


def number_problem(tenant: Tenant, number: str) -> tuple[str, ErrorCode] | None:
    """What is wrong with ``number`` as a new extension of ``tenant`` (message, code), or None.

    The one rule for the API, the portal and CSV imports.
    """
    lo, hi = tenant.ext_min_length, min(tenant.ext_max_length, NUMBER_MAX_LENGTH)
    if not number.isascii() or not number.isdigit():
        return "digits only", ErrorCode.VALIDATION_ERROR
    if not lo <= len(number) <= hi:
        return f"must have {lo} to {hi} digits", ErrorCode.VALIDATION_ERROR
    if number in RESERVED_NUMBERS:
        return (
            f"{number} is reserved for a system service (reserved: "
            f"{', '.join(sorted(RESERVED_NUMBERS))})",
            ErrorCode.NUMBER_RESERVED,
        )
    return None


def _phone_number(value: str) -> bool:
    return value.lstrip("+").isdigit() and value.isascii() and value.count("+") <= 1


def validate_extension(
    tenant: Tenant,
    fields: dict,
    number: str | None = None,
    *,
    own_number: str | None = None,
    secrets: dict | None = None,
) -> None:
    """Raise :class:`ValidationFailed` with a field error for every bad value in ``fields`` (the
    extension's own fields, by model name), ``number`` (a new extension's) and ``secrets``
    (``sip_password``/``web_password``: their form; the tenant's policy is checked on write).

    The one set of rules for an extension: the API serializer, the portal forms and the CSV
    importer only shape input and call this (through the ``do_*`` actions or directly), so a
    bad value gets the same field error whichever way it came in.
    """
    errors: dict[str, list[str]] = single_line_errors(fields, TEXT_FIELDS)
    errors.update(
        single_line_errors(
            {k: v for k, v in (secrets or {}).items() if v is not None},
            dict.fromkeys(("sip_password", "web_password"), SECRET_MAX_LENGTH),
        )
    )
    code = ErrorCode.VALIDATION_ERROR
    own_number = own_number or number
    if "display_name" in fields and not str(fields["display_name"] or "").strip():
        errors.setdefault("display_name", ["required"])
    email = fields.get("email")
    if email and "email" not in errors:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = ["not a valid e-mail address"]
    for name in FORWARD_FIELDS:
        target = fields.get(name)
        if not target or name in errors:
            continue
        if not target.lstrip("+").isdigit() or not target.isascii() or len(target) > 32:
            errors[name] = ["an extension or phone number (digits, optional leading +)"]
        elif target == own_number:
            errors[name] = ["an extension cannot forward to itself"]
    timeout = fields.get("no_answer_timeout")
    lo, hi = NO_ANSWER_TIMEOUT
    if timeout is not None and not lo <= timeout <= hi:
        errors["no_answer_timeout"] = [f"{lo} to {hi} seconds"]
    if number is not None:
        problem = number_problem(tenant, number)
        if problem is not None:
            errors["number"] = [problem[0]]
            if len(errors) == 1:
                code = problem[1]
    cid = fields.get("caller_id_number")
    if cid and "caller_id_number" not in errors and not _phone_number(cid):
        errors["caller_id_number"] = ["a phone number (digits, optional leading +)"]
    mobile = fields.get("mobile")
    if mobile and "mobile" not in errors and not _phone_number(mobile.replace(" ", "")):
        errors["mobile"] = ["a phone number (digits, optional leading +)"]
    pin = fields.get("voicemail_pin")
    if pin and "voicemail_pin" not in errors and (not pin.isdigit() or not 4 <= len(pin) <= 12):
        errors["voicemail_pin"] = ["4 to 12 digits"]
    scope = fields.get("call_scope")
    if scope is not None and scope not in CallScope.values:
        errors["call_scope"] = [f"one of {', '.join(CallScope.values)}"]
    recording = fields.get("recording")
    if "recording" in fields and recording not in RecordingPolicy.values:
        errors["recording"] = ["one of: '' (as the tenant), never, on_demand, always"]
    if "srtp" in fields and fields["srtp"] not in SrtpMode.values:
        errors["srtp"] = ["one of: '' (as the tenant), off, optional, required"]
    if "web_softphone" in fields and not isinstance(fields["web_softphone"], bool):
        errors["web_softphone"] = ["true or false"]
    transports = fields.get("allowed_transports")
    if transports is not None:
        unknown = not isinstance(transports, list) or set(transports) - set(Transport.values)
        if not transports or unknown:
            errors["allowed_transports"] = [f"choose from {', '.join(Transport.values)}"]
    max_reg = fields.get("max_registrations")
    lo, hi = MAX_REGISTRATIONS
    if max_reg is not None and not lo <= max_reg <= hi:
        errors["max_registrations"] = [f"{lo} to {hi}"]
    ids = fields.get("outbound_caller_ids")
    if ids is not None and (
        not isinstance(ids, list) or any(not _phone_number(str(i)) for i in ids)
    ):
        errors.setdefault("outbound_caller_ids", ["a list of phone numbers"])
    if errors:
        message = (
            "The number is reserved for a system service."
            if code == ErrorCode.NUMBER_RESERVED
            else "Invalid extension."
        )
        raise ValidationFailed(message, fields=errors, code=code)


def do_create_extension(
    *,
    number: str,
    display_name: str,
    sip_password: str | None = None,
    web_password: str | None = None,
    actor: Actor,
    **fields,
) -> tuple[Extension, str]:
    """Create an extension (and its sign-in user when it has an e-mail and web password).

    Returns the extension and its SIP password (generated strong when none is given) so the
    caller can show it once. The tenant's quota is checked under a row lock on the tenant.
    """
    from routing.lookups import menu_numbered, team_number_user

    tenant = _current_tenant()
    validate_extension(
        tenant,
        {"display_name": display_name, **fields},
        number,
        secrets={"sip_password": sip_password, "web_password": web_password},
    )
    if sip_password is None:
        sip_password = generate_sip_password(tenant)
    else:
        check_password(
            tenant, sip_password, field="sip_password", kind="sip", identifiers=(number,)
        )
    if web_password is not None and not fields.get("email"):
        raise ValidationFailed(
            "A web password needs an e-mail to sign in with.", fields={"email": ["required"]}
        )
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        used = Extension.objects.count()
        if used >= locked.max_extensions:
            raise QuotaExceeded(
                f"The tenant may have at most {locked.max_extensions} extensions.",
                fields={"number": [f"quota of {locked.max_extensions} extensions reached"]},
            )
        if Extension.objects.filter(number=number).exists():
            raise Conflict("The number is taken.", fields={"number": ["already in use"]})
        if (menu := menu_numbered(number)) is not None:
            raise Conflict(
                f"IVR menu '{menu.name}' has the number {number}.",
                fields={"number": [f"IVR menu '{menu.name}' has this number"]},
            )
        if (team := team_number_user(number)) is not None:
            raise Conflict(
                f"The number {number} is taken by {team}.",
                fields={"number": [f"{team} has this number"]},
            )
        ext = Extension(number=number, display_name=display_name, **fields)
        ext.set_sip_password(sip_password, tenant.sip_realm)
        if web_password is not None:
            ext.user = _create_user_for(tenant, ext, web_password, actor)
        try:
            with transaction.atomic():
                ext.save()
        except IntegrityError as exc:
            raise Conflict("The number is taken.", fields={"number": ["already in use"]}) from exc
        from audio.actions import create_mailbox  # every extension has a voicemail box

        create_mailbox(ext)
        audit.record(
            actor,
            "extension.create",
            ext,
            tenant=tenant,
            changes={"number": number, "display_name": display_name, **fields},
        )
        publish_on_commit(tenant)
    return ext, sip_password


def _create_user_for(tenant: Tenant, ext: Extension, web_password: str, actor: Actor) -> User:
    from tenants.actions import do_create_user

    return do_create_user(
        email=ext.email,
        password=web_password,
        role=Role.TENANT_USER,
        tenant=tenant,
        full_name=ext.display_name,
        actor=actor,
    )


def do_update_extension(
    ext: Extension,
    *,
    actor: Actor,
    sip_password: str | None = None,
    web_password: str | None = None,
    **fields,
) -> Extension:
    tenant = _current_tenant()
    if fields.get("hot_desk") is False and "hotdesk_user" not in fields:
        fields["hotdesk_user"] = ""  # no longer a desk phone: whoever was there is logged out
    validate_extension(
        tenant,
        fields,
        own_number=ext.number,
        secrets={"sip_password": sip_password, "web_password": web_password},
    )
    if sip_password is not None:
        check_password(
            tenant, sip_password, field="sip_password", kind="sip", identifiers=(ext.number,)
        )
    with transaction.atomic():
        ext = Extension.objects.select_for_update().get(pk=ext.pk)
        changes = audit.diff(ext, fields)
        for name, value in fields.items():
            setattr(ext, name, value)
        if sip_password is not None:
            ext.set_sip_password(sip_password, tenant.sip_realm)
            changes["sip_password"] = "changed"  # noqa: S105 - audit marker
        if web_password is not None:
            if ext.user is None:
                if not ext.email:
                    raise ValidationFailed(
                        "A web password needs an e-mail.", fields={"email": ["required"]}
                    )
                ext.user = _create_user_for(tenant, ext, web_password, actor)
            else:
                from tenants.actions import do_update_user

                do_update_user(ext.user, actor=actor, password=web_password)
            changes["web_password"] = "changed"  # noqa: S105 - audit marker
        elif ext.user is not None and "email" in fields and fields["email"]:
            from tenants.actions import do_update_user

            do_update_user(ext.user, actor=actor, email=fields["email"])
        ext.updated_at = timezone.now()
        ext.save()
        audit.record(actor, "extension.update", ext, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return ext


def do_delete_extension(ext: Extension, *, actor: Actor) -> None:
    """Delete an extension (and its sign-in user); Conflict (409) naming the IVR menus and
    DISA entries that still send calls to it or dial out as it."""
    from routing.lookups import entries_of, extension_references

    tenant = _current_tenant()
    with transaction.atomic():
        used = extension_references(ext.number) + entries_of(ext.number)
        if used:
            raise Conflict(
                f"Extension {ext.number} is in use by {'; '.join(used)}: change them first.",
                fields={"number": [f"in use by {'; '.join(used)}"]},
            )
        audit.record(actor, "extension.delete", ext, tenant=tenant)
        if ext.user_id:
            User.objects.filter(pk=ext.user_id, tenant=tenant).delete()
        from audio.actions import remove_mailbox_files  # its messages and greetings, on commit

        remove_mailbox_files(ext)
        # Logged in at a hot desk: logged out (a new extension of that number is someone else).
        Extension.objects.filter(hotdesk_user=ext.number).update(
            hotdesk_user="", updated_at=timezone.now()
        )
        ext.delete()
        publish_on_commit(tenant)


def do_reveal_sip_password(ext: Extension, *, actor: Actor) -> str:
    """The extension's SIP password in clear, for an admin setting up a softphone by hand.
    Every reveal is audited (who, from where, which extension)."""
    tenant = _current_tenant()
    audit.record(actor, "extension.reveal_sip_password", ext, tenant=tenant)
    return ext.sip_password


# --- the engines' live state (Redis) --------------------------------------------------------


class _LiveTarget:
    """An audit target that lives in Redis, not in the database (a call, a ban)."""

    def __init__(self, kind: str, ident: str) -> None:
        self.pk = ident
        self._label = f"{kind} {ident}"

    def __str__(self) -> str:
        return self._label


def do_hangup_call(tenant: Tenant, call_id: str, *, actor: Actor) -> None:
    """Ask the engine to end one of ``tenant``'s calls. Another tenant's call id is simply not
    in this tenant's mirror, so it is NotFound like an unknown one."""
    from pbx.errors import NotFound

    from .engine.state import active_call, send_control
    from .sip.contract import HangUpCall

    if active_call(tenant.schema_name, call_id) is None:
        raise NotFound("No such call.")
    send_control(HangUpCall(schema=tenant.schema_name, call_id=call_id))
    audit.record(actor, "call.hangup", _LiveTarget("call", call_id), tenant=tenant)


def do_clear_sip_ban(ip: str, *, actor: Actor) -> None:
    """Lift a ban on every engine."""
    from pbx.errors import NotFound

    from .engine.state import lift_ban

    if not lift_ban(ip):
        raise NotFound("This address is not banned.")
    audit.record(actor, "sip_ban.clear", _LiveTarget("SIP ban of", ip))
