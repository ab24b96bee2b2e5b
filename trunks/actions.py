"""Business writes for trunks and the DID pool (public schema). Every write is audited and
publishes the carrier snapshot to the engines once its transaction commits."""

import ipaddress
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.text import single_line_errors
from telephony.engine.carriers import publish_carriers_on_commit
from tenants.choices import RecordingPolicy
from tenants.validators import hostname_problems, normalize_hostname

from .models import CallerIdHeader, DidNumber, DtmfMode, Trunk, TrunkKind, TrunkTransport
from .numbers import NOT_A_RANGE, country_problem, range_size, to_e164

__all__ = [
    "CODECS",
    "MAX_RANGE",
    "do_add_numbers",
    "do_assign_number",
    "do_create_trunk",
    "do_delete_number",
    "do_delete_trunk",
    "do_release_number",
    "do_update_trunk",
    "validate_trunk",
]

#: Codecs a trunk may offer, in the names SDP uses.
CODECS = ("PCMU", "PCMA", "G722", "G729", "opus", "telephone-event")
#: The widest carrier network an IP trunk may name (by IP version): no carrier sends from more,
#: and a wider one would count half the Internet as that carrier.
WIDEST_NETWORK = {4: 16, 6: 32}
#: Numbers one range may add at once.
MAX_RANGE = 10_000
TEXT_FIELDS = {
    "name": 120,
    "host": 253,
    "outbound_proxy": 260,
    "realm": 253,
    "username": 128,
    "auth_username": 128,
    "from_user": 128,
    "from_domain": 253,
    "caller_id": 32,
    "password": 128,
}
EDITABLE = (
    "name", "kind", "enabled", "host", "port", "transport", "outbound_proxy", "realm",
    "username", "auth_username", "register_expires", "addresses", "source_port", "country",
    "codecs", "dtmf_mode", "max_channels", "from_user", "from_domain", "caller_id_header",
    "send_diversion", "caller_id", "options_interval", "recording",
)  # fmt: skip
_USER_RE = re.compile(r"^[A-Za-z0-9._~+*#!$&'()=-]*$")


def _host_problem(value: str, *, with_port: bool) -> str | None:
    host, port = value, ""
    if with_port and value.count(":") == 1:
        host, port = value.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            return "host[:port], the port 1 to 65535"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    problems = hostname_problems(normalize_hostname(host))
    return problems[0] if problems else None


def _range(errors: dict, fields: dict, name: str, lo: int, hi: int, text: str) -> None:
    value = fields.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        errors[name] = [text]


