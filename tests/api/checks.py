"""Checks the API tests of a tenant's resources share: bad input answered with field errors,
the audit entries the writes left, and the events the writes appended to the events stream."""

from __future__ import annotations

from pbx.models import AuditEntry


def assert_field_errors(client, url: str, base: dict, cases) -> None:
    """POST ``base`` changed by each case's ``change`` to ``url``: a 400 whose body names the
    case's ``field`` (``cases``: ``(change, field)`` pairs)."""
    for change, field in cases:
        r = client.post(url, {**base, **change})
        assert r.status_code == 400, (change, r.content)
        body = r.json()
        assert set(body) == {"code", "message", "fields"}
        assert field in body["fields"], (change, body)


def audited(tenant, actor) -> set[str]:
    """The actions ``actor``'s audit entries in ``tenant`` record."""
    rows = AuditEntry.objects.filter(tenant=tenant, actor=actor)
    return set(rows.values_list("action", flat=True))


def events_stream_end() -> str:
    """The id of the events stream's last entry ("0-0": empty), to read what comes after."""
    from telephony.engine.store import client, redis_key
    from telephony.sip import contract

    last = client().xrevrange(redis_key(contract.EVENTS), count=1)
    return last[0][0].decode() if last else "0-0"


def events_after(after: str, type_: str | None = None) -> list[dict[str, str]]:
    """The events stream's entries after the id ``after`` (of ``type_`` only, when given)."""
    from telephony.engine.store import client, redis_key
    from telephony.sip import contract

    rows = client().xrange(redis_key(contract.EVENTS), min=f"({after}", max="+")
    events = [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]
    return [e for e in events if type_ is None or e["type"] == type_]
