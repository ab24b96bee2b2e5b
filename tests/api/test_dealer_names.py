"""A dealer's name reaches mail (its tenants' invitations) like a tenant's: one line, at most
120 characters. The dealer action judges it, so the API and the portal form refuse a bad name
with the same field error and store nothing."""

import pytest

from dealers.models import Dealer
from pbx.text import SINGLE_LINE_MESSAGE
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db

BAD = [
    ("Acme\r\nBcc: all@evil.test", SINGLE_LINE_MESSAGE),
    ("Acme\u202eevil", SINGLE_LINE_MESSAGE),
    ("x" * 121, "at most 120 characters"),
]


@pytest.mark.parametrize(("name", "message"), BAD)
def test_api_and_portal_refuse_a_bad_dealer_name_alike(api, world, name, message):
    r = api(world.sysadmin).post("/api/v1/dealers/", {"name": name, "max_tenants": 1})
    assert r.status_code == 400, r.content
    assert r.json()["fields"] == {"name": [message]}

    from pbx.portal.forms import DealerCreateForm

    form = {n: f.initial for n, f in DealerCreateForm().fields.items() if f.initial is not None}
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    portal = Portal("localhost", world.sysadmin)
    r = portal.post("/portal/dealers/add/", {**form, "name": name, "max_tenants": 1})
    assert r.status_code == 200
    assert r.context["form"].errors == {"name": [message]}
    assert not Dealer.objects.filter(name=name).exists()


def test_a_renamed_dealer_is_held_to_the_same_rule(api, world):
    dealer = Dealer.objects.order_by("pk").first()
    r = api(world.sysadmin).patch(f"/api/v1/dealers/{dealer.pk}/", {"name": "Two\nLines"})
    assert r.status_code == 400, r.content
    assert r.json()["fields"] == {"name": [SINGLE_LINE_MESSAGE]}
    dealer.refresh_from_db()
    assert dealer.name != "Two\nLines"