def validate_trunk(fields: dict, *, trunk: Trunk | None = None, password=None) -> None:
    """Raise ValidationFailed with a field error for every bad value; ``fields`` are the
    model's (the new state is ``trunk`` overlaid with them)."""
    errors = single_line_errors(
        {**fields, **({"password": password} if password else {})}, TEXT_FIELDS
    )

    def now(name):
        return fields[name] if name in fields else getattr(trunk, name, None)

    if "name" in fields and not str(fields["name"] or "").strip():
        errors.setdefault("name", ["required"])
    for name, choices in (
        ("kind", TrunkKind.values),
        ("transport", TrunkTransport.values),
        ("dtmf_mode", DtmfMode.values),
        ("caller_id_header", CallerIdHeader.values),
    ):
        if name in fields and fields[name] not in choices:
            errors[name] = [f"one of {', '.join(choices)}"]
    if "recording" in fields and fields["recording"] not in RecordingPolicy.values:
        errors["recording"] = ["one of: '' (as the tenant), never, on_demand, always"]
    host = now("host") or ""
    if "host" in fields or trunk is None:
        if not host:
            errors.setdefault("host", ["required"])
        elif "host" not in errors and (problem := _host_problem(host, with_port=False)):
            errors["host"] = [problem]
    proxy = fields.get("outbound_proxy")
    if (
        proxy
        and "outbound_proxy" not in errors
        and (problem := _host_problem(proxy, with_port=True))
    ):
        errors["outbound_proxy"] = [problem]
    for name in ("from_domain",):
        value = fields.get(name)
        if value and name not in errors and (problem := _host_problem(value, with_port=False)):
            errors[name] = [problem]
    for name in ("username", "auth_username", "from_user"):
        value = fields.get(name)
        if value and name not in errors and not _USER_RE.match(value):
            errors[name] = ["letters, digits and - . _ ~ + * # only"]
    _range(errors, fields, "port", 0, 65535, "0 (the default) to 65535")
    _range(errors, fields, "source_port", 0, 65535, "0 (any) to 65535")
    _range(errors, fields, "register_expires", 60, 86400, "60 to 86400 seconds")
    _range(errors, fields, "max_channels", 0, 100_000, "0 (no limit) to 100000")
    interval = fields.get("options_interval")
    if interval is not None and (
        not isinstance(interval, int) or not (interval == 0 or 10 <= interval <= 3600)
    ):
        errors["options_interval"] = ["0 (off) or 10 to 3600 seconds"]
    addresses = fields.get("addresses")
    if addresses is not None:
        if not isinstance(addresses, list) or len(addresses) > 64:
            errors["addresses"] = ["a list of up to 64 IP addresses or networks"]
        else:
            for item in addresses:
                try:
                    net = ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    errors["addresses"] = [f"{str(item)[:40]!r} is not an IP address or network"]
                    break
                if net.prefixlen < WIDEST_NETWORK[net.version]:
                    widest = WIDEST_NETWORK[net.version]
                    errors["addresses"] = [f"{net} is too wide: at most a /{widest} network"]
                    break
    codecs = fields.get("codecs")
    if codecs is not None and (not isinstance(codecs, list) or set(map(str, codecs)) - set(CODECS)):
        errors["codecs"] = [f"a list of: {', '.join(CODECS)}"]
    if problem := country_problem(fields.get("country") or ""):
        errors["country"] = [problem]
    cid = fields.get("caller_id")
    if cid and "caller_id" not in errors:
        try:
            fields["caller_id"] = to_e164(cid, now("country") or "")
        except ValueError as exc:
            errors["caller_id"] = [str(exc)]
    kind = now("kind") or TrunkKind.IP
    if "kind" not in errors:
        if kind == TrunkKind.REGISTER:
            if not now("username"):
                errors.setdefault("username", ["a registration trunk needs the account name"])
            has_password = bool(password) or (
                trunk is not None and trunk.has_password and password is None
            )
            if not has_password:
                errors.setdefault("password", ["a registration trunk needs the password"])
        elif not now("addresses"):
            errors.setdefault(
                "addresses", ["an IP trunk needs the carrier's addresses (IPs or networks)"]
            )
    if errors:
        raise ValidationFailed("The trunk has invalid fields.", fields=errors)


def _share_problem(trunk: Trunk, tenants) -> str | None:
    if trunk.tenant_id and tenants:
        return "a tenant's own trunk cannot be shared"
    if trunk.dealer is not None:
        path = trunk.dealer.path
        for t in tenants:
            if t.dealer is None or not t.dealer.path.startswith(path):
                return f"{t} is not a tenant of dealer {trunk.dealer}"
    return None


def _audit_changes(fields: dict, password) -> dict:
    """The fields written; a password only as "set" (the audit log masks it again)."""
    changes = dict(fields)
    if password is not None:
        changes["password"] = bool(password)
    return changes


def do_create_trunk(
    *,
    actor: Actor,
    fields: dict,
    password: str | None = None,
    tenant=None,
    dealer=None,
    shared_with=(),
) -> Trunk:
    """A new trunk owned by ``tenant``, else ``dealer``, else the provider."""
    fields = {k: v for k, v in fields.items() if k in EDITABLE}
    validate_trunk(fields, password=password)
    trunk = Trunk(tenant=tenant, dealer=dealer, **fields)
    if trunk.country:
        trunk.country = trunk.country.upper()
    problem = _share_problem(trunk, shared_with)
    if problem:
        raise ValidationFailed(problem, fields={"shared_with": [problem]})
    trunk.set_password(password or "")
    with transaction.atomic():
        trunk.save()
        trunk.shared_with.set(shared_with)
        changes = _audit_changes(fields, password)
        changes["shared_with"] = [t.pk for t in shared_with]
        audit.record(actor, "trunk.create", trunk, tenant=tenant, dealer=dealer, changes=changes)
        publish_carriers_on_commit()
    return trunk


