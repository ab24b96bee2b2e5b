"""Webhooks: created over the API, delivered signed and in order to a real HTTP receiver that is
first down, then failing, then up; retried with growing back-off; logged; replayable."""

from __future__ import annotations

import pytest

from events.actions import NewEvent, do_append_events
from events.models import WebhookDelivery
from events.tasks import run_endpoint
from events.webhooks import backoff_seconds, sign, verify_signature
from tests.events.helpers import wait_until

A = "t_acme"


def _events(in_tenant, tenant, n: int, start: int = 0) -> list[int]:
    with in_tenant(tenant):
        return [
            e.pk
            for e in do_append_events(
                [NewEvent("call.ended", {"call_id": f"c{start + i}"}) for i in range(n)]
            )
        ]


def _deliveries(in_tenant, tenant, endpoint_id: int) -> list[WebhookDelivery]:
    with in_tenant(tenant):
        return list(
            WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
            .select_related("event")
            .order_by("id")
        )


def _create(api, world, receiver, **extra) -> dict:
    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "event_types": ["calls"], "description": "CRM", **extra},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_")
    receiver.secret = body["secret"]
    return body


def test_down_then_failing_then_up_in_order_signed_logged_and_replayed(
    world, api, in_tenant, receiver, fast_webhooks, clean_live, django_capture_on_commit_callbacks
):
    """User story: a tenant's CRM receives call events. Its server is down for a while, then
    answers 500, then recovers: every event arrives, once accepted, in order, signed; the log
    shows the attempts; and the admin can replay from an event after restoring a backup."""
    hook = _create(api, world, receiver)
    with django_capture_on_commit_callbacks() as kicks:
        ids = _events(in_tenant, world.tenant_a, 3)
    assert len(kicks) == 1  # one delivery run queued on commit for the endpoint

    # Down: connection refused. Only the head is tried; the others wait behind it.
    delay = run_endpoint(A, hook["id"])
    assert delay is not None
    assert delay > 0
    first, second, third = _deliveries(in_tenant, world.tenant_a, hook["id"])
    assert (first.event_id, first.attempt, first.state, first.status_code) == (
        ids[0],
        1,
        "pending",
        None,
    )
    assert "ConnectError" in first.error
    assert second.attempt == third.attempt == 0

    # Failing: 500. Back-off grows (exponential with jitter) between attempts.
    receiver.start("fail")
    delays = []

    def attempts_reach(n):
        run_endpoint(A, hook["id"])
        head = _deliveries(in_tenant, world.tenant_a, hook["id"])[0]
        if head.last_attempt_at and (not delays or delays[-1][0] != head.attempt):
            delays.append(
                (head.attempt, (head.next_attempt_at - head.last_attempt_at).total_seconds())
            )
        return head.attempt >= n

    wait_until(lambda: attempts_reach(4))
    head = _deliveries(in_tenant, world.tenant_a, hook["id"])[0]
    assert (head.status_code, head.response_excerpt, head.state) == (
        500,
        "receiver error",
        "pending",
    )
    assert delays
    for attempt, seconds in delays:
        nominal = 0.05 * 2 ** (attempt - 1)
        assert 0.75 * nominal <= seconds <= 1.25 * nominal + 0.01, (attempt, seconds)
    assert [s for _, s in delays] == sorted(s for _, s in delays)
    assert all(r["body"]["id"] == ids[0] for r in receiver.requests)  # nothing overtook it

    # Up: everything goes, in order, each signed.
    receiver.mode = "up"
    wait_until(lambda: run_endpoint(A, hook["id"]) is None and len(receiver.accepted) == 3)
    assert [r["body"]["id"] for r in receiver.accepted] == ids
    assert all(r["signed"] for r in receiver.requests)
    sample = receiver.accepted[0]
    assert sample["body"]["type"] == "call.ended"
    assert sample["body"]["tenant"] == "acme"
    assert sample["headers"]["X-PBX-Event-Id"] == str(ids[0])
    assert sample["headers"]["User-Agent"].endswith(" webhooks")

    log = api(world.a_admin, world.tenant_a).get(
        "/api/v1/webhook-deliveries/", {"endpoint": hook["id"]}
    )
    assert log.status_code == 200
    items = log.json()["items"]
    assert [(i["event"], i["state"], i["status_code"]) for i in reversed(items)] == [
        (ids[0], "delivered", 200),
        (ids[1], "delivered", 200),
        (ids[2], "delivered", 200),
    ]
    assert items[-1]["attempt"] >= 5
    assert items[0]["attempt"] == 1

    # Replay from the second event: exactly the second and third are sent again.
    receiver.accepted.clear()
    replay = api(world.a_admin, world.tenant_a).post(
        f"/api/v1/webhooks/{hook['id']}/replay/", {"from_event_id": ids[1]}
    )
    assert replay.status_code == 202, replay.json()
    assert replay.json() == {"queued": 2}
    wait_until(lambda: run_endpoint(A, hook["id"]) is None and len(receiver.accepted) == 2)
    assert [r["body"]["id"] for r in receiver.accepted] == ids[1:]
    assert {d.replay for d in _deliveries(in_tenant, world.tenant_a, hook["id"])[3:]} == {True}


