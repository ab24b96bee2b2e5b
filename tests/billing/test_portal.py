"""The billing pages: the tenant's own balance, movements and invoices (downloads), never
another tenant's; a dealer sets and tops up its tenants' accounts on the provider's host, not
another dealer's."""

from datetime import date
from decimal import Decimal

import pytest

from billing.accounts import top_up
from billing.invoices import issue
from billing.models import BillingAccount
from tests.billing.conftest import make_table
from tests.portal.conftest import Portal, host_of
from tests.portal.pages import field_errors

pytestmark = pytest.mark.django_db


def test_tenant_billing_page(world, account):
    top_up(account, "2", note="Card <b>payment</b>")
    account.mode = "postpaid"
    account.save()
    invoice = issue(account, date(2026, 10, 1))
    other = issue(
        BillingAccount.objects.create(tenant=world.tenant_b, mode="postpaid"), date(2026, 10, 1)
    )
    client = Portal(host_of(world.tenant_a), world.a_admin)
    html = client.get("/portal/billing/").content.decode()
    assert "12.0000 USD" in html
    assert "Card &lt;b&gt;payment&lt;/b&gt;" in html
    assert invoice.number in html and other.number not in html  # noqa: PT018
    pdf = client.get(f"/portal/billing/invoices/{invoice.pk}/pdf/")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert client.get(f"/portal/billing/invoices/{invoice.pk}/csv/").content.startswith(
        b"started_at"
    )
    assert client.get(f"/portal/billing/invoices/{other.pk}/pdf/").status_code == 404
    assert client.get(f"/portal/billing/invoices/{invoice.pk}/exe/").status_code == 404
    assert Portal(host_of(world.tenant_a), world.a_user).get("/portal/billing/").status_code == 404


def test_dealer_tops_up_and_sets_its_tenant(world, account, sell):
    north_table = make_table("North retail", [], base=sell, dealer=world.north)
    client = Portal("localhost", world.north_admin)
    page = f"/portal/tenants/{world.tenant_a.pk}/billing/"
    assert "10.0000 USD" in client.get(page).content.decode()
    r = client.post(page, {"form": "money", "money-kind": "topup", "money-amount": "1.00001"})
    assert field_errors(r.content.decode(), "amount") == ["at most 4 decimal places"]
    r = client.post(page, {"form": "money", "money-kind": "topup", "money-amount": "4.5",
                           "money-note": "Wire"})  # fmt: skip
    assert r.status_code == 302
    account.refresh_from_db()
    assert account.balance == Decimal("14.5")
    r = client.post(page, {"form": "settings", "settings-mode": "postpaid",
                           "settings-currency": "USD", "settings-rate_table": north_table.pk,
                           "settings-credit_limit": "30", "settings-low_balance": "0",
                           "settings-low_balance_email": ""})  # fmt: skip
    assert r.status_code == 302, r.content.decode()
    account.refresh_from_db()
    assert account.rate_table == north_table
    assert (account.mode, account.credit_limit) == ("postpaid", Decimal("30"))
    # Another dealer's tenant: not there.
    south = Portal("localhost", world.south_admin)
    assert south.get(page).status_code == 404
    r = south.post(page, {"form": "money", "money-kind": "topup", "money-amount": "100"})
    assert r.status_code == 404
    account.refresh_from_db()
    assert account.balance == Decimal("14.5")
