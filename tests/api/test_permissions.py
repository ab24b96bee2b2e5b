"""The permission matrix: every viewset the API router registers, as every role, for list,
create, retrieve, update and delete, against one declarative table. A viewset the table does
not cover fails, and so does a cell that claims an action the viewset does not route.

Each case works on a row of tenant A (or, on the provider's host, of dealer North) seeded
through the real actions (``tests/api/resources.py``): a permitted read finds it, a permitted
write changes it, and a refused write leaves its table and the row as they were.
"""

import pytest
from django.db import connection

from tenants.models import Tenant
from tests.api.resources import CHANGES, Owner, create_body, delete_body, is_upload

pytestmark = pytest.mark.django_db

TENANT, PROVIDER = "tenant", "provider"  # the host the row's endpoint lives on
ROLES = {  # role -> the world's user holding it (None: anonymous)
    "anonymous": None,
    "end_user": "a_user",  # tenant A's user without a role that grants anything
    "tenant_admin": "a_admin",
    "dealer": "north_admin",  # tenant A's dealer
    "parent_dealer": "top_admin",  # the dealer above it
    "system_admin": "sysadmin",
    "other_tenant_admin": "b_admin",
    "other_dealer": "south_admin",  # a dealer not holding tenant A
}
ACTIONS = "LCRUD"  # list, create, retrieve, update, delete
# One letter per action:  y  permitted (200, 201, 200, 200, 204); a list shows the row
#                         o  a permitted list (200) of the caller's own scope, without the row
#                         n  refused, 403 (the role lacks the permission)
#                         a  401: no credentials valid on this host
#                         x  404: not the caller's row, or no such path
#                         -  405: the viewset does not route the action
#
#                                   anon  user  t-adm dealr parnt systm oth-t oth-d
TABLE = {
    ("extensions", TENANT):         "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("users", TENANT):              "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("roles", TENANT):              "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("audit", TENANT):              "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("certificates", TENANT):       "aaaaa nnnnn yyy-y yyy-y yyy-y yyy-y aaaaa aaaaa",
    ("phone-models", TENANT):       "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("phone-templates", TENANT):    "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("devices", TENANT):            "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("webhooks", TENANT):           "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("webhook-deliveries", TENANT): "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("events", TENANT):             "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("cdrs", TENANT):               "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("active-calls", TENANT):       "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("registrations", TENANT):      "aaxxx nnxxx y-xxx y-xxx y-xxx y-xxx aaxxx aaxxx",
    ("tenants", PROVIDER):          "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("dealers", PROVIDER):          "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("platform-users", PROVIDER):   "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("brands", PROVIDER):           "aaaaa aaaaa aaaaa yyyyy oyxxx yyyyy aaaaa oyxxx",
    ("sip-bans", PROVIDER):         "aaaaa aaaaa aaaaa nnnnn nnnnn y---y aaaaa nnnnn",
    ("audit", PROVIDER):            "aaaaa aaaaa aaaaa y-y-- y-y-- y-y-- aaaaa o-x--",
    # Trunks and numbers live on both hosts: the ones a tenant may use (its own trunks it
    # manages; numbers are read-only) on its host, the ones a dealer manages on the provider's.
    ("trunks", TENANT):             "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("trunks", PROVIDER):           "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("numbers", TENANT):            "aaaaa nnnnn ynynn ynynn ynynn ynynn aaaaa aaaaa",
    ("numbers", PROVIDER):          "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("inbound-rules", TENANT):      "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("outbound-rules", TENANT):     "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("emergency-numbers", TENANT):  "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("blacklist", TENANT):          "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("holidays", TENANT):           "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("ivrs", TENANT):               "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("prompts", TENANT):            "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("music-classes", TENANT):      "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    # Mailboxes (one per extension) and messages: an end user reaches only its own extension's
    # (tenant A's plain user has none: 403); made by extensions and the engine, not the API.
    ("mailboxes", TENANT):          "aaaaa nnnnn y-yy- y-yy- y-yy- y-yy- aaaaa aaaaa",
    ("voicemail", TENANT):          "aaaaa nnnnn y-y-y y-y-y y-y-y y-y-y aaaaa aaaaa",
    # Call recordings: an end user reads those of its own extension's calls (none here: 403).
    ("recordings", TENANT):         "aaaaa nnnnn y-y-y y-y-y y-y-y y-y-y aaaaa aaaaa",
    ("disa", TENANT):               "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("ring-groups", TENANT):        "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("paging-groups", TENANT):      "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("pickup-groups", TENANT):      "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("queues", TENANT):             "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("user-groups", TENANT):        "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    ("report-schedules", TENANT):   "aaaaa nnnnn yyyyy yyyyy yyyyy yyyyy aaaaa aaaaa",
    # Rate tables are the provider's and the dealers' (a tenant reads only its own effective
    # rates, at /call-rates/): a dealer's subtree manages its tables and their rates.
    ("rate-tables", PROVIDER):      "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    ("rates", PROVIDER):            "aaaaa aaaaa aaaaa yyyyy yyyyy yyyyy aaaaa oyxxx",
    # Billing: the tenant reads its own; its dealers set and top up its account.
    ("billing-ledger", TENANT):     "aaxxx nnxxx y-xxx y-xxx y-xxx y-xxx aaxxx aaxxx",
    ("billing-invoices", TENANT):   "aaaaa nnnnn y-y-- y-y-- y-y-- y-y-- aaaaa aaaaa",
    ("billing-accounts", PROVIDER): "aaaaa aaaaa aaaaa y-yy- y-yy- y-yy- aaaaa o-xx-",
}  # fmt: skip
STATUS = {"n": 403, "a": 401, "x": 404, "-": 405}  # refusals
PERMITTED = dict(zip(ACTIONS, (200, 201, 200, 200, 204), strict=True))