def test_only_matching_types_are_queued_and_disabled_endpoints_wait(
    world, api, in_tenant, receiver, fast_webhooks, clean_live
):
    receiver.start("up")
    hook = _create(api, world, receiver, event_types=["extension.status"])
    with in_tenant(world.tenant_a):
        do_append_events(
            [
                NewEvent("call.started", {"call_id": "x"}),
                NewEvent("extension.status", {"extension": "101", "online": True}),
            ]
        )
    assert [d.event.type for d in _deliveries(in_tenant, world.tenant_a, hook["id"])] == [
        "extension.status"
    ]
    paused = api(world.a_admin, world.tenant_a).patch(
        f"/api/v1/webhooks/{hook['id']}/", {"enabled": False}
    )
    assert paused.status_code == 200
    assert run_endpoint(A, hook["id"]) is None
    assert receiver.requests == []
    api(world.a_admin, world.tenant_a).patch(f"/api/v1/webhooks/{hook['id']}/", {"enabled": True})
    wait_until(lambda: run_endpoint(A, hook["id"]) is None and len(receiver.accepted) == 1)


def test_gone_receiver_is_given_up_and_the_queue_moves_on(
    world, api, in_tenant, receiver, fast_webhooks, clean_live, settings
):
    settings.PBX_WEBHOOK_MAX_ATTEMPTS = 2
    hook = _create(api, world, receiver)
    ids = _events(in_tenant, world.tenant_a, 2)
    receiver.start("fail")
    wait_until(
        lambda: (
            run_endpoint(A, hook["id"]) is None
            and all(d.state == "failed" for d in _deliveries(in_tenant, world.tenant_a, hook["id"]))
        )
    )
    assert [r["body"]["id"] for r in receiver.requests] == [ids[0], ids[0], ids[1], ids[1]]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "http://127.0.0.1:8000/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://user:pw@hooks.example.com/",
    ],
)
def test_unsafe_urls_are_refused(world, api, url):
    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/", {"url": url, "event_types": ["calls"]}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "url" in response.json()["fields"]


def test_loopback_is_allowed_only_by_setting(world, api, settings):
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    assert api(world.a_admin, world.tenant_a).post("/api/v1/webhooks/", body).status_code == 400
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    assert api(world.a_admin, world.tenant_a).post("/api/v1/webhooks/", body).status_code == 201


def test_unknown_event_types_are_refused(world, api, fast_webhooks):
    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/", "event_types": ["call.teleported"]}
    )
    assert response.status_code == 400
    assert "event_types" in response.json()["fields"]


def test_webhooks_are_the_host_tenants_own(world, api, in_tenant, fast_webhooks, receiver):
    hook = _create(api, world, receiver)
    _events(in_tenant, world.tenant_a, 1)
    beta = api(world.b_admin, world.tenant_b)
    assert beta.get(f"/api/v1/webhooks/{hook['id']}/").status_code == 404
    assert beta.get("/api/v1/webhooks/").json()["total"] == 0
    assert beta.post(
        f"/api/v1/webhooks/{hook['id']}/replay/", {"from_event_id": 1}
    ).status_code == (404)
    assert beta.get("/api/v1/events/").json()["items"] == []
    # A's admin on B's host is not signed in there at all.
    assert api(world.a_admin, world.tenant_b).get("/api/v1/webhooks/").status_code == 401
    # A tenant user without webhooks.manage may not look.
    assert api(world.a_user, world.tenant_a).get("/api/v1/webhooks/").status_code == 403
    assert api(world.a_user, world.tenant_a).get("/api/v1/events/").status_code == 403
    # Listing never shows the secret.
    listed = api(world.a_admin, world.tenant_a).get("/api/v1/webhooks/").json()["items"]
    assert listed
    assert all("secret" not in item for item in listed)


def test_outbox_is_cursor_paginated_and_resumable(world, api, in_tenant):
    ids = _events(in_tenant, world.tenant_a, 5)
    client = api(world.a_admin, world.tenant_a)
    page = client.get("/api/v1/events/", {"limit": 2, "after": ids[0]}).json()
    assert [e["id"] for e in page["items"]] == ids[1:3]
    assert page["items"][0]["data"] == {"call_id": "c1"}
    nxt = client.get(page["next"].split("acme.test", 1)[1]).json()
    assert [e["id"] for e in nxt["items"]] == ids[3:5]


