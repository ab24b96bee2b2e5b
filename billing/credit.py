"""The prepaid credit the engine checks calls against (``contract.CREDIT`` / ``CREDIT_HELD``).

After every commit that moves a tenant's balance (a charge, a top-up, an adjustment, a change
of its account) and at each snapshot publish, the tenant's ``CREDIT`` hash gets ``balance`` and
``limit`` in MONEY_SCALE units. A charge's write also deletes the holds the engine kept for the
calls it charged, in the same Lua script, so the available credit (balance + limit - holds)
never counts a call twice (held and charged) nor misses it (neither).

Writes can arrive out of order (two workers commit charges of one account and publish after
their commits in the other order): each carries the ``version`` of the balance it writes (the
account's ``updated_at`` in microseconds, set under the account's row lock), and an older
version never overwrites a newer one. Its holds are deleted all the same: the newer balance
already includes those charges.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from telephony.engine.store import client, redis_key
from telephony.sip.contract import CREDIT, CREDIT_HELD, MONEY_SCALE, BillingMode

from .models import BillingAccount
from .money import to_units

log = logging.getLogger(__name__)

# KEYS: credit hash, held hash. ARGV: balance, limit, version, call ids whose hold goes.
_WRITE = """
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if tonumber(ARGV[3]) >= v then
  redis.call('HSET', KEYS[1], 'balance', ARGV[1], 'limit', ARGV[2], 'version', ARGV[3])
end
for i = 4, #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return 1
"""


def credit_key(schema: str) -> str:
    return redis_key(CREDIT, schema=schema)


def held_key(schema: str) -> str:
    return redis_key(CREDIT_HELD, schema=schema)


def touch(account: BillingAccount) -> None:
    """Mark a change of the locked ``account``: a later ``updated_at`` (so a later version)
    than the one it had, even if the clock stood still."""
    account.updated_at = max(timezone.now(), account.updated_at + timedelta(microseconds=1))


def version_of(account: BillingAccount) -> int:
    return int(account.updated_at.timestamp() * 1_000_000)


def limit_units(account: BillingAccount) -> int:
    """How far below zero the balance may go: the credit limit for postpaid, 0 otherwise."""
    if account.mode == BillingMode.POSTPAID:
        return max(0, to_units(account.credit_limit))
    return 0


def write(
    schema: str, *, balance: int, limit: int, version: int, charged: Iterable[str] = ()
) -> None:
    """One tenant's credit (units) and the holds of ``charged`` calls gone, atomically."""
    redis = client()
    redis.eval(
        _WRITE,
        2,
        credit_key(schema),
        held_key(schema),
        str(balance),
        str(limit),
        str(version),
        *charged,
    )


def write_account(account: BillingAccount, charged: Iterable[str] = ()) -> None:
    """``account``'s balance as it is in memory (as its transaction left it). Failures are
    logged: the next movement or snapshot publish writes it again."""
    try:
        write(
            account.tenant.schema_name,
            balance=int(account.balance * MONEY_SCALE),  # four places: exact
            limit=limit_units(account),
            version=version_of(account),
            charged=charged,
        )
    except Exception:
        log.exception("could not write the credit of tenant %s", account.tenant_id)


@dataclass
class _Pending:
    """One account's credit write waiting for the commit."""

    account: BillingAccount
    charged: list[str] = field(default_factory=list)
    done: bool = False


def sync_on_commit(account: BillingAccount, charged: Iterable[str] = ()) -> None:
    """Write ``account``'s credit once the transaction commits, with the values it has now
    (call this after the change, under the account's row lock); ``charged``: call ids whose
    holds go with it. Several changes of one account in one transaction write once, the last
    values and every charged call."""
    for entry in transaction.get_connection().run_on_commit:
        pending = getattr(entry[1], "credit_account", None)
        if pending is not None and pending.account.pk == account.pk and not pending.done:
            pending.account = account
            pending.charged.extend(charged)
            return
    state = _Pending(account, list(charged))

    def publish() -> None:
        state.done = True
        write_account(state.account, state.charged)

    publish.credit_account = state  # type: ignore[attr-defined]
    transaction.on_commit(publish)


def sync_tenant(tenant) -> None:
    """Write the tenant's credit from the database (at snapshot publish); no account: none."""
    account = BillingAccount.objects.filter(tenant_id=tenant.pk).first()
    if account is None:
        try:
            client().delete(credit_key(tenant.schema_name))
        except Exception:
            log.exception("could not clear the credit of tenant %s", tenant.pk)
        return
    account.tenant = tenant
    write_account(account)
