"""The carrier snapshot: every trunk and the DID pool's assigned numbers, published to Redis
on commit as one document (``contract.CARRIERS``, announced on ``CARRIERS_CHANGED``), in the
format of the contract's :class:`~telephony.sip.contract.CarrierSnapshot`. The trunks' live
state (registration, OPTIONS) is the engine's, read back with :func:`trunk_states`.
"""

import logging

from django.db import transaction

from telephony.sip.contract import (
    CARRIERS,
    CARRIERS_CHANGED,
    ENGINE_ALIVE,
    TRUNK_CALLS,
    TRUNK_STATE,
    TRUNK_STATE_FIELDS,
    CarrierSnapshot,
    TrunkSnapshot,
    TrunkState,
)

from .store import client, redis_key

log = logging.getLogger(__name__)


def trunk_snapshot(trunk, tenants: frozenset[str]) -> TrunkSnapshot:
    return TrunkSnapshot.read(
        {
            **{f: getattr(trunk, f) for f in _TRUNK_FIELDS},
            "password": trunk.password,
            "tenants": sorted(tenants),
        }
    )


_TRUNK_FIELDS = tuple(
    f for f in TrunkSnapshot.__dataclass_fields__ if f not in ("password", "tenants")
)


def build_carriers() -> CarrierSnapshot:
    from trunks.models import DidNumber, Trunk

    trunks = {}
    for trunk in Trunk.objects.select_related("tenant").prefetch_related("shared_with"):
        schemas = {t.schema_name for t in trunk.shared_with.all()}
        if trunk.tenant is not None:
            schemas.add(trunk.tenant.schema_name)
        trunks[trunk.pk] = trunk_snapshot(trunk, frozenset(schemas))
    assigned = DidNumber.objects.filter(tenant__isnull=False, tenant__sip_domain__isnull=False)
    rows = assigned.exclude(tenant__status="deleted").values_list("number", "tenant__sip_domain")
    numbers = {number: domain for number, domain in rows if domain}
    return CarrierSnapshot(trunks=trunks, numbers=numbers)


def publish_carriers() -> None:
    """Rebuild and publish the carrier snapshot (logged on failure: the engine reads it at
    start and ``publish_all`` repairs a missed one)."""
    try:
        snapshot = build_carriers()
        pipe = client().pipeline()
        pipe.set(redis_key(CARRIERS), snapshot.to_json())
        pipe.publish(redis_key(CARRIERS_CHANGED), "1")
        pipe.execute()
    except Exception:
        log.exception("could not publish the carrier snapshot")


def publish_carriers_on_commit() -> None:
    """Once per transaction, whatever it changed."""
    queued = transaction.get_connection().run_on_commit
    if any(getattr(entry[1], "publishes_carriers", False) for entry in queued):
        return

    def publish() -> None:
        publish_carriers()

    publish.publishes_carriers = True  # type: ignore[attr-defined]
    transaction.on_commit(publish)


def trunk_states(trunk_ids) -> dict[int, dict[str, str]]:
    """Each trunk's live state as the engine last wrote it (``TRUNK_STATE_FIELDS``, plus
    ``channels``: calls in progress on it across the live engines, as the engines' channel
    limit counts them: an engine that died without a word stops counting with its heartbeat);
    ``unknown`` when no engine has checked it."""
    ids = list(trunk_ids)
    out: dict[int, dict[str, str]] = {}
    if not ids:
        return out
    try:
        redis = client(decode=True)
        pipe = redis.pipeline()
        for tid in ids:
            pipe.hgetall(redis_key(TRUNK_STATE, trunk=str(tid)))
            pipe.hgetall(redis_key(TRUNK_CALLS, trunk=str(tid)))
        replies = pipe.execute()
        engines = sorted({e for counts in replies[1::2] for e in counts})
        alive = redis.mget([redis_key(ENGINE_ALIVE, engine=e) for e in engines]) if engines else []
        live = {e for e, beat in zip(engines, alive, strict=True) if beat is not None}
    except Exception:
        log.exception("could not read the trunks' state")
        replies, live = [{}, {}] * len(ids), set()
    for i, tid in enumerate(ids):
        state, counts = replies[2 * i], replies[2 * i + 1]
        row = {name: state.get(name, "") for name in TRUNK_STATE_FIELDS}
        row["state"] = row["state"] or TrunkState.UNKNOWN
        row["channels"] = str(sum(_int(c) for e, c in counts.items() if e in live))
        out[tid] = row
    return out


def _int(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        return 0