def do_update_trunk(
    trunk: Trunk,
    *,
    actor: Actor,
    fields: dict,
    password: str | None = None,
    shared_with=None,
) -> Trunk:
    """Change a trunk. ``password`` None keeps the stored one (it is never shown again)."""
    fields = {k: v for k, v in fields.items() if k in EDITABLE}
    validate_trunk(fields, trunk=trunk, password=password)
    if shared_with is not None:
        problem = _share_problem(trunk, shared_with)
        if problem:
            raise ValidationFailed(problem, fields={"shared_with": [problem]})
    with transaction.atomic():
        trunk = Trunk.objects.select_for_update().get(pk=trunk.pk)
        changes = audit.diff(trunk, fields)
        for name, value in fields.items():
            setattr(trunk, name, value.upper() if name == "country" else value)
        if password is not None:
            trunk.set_password(password)
            changes["password"] = bool(password)
        trunk.updated_at = timezone.now()
        trunk.save()
        if shared_with is not None:
            audit.set_many(trunk, "shared_with", shared_with, changes)
        audit.record(
            actor, "trunk.update", trunk, tenant=trunk.tenant, dealer=trunk.dealer,
            changes=changes,
        )  # fmt: skip
        publish_carriers_on_commit()
    return trunk


def do_delete_trunk(trunk: Trunk, *, actor: Actor) -> None:
    """Delete a trunk; its numbers stay in the pool (without a trunk), outbound rules that
    named it skip it from now on."""
    with transaction.atomic():
        numbers = list(trunk.numbers.values_list("number", flat=True))
        audit.record(
            actor, "trunk.delete", trunk, tenant=trunk.tenant, dealer=trunk.dealer,
            changes={"numbers": numbers},
        )  # fmt: skip
        trunk.delete()
        publish_carriers_on_commit()


# ----------------------------------------------------------------------------- the DID pool


def _expand(first: str, last: str | None, country: str) -> list[str]:
    errors: dict[str, list[str]] = {}
    try:
        start = to_e164(first, country)
    except ValueError as exc:
        errors["number"] = [str(exc)]
    if last:
        try:
            end = to_e164(last, country)
        except ValueError as exc:
            errors["last"] = [str(exc)]
    if errors:
        raise ValidationFailed("Invalid numbers.", fields=errors)
    if not last:
        return [start]
    count = range_size(start, end)
    if count is None:
        raise ValidationFailed("Invalid range.", fields={"last": [NOT_A_RANGE]})
    if count > MAX_RANGE:
        raise ValidationFailed(
            "Range too large.", fields={"last": [f"at most {MAX_RANGE} numbers at once"]}
        )
    width = len(start) - 1
    return [f"+{n:0{width}d}" for n in range(int(start[1:]), int(end[1:]) + 1)]


