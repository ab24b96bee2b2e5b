"""Agents' current states, read from the contract's ``AGENTS`` hash (the engine and
``callcenter.actions.do_set_agent_state`` write it): for the API, the portal and the
wallboard."""

from __future__ import annotations

from collections.abc import Iterable

from telephony.sip import contract

from .choices import AgentState
from .models import Queue

__all__ = ["agent_states", "default_status"]


def default_status(queue: Queue) -> contract.AgentStatus:
    """An agent's state in ``queue`` while none is stored (``contract.Queue.default_status``:
    ready when the queue's ``auto_ready``, else logged out)."""
    return contract.AgentStatus(
        state=AgentState.READY if queue.auto_ready else AgentState.LOGGED_OUT
    )


def agent_states(
    queues: Iterable[Queue], *, redis=None
) -> dict[tuple[str, str], contract.AgentStatus]:
    """(queue number, extension number) -> the agent's status as stored (a wrap-up that is
    over reads as over through ``AgentStatus.effective``), for every agent of ``queues``
    (prefetch ``agents__extension`` to save queries); the queue's default where none is
    stored or it cannot be read. Run inside the tenant's schema."""
    from pbx.tenancy import current_schema
    from telephony.engine.store import client, redis_key

    pairs: list[tuple[Queue, str]] = [
        (q, a.extension.number) for q in queues for a in q.agents.all()
    ]
    if not pairs:
        return {}
    key = redis_key(contract.AGENTS, schema=current_schema())
    fields = [contract.agent_field(q.number, ext) for q, ext in pairs]
    if redis is not None:
        raw = redis.hmget(key, fields)
    else:
        with client() as own:
            raw = own.hmget(key, fields)
    out: dict[tuple[str, str], contract.AgentStatus] = {}
    for (q, ext), value in zip(pairs, raw, strict=True):
        status = contract.AgentStatus.read(value) if value is not None else None
        out[(q.number, ext)] = status if status is not None else default_status(q)
    return out