def _routes() -> dict[str, set[str]]:
    """Each registered viewset's URL prefix and the actions it routes."""
    from pbx.api.urls import router

    names = {"L": ("list",), "C": ("create",), "R": ("retrieve",), "D": ("destroy",)}
    names["U"] = ("update", "partial_update")
    return {
        prefix: {a for a, methods in names.items() if any(hasattr(viewset, m) for m in methods)}
        for prefix, viewset, _ in router.registry
    }


def test_the_table_covers_every_viewset_and_only_what_it_routes():
    routes = _routes()
    assert {prefix for prefix, _ in TABLE} == set(routes)
    for (prefix, host), row in TABLE.items():
        assert len(row.split()) == len(ROLES), (prefix, host)
        for role, cells in zip(ROLES, row.split(), strict=True):
            for action, cell in zip(ACTIONS, cells, strict=True):
                where = (prefix, host, role, action)
                assert cell in ("ynax-o" if action == "L" else "ynax-"), where
                if cell == "y":
                    assert action in routes[prefix], f"{where}: the viewset does not route it"
                if cell == "-":
                    assert action not in routes[prefix], f"{where}: the viewset routes it"


def _error(response) -> None:
    assert set(response.json()) == {"code", "message", "fields"}, response.content


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(("prefix", "host"), list(TABLE), ids=[f"{p}@{h}" for p, h in TABLE])
def test_permission_table(api, world, seeds, prefix, host, role):
    expected = dict(zip(ACTIONS, TABLE[prefix, host].split()[list(ROLES).index(role)], strict=True))
    caller = getattr(world, ROLES[role]) if ROLES[role] else None
    client = api(caller, world.tenant_a if host == TENANT else None)
    owner = Owner(world.tenant_a, world.north)
    row = seeds(prefix, owner)
    base, detail = f"/api/v1/{prefix}/", f"/api/v1/{prefix}/{row.id}/"
    key = {"active-calls": "call_id", "sip-bans": "ip", "registrations": "extension",
           "mailboxes": "extension", "billing-accounts": "tenant"}.get(prefix, "id")  # fmt: skip

    def check(action, response):
        cell = expected[action]
        status = PERMITTED[action] if cell in "yo" else STATUS[cell]
        assert response.status_code == status, (action, response.status_code, response.content)
        if cell not in "yo":
            _error(response)

    response = client.get(base, {"limit": 500})
    check("L", response)
    if expected["L"] in "yo":
        listed = {str(item[key]) for item in response.json()["items"]}
        assert (row.id in listed) is (expected["L"] == "y"), listed

    response = client.get(detail)
    check("R", response)
    if expected["R"] == "y":
        assert str(response.json()[key]) == row.id

    before = row.state()
    check("U", client.patch(detail, CHANGES.get(prefix, {})))
    assert (row.state() != before) is (expected["U"] == "y")

    before = row.state()
    check("D", client.delete(detail, delete_body(prefix, row)))
    assert (row.state()[1] is None) is (expected["D"] == "y")
    if expected["D"] != "y":
        assert row.state() == before

    count = row.state()[0]
    body = create_body(prefix, caller, owner)
    if is_upload(body):
        check("C", client.client.post(base, body, format="multipart"))
        connection.set_schema_to_public()
    else:
        check("C", client.post(base, body))
    assert row.state()[0] == count + (expected["C"] == "y")


