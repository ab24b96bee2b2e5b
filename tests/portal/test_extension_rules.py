"""One rule per field: an extension's value is judged by the extension action alone.

User story: an admin creates the same extension with the same mistake through the REST API, the
portal's form and a CSV import, and gets the same field error from each (the form once allowed a
forward target of 2 to 32 characters where the action allowed 1 to 32; the import and the
serializer had their own lengths and messages). A value one of them used to refuse and the action
accepts is now accepted everywhere.
"""

from __future__ import annotations

import html
import re

import pytest

from pbx.audit import SYSTEM
from pbx.text import SINGLE_LINE_MESSAGE

pytestmark = pytest.mark.django_db

TARGET = "an extension or phone number (digits, optional leading +)"
PHONE = "a phone number (digits, optional leading +)"
TRANSPORTS = "choose from udp, tcp, tls, ws, wss"

# (field, value as JSON for the API, value as typed in the form and the CSV file, the error)
BOTH = [
    ("forward_busy", "5", "5", None),  # one digit: the form said "2 to 32"
    ("forward_busy", "1" * 33, "1" * 33, "at most 32 characters"),
    ("forward_always", "10\r\n2", "10\r\n2", SINGLE_LINE_MESSAGE),
    ("forward_no_answer", "sip:x@evil.test", "sip:x@evil.test", TARGET),
    ("forward_no_answer", "12+3", "12+3", TARGET),
    ("no_answer_timeout", 4, "4", "5 to 120 seconds"),
    ("no_answer_timeout", 121, "121", "5 to 120 seconds"),
    ("mobile", "call me", "call me", PHONE),
    ("voicemail_pin", "12", "12", "4 to 12 digits"),
    ("voicemail_pin", "1234567890123", "1234567890123", "at most 12 characters"),
    ("email", "not-an-address", "not-an-address", "not a valid e-mail address"),
    ("display_name", "Ann\nBob", "Ann\nBob", SINGLE_LINE_MESSAGE),
    ("display_name", "x" * 121, "x" * 121, "at most 120 characters"),
    ("number", "12a4", "12a4", "digits only"),
    ("number", "12", "12", "must have 3 to 6 digits"),
]
# Fields the portal's extension form does not show: the API and the import still agree.
API_AND_CSV = [
    ("max_registrations", 0, "0", "1 to 20"),
    ("max_registrations", 21, "21", "1 to 20"),
    ("allowed_transports", ["udp", "pigeon"], "udp;pigeon", TRANSPORTS),
    ("caller_id_number", "100>;x=y", "100>;x=y", PHONE),
    ("caller_id_name", "Ann\u2028Bob", "Ann\u2028Bob", SINGLE_LINE_MESSAGE),
]


def _row(field, value, number):
    row = {"number": number, "display_name": "Rule Test"}
    row[field] = value
    return row


def _through_api(api, world, field, value, number="7701"):
    r = api(world.a_admin, world.tenant_a).post("/api/v1/extensions/", _row(field, value, number))
    if r.status_code == 201:
        return {}
    assert r.status_code == 400, r.content
    return {name: messages[0] for name, messages in r.json()["fields"].items()}


def _through_portal(portal, world, field, value, number="7702"):
    data = {"no_answer_timeout": "20", "enabled": "on", **_row(field, value, number)}
    r = portal(world.a_admin, world.tenant_a).post("/portal/extensions/add/", data)
    found = re.findall(r'data-field="(\w+)">([^<]*)<', r.content.decode())
    errors = {name: html.unescape(message) for name, message in found}
    assert errors or b"Add another" in r.content, r.content  # the "created" page
    return errors


def _through_csv(in_tenant, world, field, value, number="7703"):
    from pbx.imports import do_dry_run_import

    row = _row(field, value, number)
    cells = ['"{}"'.format(str(v).replace('"', '""')) for v in row.values()]
    data = (",".join(row) + "\n" + ",".join(cells) + "\n").encode()
    with in_tenant(world.tenant_a):
        job = do_dry_run_import(kind="extensions", data=data, filename="x.csv", actor=SYSTEM)
    return {e["column"]: e["message"] for e in job.errors if e["row"] == 2}


@pytest.mark.parametrize(("field", "api_value", "typed", "message"), BOTH)
def test_api_portal_and_csv_give_the_same_field_error(
    api, portal, world, in_tenant, field, api_value, typed, message
):
    expected = {} if message is None else {field: message}
    assert _through_api(api, world, field, api_value) == expected
    assert _through_portal(portal, world, field, typed) == expected
    assert _through_csv(in_tenant, world, field, typed) == expected


@pytest.mark.parametrize(("field", "api_value", "typed", "message"), API_AND_CSV)
def test_api_and_csv_give_the_same_field_error(
    api, world, in_tenant, field, api_value, typed, message
):
    assert _through_api(api, world, field, api_value) == {field: message}
    assert _through_csv(in_tenant, world, field, typed) == {field: message}


def test_a_value_every_way_accepts_is_stored_alike(api, portal, world, in_tenant):
    from telephony.models import Extension

    _through_api(api, world, "forward_busy", "5")
    _through_portal(portal, world, "forward_busy", "5")
    with in_tenant(world.tenant_a):
        stored = dict(
            Extension.objects.filter(number__in=("7701", "7702")).values_list(
                "number", "forward_busy"
            )
        )
    assert stored == {"7701": "5", "7702": "5"}
