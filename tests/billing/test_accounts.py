"""Top-ups and adjustments (validation, ledger), account settings, the engine's snapshot and
credit after each change, rate changes republishing every tenant of a table once, and the
low-balance mail."""

from decimal import Decimal

import pytest

from billing.accounts import adjust, configure, rate_tables_changed, top_up
from billing.credit import credit_key
from billing.models import BillingAccount, LedgerEntry, Rate
from pbx.celery import app
from pbx.errors import ValidationFailed
from telephony.engine.snapshots import published_snapshot
from tests.billing.conftest import make_table
from tests.billing.test_charging import call

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "field_error"),
    [
        ("0", "must be > 0"),
        ("-5", "must be > 0"),
        ("1.00001", "at most 4 decimal places"),
        ("ten", "enter a number"),
        ("NaN", "enter a number"),
        ("Infinity", "enter a number"),
        ("", "enter a number"),
        (None, "enter a number"),
        ("1e12", "too large"),
    ],
)
def test_top_up_refuses_bad_amounts(world, account, amount, field_error):
    with pytest.raises(ValidationFailed) as caught:
        top_up(account, amount)
    assert caught.value.fields == {"amount": [field_error]}
    account.refresh_from_db()
    assert account.balance == Decimal("10")
    assert not LedgerEntry.objects.filter(account=account).exists()


def test_top_up_and_adjust_write_the_ledger(world, account):
    entry = top_up(account, "2.5", note="Card\r\npayment\x07 #42")
    assert (entry.kind, entry.amount, entry.balance_after) == (
        "topup",
        Decimal("2.5"),
        Decimal("12.5"),
    )
    assert entry.description == "Card payment #42"  # one printable line
    adj = adjust(account, "-0.5000", note="refund of a test call")
    assert (adj.amount, adj.balance_after) == (Decimal("-0.5"), Decimal("12"))
    with pytest.raises(ValidationFailed) as caught:
        adjust(account, "0", note="x")
    assert "amount" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        adjust(account, "1", note="  ")
    assert "note" in caught.value.fields
    account.refresh_from_db()
    assert account.balance == Decimal("12")


def test_settings_validation(world, account):
    other_dealers = make_table("South only", [("1", "1", 60, 60)], dealer=world.south)
    with pytest.raises(ValidationFailed) as caught:
        configure(
            account,
            {"mode": "gold", "currency": "us", "credit_limit": "-1", "low_balance": "x",
             "low_balance_email": "not-mail", "rate_table": other_dealers.pk},
            dealer=world.north,
        )  # fmt: skip
    assert set(caught.value.fields) == {
        "mode",
        "currency",
        "credit_limit",
        "low_balance",
        "low_balance_email",
        "rate_table",
    }
    account.refresh_from_db()
    assert account.mode == "prepaid"