def test_replay_needs_an_existing_event(world, api, fast_webhooks, receiver):
    hook = _create(api, world, receiver)
    response = api(world.a_admin, world.tenant_a).post(
        f"/api/v1/webhooks/{hook['id']}/replay/", {"from_event_id": 10**9}
    )
    assert response.status_code == 404


def test_rotating_the_secret_shows_the_new_one_once(world, api, fast_webhooks, receiver):
    hook = _create(api, world, receiver)
    rotated = api(world.a_admin, world.tenant_a).patch(
        f"/api/v1/webhooks/{hook['id']}/", {"rotate_secret": True}
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in ("", hook["secret"])


def test_signature_and_backoff_rules():
    body = b'{"id":1}'
    header = sign("whsec_x", body)
    assert verify_signature("whsec_x", header, body)
    assert not verify_signature("whsec_y", header, body)
    assert not verify_signature("whsec_x", header, body + b" ")
    assert not verify_signature("whsec_x", sign("whsec_x", body, timestamp=1), body)  # stale
    assert not verify_signature("whsec_x", "garbage", body)
    for attempt in range(1, 8):
        nominal = min(3600.0, 10.0 * 2 ** (attempt - 1))
        assert 0.75 * nominal <= backoff_seconds(attempt) <= 1.25 * nominal
    assert backoff_seconds(30) <= 1.25 * 3600


def test_the_task_delivers_and_schedules_one_delayed_run(
    world, api, in_tenant, receiver, fast_webhooks, clean_live
):
    from events.tasks import deliver_webhooks
    from events.webhooks import claim_schedule, release_schedule

    receiver.start("up")
    hook = _create(api, world, receiver)
    _events(in_tenant, world.tenant_a, 2)
    deliver_webhooks.run(A, hook["id"])  # the task body, as a worker runs it
    assert len(receiver.accepted) == 2

    # However many events arrive during an outage, one delayed run is kept: the earliest.
    assert claim_schedule(A, hook["id"], 10.0)
    assert not claim_schedule(A, hook["id"], 20.0)
    assert claim_schedule(A, hook["id"], 1.0)
    release_schedule(A, hook["id"])
    assert claim_schedule(A, hook["id"], 20.0)


def test_old_events_are_pruned(world, in_tenant):
    from datetime import timedelta

    from django.utils import timezone

    from events.models import OutboxEvent
    from events.tasks import prune_outbox

    old, new = _events(in_tenant, world.tenant_a, 2)
    with in_tenant(world.tenant_a):
        OutboxEvent.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=40))
    assert prune_outbox(days=30) >= 1
    with in_tenant(world.tenant_a):
        assert list(OutboxEvent.objects.filter(pk__in=[old, new]).values_list("pk", flat=True)) == [
            new
        ]


def test_private_networks_are_refused_unless_listed(world, api, settings):
    """An on-premise CRM on a private address: refused by default (no SSRF into the provider's
    networks), allowed once the operator lists its network in PBX_WEBHOOK_ALLOWED_NETWORKS."""
    client = api(world.a_admin, world.tenant_a)
    crm = {"url": "http://10.1.2.3:8080/hook", "event_types": ["calls"]}
    other = {"url": "http://10.1.3.3/hook", "event_types": ["calls"]}
    assert client.post("/api/v1/webhooks/", crm).status_code == 400
    settings.PBX_WEBHOOK_ALLOWED_NETWORKS = ["10.1.2.0/24", "fd00:1::/64"]
    assert client.post("/api/v1/webhooks/", crm).status_code == 201
    refused = client.post("/api/v1/webhooks/", other)
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"url": ["address not allowed"]}
    # Metadata (link-local) stays refused: only the listed networks open up.
    meta = {"url": "http://169.254.169.254/", "event_types": ["calls"]}
    assert client.post("/api/v1/webhooks/", meta).status_code == 400


def test_a_listed_network_is_also_delivered_to(world, api, in_tenant, receiver, settings):
    """The same list lets the delivery through (checked again at send time), with loopback
    otherwise closed."""
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = False
    settings.PBX_WEBHOOK_ALLOWED_NETWORKS = "127.0.0.0/8"  # the environment's string form
    receiver.start("up")
    hook = _create(api, world, receiver)
    _events(in_tenant, world.tenant_a, 1)
    assert run_endpoint(A, hook["id"]) is None
    assert len(receiver.accepted) == 1


def test_webhook_texts_are_one_line(world, api, fast_webhooks):
    client = api(world.a_admin, world.tenant_a)
    response = client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/", "event_types": ["*"], "description": "CRM\r\nX: y"},
    )
    assert response.status_code == 400
    assert "description" in response.json()["fields"]
