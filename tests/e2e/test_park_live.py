"""End to end, in a real browser: the active-calls page follows pickups and parks live.

User story: the receptionist of the demo company has the active-calls page open. A call to
1002 is picked up by 1001, who parks it in slot 702: without a reload the call's row says
"picked up by 1001", then "in slot 702", and the parked calls list shows slot 702 with the
caller and who parked it; a call already parked in 701 when the page opened is listed from
the start (the engines' park slots). When 1003 takes the call out of slot 702, the slot's row
goes.

The server is the real one (uvicorn, the portal's WebSocket, the tenant's Channels group); the
test puts the events in that group as the fan-out does (its envelopes, through the same channel
layer) and the slot in the engines' hash, since the fan-out's own path is proven in
``tests/events/test_team_events.py``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, fill_sign_in

SCHEMA = "t_demo"  # seed_demo's tenant


def _send(kind: str, n: int, **data) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from events.fanout import group_name

    event = {
        "id": 900_000 + n,
        "type": kind,
        "topic": "calls",
        "tenant": "demo",
        "occurred_at": datetime.now(tz=UTC).isoformat(),
        "data": data,
    }
    message = {"type": "pbx.event", "event": event}
    # From a thread of its own: Playwright's sync API runs an event loop in this one.
    send = async_to_sync(get_channel_layer().group_send)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(send, group_name(SCHEMA), message).result(timeout=10)


@pytest.fixture
def slot_701():
    import redis
    from django.conf import settings

    from telephony.engine.store import redis_key
    from telephony.sip.contract import PARKED

    key = redis_key(PARKED, schema=SCHEMA)
    rds = redis.Redis.from_url(settings.REDIS_URL)
    entry = {"call_id": "early", "caller": "+12025550111", "caller_name": "Early bird",
             "by": "1002", "at": time.time() - 60, "engine": "e1"}  # fmt: skip
    rds.hset(key, "701", json.dumps(entry))
    yield
    rds.delete(key)
    rds.close()


@pytest.mark.e2e
def test_active_calls_follow_a_pickup_and_a_park(live_pbx, slot_701):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        page.goto(f"{base}/portal/")
        fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page).to_have_url(f"{base}/portal/dashboard/")
        page.goto(f"{base}/portal/calls/")
        expect(page.get_by_test_id("live-connection")).to_have_text("live")
        early = page.get_by_test_id("parked-701")
        expect(early).to_contain_text("+12025550111")
        expect(early).to_contain_text("Early bird")

        _send("call.started", 1, call_id="c1", caller="+12025550100", callee="1002")
        row = page.get_by_test_id("call-c1")
        expect(row).to_contain_text("+12025550100")
        _send("call.picked_up", 2, call_id="c1", by="1001", caller="+12025550100")
        expect(row).to_contain_text("picked up by 1001")
        _send("call.parked", 3, call_id="c1", slot="702", by="1001", caller="+12025550100")
        expect(row).to_contain_text("in slot 702")
        parked = page.get_by_test_id("parked-702")
        expect(parked).to_contain_text("+12025550100")
        expect(parked.locator("td").nth(3)).to_have_text("1001")
        _send("call.unparked", 4, call_id="c1", slot="702", by="1003", reason="retrieved")
        expect(parked).to_have_count(0)
        expect(row).not_to_contain_text("in slot")
        expect(early).to_be_visible()  # the other slot stays