def do_add_numbers(
    *,
    actor: Actor,
    number: str,
    last: str | None = None,
    country: str = "",
    dealer=None,
    tenant=None,
    trunk: Trunk | None = None,
    description: str = "",
) -> list[DidNumber]:
    """Add ``number`` (or the range ``number``..``last``) to the pool of ``dealer`` (None:
    the provider), assigned to ``tenant`` when given. 409 when any of them exists already."""
    errors = single_line_errors({"description": description}, {"description": 120})
    if problem := country_problem(country):
        errors["country"] = [problem]
    if errors:
        raise ValidationFailed("Invalid numbers.", fields=errors)
    numbers = _expand(number, last, country)
    taken = list(DidNumber.objects.filter(number__in=numbers).values_list("number", flat=True))
    if taken:
        shown = ", ".join(sorted(taken)[:5]) + (" ..." if len(taken) > 5 else "")
        raise Conflict(
            f"{len(taken)} of these numbers are in the pool already: {shown}",
            fields={"number": [f"already in the pool: {shown}"]},
        )
    now = timezone.now()
    rows = [
        DidNumber(
            number=n, dealer=dealer, tenant=tenant, trunk=trunk, description=description,
            assigned_at=now if tenant is not None else None,
        )
        for n in numbers
    ]  # fmt: skip
    try:
        with transaction.atomic():
            created = DidNumber.objects.bulk_create(rows)
            audit.record(
                actor, "number.add", created[0], tenant=tenant, dealer=dealer,
                changes={"numbers": numbers[:100], "count": len(numbers)},
            )  # fmt: skip
            publish_carriers_on_commit()
    except IntegrityError as exc:
        raise Conflict("These numbers were just added by someone else.") from exc
    return created


def do_assign_number(number: DidNumber, tenant, *, actor: Actor) -> DidNumber:
    """Give a pool number to ``tenant``; 409 when another tenant holds it."""
    with transaction.atomic():
        number = DidNumber.objects.select_for_update().get(pk=number.pk)
        if number.tenant_id == tenant.pk:
            return number
        if number.tenant_id is not None:
            raise Conflict(
                f"{number} is assigned to another tenant; release it first.",
                fields={"tenant": ["the number belongs to another tenant"]},
            )
        if number.dealer is not None and (
            tenant.dealer is None or not tenant.dealer.path.startswith(number.dealer.path)
        ):
            raise ValidationFailed(
                f"{tenant} is not a tenant of dealer {number.dealer}.",
                fields={"tenant": ["not a tenant of the dealer that holds the number"]},
            )
        number.tenant = tenant
        number.assigned_at = timezone.now()
        number.save(update_fields=["tenant", "assigned_at"])
        audit.record(actor, "number.assign", number, tenant=tenant, dealer=number.dealer)
        publish_carriers_on_commit()
    return number


def do_release_number(number: DidNumber, *, actor: Actor) -> DidNumber:
    """Take a number back into the pool (its tenant's inbound rules for it stop matching)."""
    with transaction.atomic():
        number = DidNumber.objects.select_for_update().get(pk=number.pk)
        if number.tenant_id is None:
            return number
        tenant = number.tenant
        number.tenant = None
        number.assigned_at = None
        number.save(update_fields=["tenant", "assigned_at"])
        audit.record(actor, "number.release", number, tenant=tenant, dealer=number.dealer)
        publish_carriers_on_commit()
    return number


def do_update_number(number: DidNumber, *, actor: Actor, fields: dict) -> DidNumber:
    """Change a number's description, trunk or holding dealer."""
    allowed = {k: v for k, v in fields.items() if k in ("description", "trunk", "dealer")}
    errors = single_line_errors(allowed, {"description": 120})
    if errors:
        raise ValidationFailed("Invalid fields.", fields=errors)
    with transaction.atomic():
        number = DidNumber.objects.select_for_update().get(pk=number.pk)
        changes = audit.diff(number, allowed)
        for name, value in allowed.items():
            setattr(number, name, value)
        number.save()
        audit.record(actor, "number.update", number, tenant=number.tenant, changes=changes)
        publish_carriers_on_commit()
    return number


def do_delete_number(number: DidNumber, *, actor: Actor) -> None:
    with transaction.atomic():
        audit.record(actor, "number.delete", number, tenant=number.tenant, dealer=number.dealer)
        number.delete()
        publish_carriers_on_commit()


def release_tenant(tenant) -> None:
    """A deleted tenant's numbers go back to the pool and its own trunks go (inside the
    tenant's deletion)."""
    DidNumber.objects.filter(tenant=tenant).update(tenant=None, assigned_at=None)
    Trunk.objects.filter(tenant=tenant).delete()
    publish_carriers_on_commit()
