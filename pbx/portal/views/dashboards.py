"""The provider's host: the first page of the system admin (every tenant, the platform's health)
and of a dealer admin (its subtree's tenants only, and what of the platform its tenants feel).

The cost does not grow with the number of tenants: one query lists them, one counts every
tenant's extensions across their schemas, one reads the recent audit entries; the live figures
(extensions online, calls in progress) come from the fan-out's live state in Redis in two
pipelined round trips; the health checks are cached a few seconds (:mod:`pbx.portal.health`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from pbx.models import AuditEntry
from pbx.portal import health
from pbx.portal.access import platform_admin_required
from tenants.access import dealer_subtree_q, tenants_visible_to
from tenants.choices import Role, TenantStatus
from tenants.models import Tenant
from trunks.access import trunks_managed_by

from .common import page
from .trunks import trunk_rows

log = logging.getLogger(__name__)

ROWS = 25  # tenants shown, closest to a limit first
AUDIT_ROWS = 10
NEAR_LIMIT = 90  # percent of a quota from which a tenant is an alert


@dataclass
class Usage:
    """Used against a limit; ``limit`` 0 means no limit (calls) or none allowed (extensions)."""

    used: int | None  # None: not known now (Redis away)
    limit: int
    unlimited_when_zero: bool = False

    @property
    def unlimited(self) -> bool:
        return self.unlimited_when_zero and self.limit == 0

    @property
    def percent(self) -> int | None:
        if self.used is None or self.unlimited:
            return None
        if self.limit == 0:
            return 100
        return round(self.used * 100 / self.limit)

    @property
    def bar(self) -> int:
        """The bar's width in percent (a tenant over its limit fills it, no more)."""
        return min(100, self.percent or 0)

    @property
    def near(self) -> bool:
        return (self.percent or 0) >= NEAR_LIMIT


@dataclass
class TenantRow:
    tenant: Tenant
    extensions: Usage
    calls: Usage
    online: int | None

    @property
    def fullest(self) -> int:
        return max(self.extensions.percent or 0, self.calls.percent or 0)


def extension_counts(schemas: list[str]) -> dict[str, int]:
    """Each schema's number of extensions, in one query over every schema: ``query_to_xml``
    runs a ``count(*)`` in each (the names quoted by ``format('%I')``), and a schema without
    the table (a tenant half created) is left out instead of failing the query."""
    if not schemas:
        return {}
    from telephony.models import Extension

    table = Extension._meta.db_table
    sql = """
        SELECT s.name,
               (xpath('/row/n/text()', query_to_xml(
                   format('SELECT count(*) AS n FROM %%I.%%I', s.name, %s), false, true, ''
               )))[1]::text::int
          FROM unnest(%s::text[]) AS s(name)
         WHERE to_regclass(format('%%I.%%I', s.name, %s)) IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [table, schemas, table])
        return dict(cursor.fetchall())


def live_usage(schemas: list[str]) -> dict[str, tuple[int, int]] | None:
    """``schema -> (extensions online, calls in progress)`` from the live state the fan-out
    keeps (:meth:`events.live.LiveState.usage`); None when Redis cannot be reached."""
    from events.live import LiveState
    from telephony.engine.store import client

    try:
        return LiveState(client(timeout=1.0)).usage(schemas)
    except Exception:
        log.warning("live figures unavailable for the dashboard", exc_info=True)
        return None


def tenant_rows(tenants: list[Tenant]) -> tuple[list[TenantRow], bool]:
    """Every tenant's usage, closest to a limit first; and whether the live figures are in."""
    schemas = [t.schema_name for t in tenants]
    counts = extension_counts(schemas)
    live = live_usage(schemas)
    rows = []
    for t in tenants:
        online, calls = live.get(t.schema_name, (0, 0)) if live is not None else (None, None)
        rows.append(
            TenantRow(
                tenant=t,
                extensions=Usage(counts.get(t.schema_name, 0), t.max_extensions),
                calls=Usage(calls, t.max_concurrent_calls, unlimited_when_zero=True),
                online=online,
            )
        )
    rows.sort(key=lambda r: (-r.fullest, r.tenant.name.lower(), r.tenant.pk))
    return rows, live is not None


def recent_audit(user) -> list[AuditEntry]:
    """The platform's own entries (tenants, dealers and their administrators, SIP bans), not
    what happens inside a tenant (its own audit log has that); a dealer admin gets only those
    about its subtree's dealers and tenants."""
    platform = Q(tenant__isnull=True) | Q(action__startswith="tenant.")
    qs = AuditEntry.objects.filter(platform)
    if user.role != Role.SYSTEM_ADMIN:
        if not user.dealer_id:
            return []
        qs = qs.filter(dealer_subtree_q(user, "dealer") | dealer_subtree_q(user, "tenant__dealer"))
    return list(qs.order_by("-at", "-id")[:AUDIT_ROWS])


@dataclass(frozen=True)
class Alert:
    level: str  # down, warning or info
    message: str
    url: str = ""
    link: str = ""


def alerts(rows: list[TenantRow], checks: list[health.Check], bans: int | None) -> list[Alert]:
    from django.urls import reverse

    out = [Alert(c.status, f"{c.label}: {c.message}") for c in checks if not c.ok]
    for row in rows:
        t = row.tenant
        edit = reverse("portal:tenant_edit", args=[t.pk])
        if t.status == TenantStatus.SUSPENDED:
            out.append(
                Alert(
                    "warning",
                    f"{t.name} is suspended: its users cannot sign in and its calls stop.",
                    edit,
                    f"Open {t.name}",
                )
            )
        for usage, what in ((row.extensions, "extensions"), (row.calls, "concurrent calls")):
            if usage.near:
                level = "down" if (usage.percent or 0) >= 100 else "warning"
                out.append(
                    Alert(
                        level,
                        f"{t.name} uses {usage.used} of its {usage.limit} {what} "
                        f"({usage.percent} %).",
                        edit,
                        f"Open {t.name}",
                    )
                )
    if bans:
        noun = "address is" if bans == 1 else "addresses are"
        out.append(
            Alert(
                "info",
                f"{bans} source {noun} banned by the SIP engines (failed sign-ins or floods).",
                reverse("portal:sip_bans"),
                "See SIP bans",
            )
        )
    order = {"down": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda a: order.get(a.level, 3))


@platform_admin_required
def platform_dashboard(request):
    user = request.user
    system = user.role == Role.SYSTEM_ADMIN
    tenants = list(tenants_visible_to(user).select_related("dealer"))
    rows, live = tenant_rows(tenants)
    checks = health.platform_checks() if system else health.dealer_checks()
    bans = health.ban_count() if system else None
    trunks = trunks_managed_by(user).select_related("tenant", "dealer").order_by("name", "id")
    shown = trunk_rows(trunks[:ROWS])
    ctx = {
        "rows": rows[:ROWS],
        "tenant_total": len(rows),
        "rows_cut": len(rows) > ROWS,
        "live": live,
        "checks": checks,
        "alerts": alerts(rows, checks, bans),
        "audit": recent_audit(user),
        "system": system,
        "near_limit": NEAR_LIMIT,
        # Each trunk's state and channels in use (one pipelined Redis round trip).
        "trunks": shown,
        "trunk_total": trunks.count() if len(shown) == ROWS else len(shown),
    }
    return page(request, "portal/platform/dashboard.html", ctx, section="overview")