def test_platform_endpoints_are_not_on_tenant_hosts(api, world):
    """On a tenant's host the provider's endpoints do not exist, whoever asks (404)."""
    both = {prefix for prefix, host in TABLE if host == TENANT}
    provider_only = {prefix for prefix, host in TABLE if host == PROVIDER} - both
    assert provider_only
    for who in ("a_user", "a_admin", "north_admin", "sysadmin"):
        client = api(getattr(world, who), world.tenant_a)
        for prefix in sorted(provider_only):
            response = client.get(f"/api/v1/{prefix}/")
            assert response.status_code == 404, (who, prefix, response.status_code)
            _error(response)


def test_custom_role_grants_exactly_its_permissions(api, world):
    admin = api(world.a_admin, world.tenant_a)
    role = admin.post(
        "/api/v1/roles/", {"name": "Receptionist", "permissions": ["extensions.view"]}
    ).json()
    r = admin.patch(f"/api/v1/users/{world.a_user.pk}/", {"custom_role": role["id"]})
    assert r.status_code == 200, r.content
    staff = api(world.a_user, world.tenant_a)
    assert staff.get("/api/v1/extensions/").status_code == 200
    refused = staff.post("/api/v1/extensions/", {"number": "556", "display_name": "X"})
    assert refused.status_code == 403
    assert staff.get("/api/v1/users/").status_code == 403
    # Tenant B's roles cannot be given to tenant A's users.
    b_role = (
        api(world.b_admin, world.tenant_b)
        .post("/api/v1/roles/", {"name": "B-only", "permissions": []})
        .json()
    )
    r = admin.patch(f"/api/v1/users/{world.a_user.pk}/", {"custom_role": b_role["id"]})
    assert r.status_code == 400
    assert "custom_role" in r.json()["fields"]


def test_dealer_sees_and_manages_only_its_subtree(api, world):
    north = api(world.north_admin)
    names = [t["slug"] for t in north.get("/api/v1/tenants/").json()["items"]]
    assert names == ["acme"]
    assert north.get(f"/api/v1/tenants/{world.tenant_b.pk}/").status_code == 404
    r = north.post(f"/api/v1/tenants/{world.tenant_b.pk}/suspend/")
    assert r.status_code == 404
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == "active"
    r = north.patch(f"/api/v1/tenants/{world.tenant_b.pk}/", {"name": "Hacked"})
    assert r.status_code == 404
    assert Tenant.objects.get(pk=world.tenant_b.pk).name == "Beta"

    top = api(world.top_admin)
    assert [t["slug"] for t in top.get("/api/v1/tenants/").json()["items"]] == ["acme"]
    assert {d["name"] for d in top.get("/api/v1/dealers/").json()["items"]} == {
        "Top Reseller",
        "North",
    }
    assert [d["name"] for d in api(world.south_admin).get("/api/v1/dealers/").json()["items"]] == [
        "South"
    ]
    both = {t["slug"] for t in api(world.sysadmin).get("/api/v1/tenants/").json()["items"]}
    assert {"acme", "beta"} <= both


def test_dealer_cannot_raise_its_own_limits(api, world):
    r = api(world.north_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 999})
    assert r.status_code == 403
    world.north.refresh_from_db()
    assert world.north.max_tenants == 20
    r = api(world.south_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 1})
    assert r.status_code == 404
    r = api(world.top_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 10})
    assert r.status_code == 200
    assert r.json()["max_tenants"] == 10
