"""Fixtures of the contact-centre tests: the events tests' stream, fan-out and webhook
receiver, queues of tenant A, and a clean contact-centre state in Redis."""

from __future__ import annotations

import pytest

from tests.events.conftest import (  # noqa: F401 - fixtures
    clean_live,
    fanout,
    fast_webhooks,
    rds,
    receiver,
    snapshots,
    stream,
    xadd,
)

A, B = "t_acme", "t_beta"


@pytest.fixture
def clean_cc(rds):  # noqa: F811 - the imported fixture
    """Forget agent states and waiting callers (Redis outlives the database rollback)."""

    def wipe():
        for pattern in ("cc:*",):
            for key in rds.scan_iter(pattern):
                rds.delete(key)

    wipe()
    yield
    wipe()


def make_queue(number: str, agents=(), supervisors=(), **fields):
    """A queue with agents and supervisors (extension numbers), in the current schema."""
    from callcenter.models import Queue, QueueAgent
    from telephony.models import Extension

    name = fields.pop("name", f"Queue {number}")
    queue = Queue.objects.create(number=number, name=name, **fields)
    for position, n in enumerate(agents):
        QueueAgent.objects.create(
            queue=queue, extension=Extension.objects.get(number=n), position=position
        )
    queue.supervisors.set(Extension.objects.filter(number__in=list(supervisors)))
    return queue


@pytest.fixture
def acme_queues(world, in_tenant):
    """Tenant A: queue 600 (agents 101, 102; SLA 20 s at 80 %), queue 601 (agent 102)."""
    with in_tenant(world.tenant_a):
        return (
            make_queue("600", agents=("101", "102"), name="Sales"),
            make_queue("601", agents=("102",), name="Support", auto_ready=False),
        )
