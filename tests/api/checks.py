"""Checks the API tests of a tenant's resources share: bad input answered with field errors,
and the audit entries the writes left."""

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