def test_account_change_publishes_snapshot_and_credit(
    world, account, sell, r, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        configure(account, {"mode": "postpaid", "credit_limit": "25", "currency": "eur"})
    snap = published_snapshot(r, world.tenant_a.sip_domain)
    assert (snap.billing.mode, snap.billing.currency) == ("postpaid", "EUR")
    assert snap.billing.rate_for("+442071234567").prefix == "4420"
    assert r.hgetall(credit_key(world.tenant_a.schema_name))["limit"] == "250000"
    with django_capture_on_commit_callbacks(execute=True):
        configure(account, {"mode": "none"})
    snap = published_snapshot(r, world.tenant_a.sip_domain)
    assert snap.billing.mode == "none"
    assert snap.billing.rates == {}


def test_rate_change_republishes_every_tenant_once(
    world, account, sell, r, django_capture_on_commit_callbacks
):
    """Tenants on a table derived from the changed one are republished too; many changed rows
    make one publish of each tenant."""
    derived = make_table("Beta retail", [], base=sell, markup_percent=Decimal("10"))
    BillingAccount.objects.create(tenant=world.tenant_b, mode="prepaid", rate_table=derived)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for prefix in ("331", "332", "333"):
            Rate.objects.create(table=sell, prefix=prefix, per_minute=Decimal("0.2"))
        rate_tables_changed(sell.pk)
    publishers = [c for c in callbacks if hasattr(c, "billing_tenants")]
    assert len(publishers) == 1
    assert publishers[0].billing_tenants == {world.tenant_a.pk, world.tenant_b.pk}
    a = published_snapshot(r, world.tenant_a.sip_domain).billing.rate_for("3325")
    b = published_snapshot(r, world.tenant_b.sip_domain).billing.rate_for("3325")
    assert (a.per_minute, b.per_minute) == (2000, 2200)  # the markup on top


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(app.conf, "task_always_eager", True)


def test_low_balance_mail_sent_once(
    world, account, trunk, in_tenant, eager, mailoutbox, django_capture_on_commit_callbacks
):
    from telephony.engine.cdr import apply_events

    account.low_balance = Decimal("9.9")
    account.low_balance_email = "billing@acme.test"
    account.save()
    schema = world.tenant_a.schema_name

    def charge(call_id):
        with django_capture_on_commit_callbacks(execute=True), in_tenant(world.tenant_a):
            apply_events(call_id, call(schema, call_id, "15551234567", 3000, trunk.pk))

    charge("lb-1")  # 10 -> 9.50: below 9.90
    charge("lb-2")  # 9.00: still below, no second mail
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["billing@acme.test"]
    assert "9.00" not in message.body
    assert "9.50 USD" in message.body
    assert "Acme" in message.body
    with django_capture_on_commit_callbacks(execute=True):
        top_up(account, "5")  # 14: above the level again, the mark is reset
    account.refresh_from_db()
    assert account.low_balance_sent_at is None
    for n in range(3, 13):  # down below 9.90 again
        charge(f"lb-{n}")
    assert len(mailoutbox) == 2


def test_low_balance_mail_goes_to_the_tenant_admins(
    world, account, trunk, in_tenant, eager, mailoutbox, django_capture_on_commit_callbacks
):
    from telephony.engine.cdr import apply_events

    account.low_balance = Decimal("100")
    account.save()
    schema = world.tenant_a.schema_name
    with django_capture_on_commit_callbacks(execute=True), in_tenant(world.tenant_a):
        apply_events("lb-a", call(schema, "lb-a", "15551234567", 30, trunk.pk))
    assert [m.to for m in mailoutbox] == [[world.a_admin.email]]


def test_snapshot_publish_writes_the_credit(world, account, r):
    from telephony.engine.snapshots import publish_tenant

    key = credit_key(world.tenant_a.schema_name)
    r.delete(key)
    publish_tenant(world.tenant_a.pk)
    assert r.hget(key, "balance") == "100000"
    assert published_snapshot(r, world.tenant_a.sip_domain).billing.mode == "prepaid"
    account.delete()
    publish_tenant(world.tenant_a.pk)  # no account: no credit, billing off
    assert not r.exists(key)
    assert published_snapshot(r, world.tenant_a.sip_domain).billing.mode == "none"


def test_low_balance_mail_not_sent_is_not_marked(world, account, settings):
    """The mail server refuses: the warning stays due, for the next charge to retry."""
    from billing.tasks import send_low_balance
    from tests.conftest import closed_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    account.low_balance = Decimal("50")
    account.save()
    with pytest.raises(ConnectionRefusedError):
        send_low_balance(account.pk)
    account.refresh_from_db()
    assert account.low_balance_sent_at is None


def test_many_tenants_are_republished_by_the_workers(
    world, account, sell, r, eager, monkeypatch, django_capture_on_commit_callbacks
):
    import billing.accounts

    monkeypatch.setattr(billing.accounts, "INLINE_PUBLISHES", 1)
    monkeypatch.setattr(billing.accounts, "PUBLISH_CHUNK", 1)
    BillingAccount.objects.create(tenant=world.tenant_b, mode="prepaid", rate_table=sell)
    with django_capture_on_commit_callbacks(execute=True):
        Rate.objects.create(table=sell, prefix="3399", per_minute=Decimal("0.3"))
        rate_tables_changed(sell.pk)
    for tenant in (world.tenant_a, world.tenant_b):
        snap = published_snapshot(r, tenant.sip_domain)
        assert snap.billing.rate_for("33991").per_minute == 3000
