"""SIP PnP through the management command's responder, over UDP on loopback.

User story: a factory-fresh Yealink whose MAC an admin has added boots on the LAN, multicasts a
ua-profile SUBSCRIBE and is told its own token URL on its tenant's host; following that URL
over HTTP it gets its configuration. An unknown MAC, or a phone whose window has closed, is
answered 404 and told nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from provisioning import delivery
from provisioning.management.servers import pnp_responder

from .conftest import HOST_A, HOST_B, USER_AGENTS, sip_password
from .test_pnp import answer, receive, subscribe

pytestmark = pytest.mark.django_db

MAC = "001565a1b2c3"


@pytest.fixture
def pnp(share_connection) -> Iterator[tuple[str, int]]:
    thread = pnp_responder(
        "127.0.0.1", 0, url_for=share_connection(delivery.pnp_url_for), t1=0.1, timer_f=0.8
    )
    address = thread.start()
    yield address
    thread.stop()


@pytest.fixture
def sip_phone() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    yield sock
    sock.close()


def ask(sip_phone: socket.socket, pnp: tuple[str, int], mac: str = MAC):
    sip_phone.sendto(subscribe(sip_phone, user=f"MAC%3a{mac}")[0], pnp)
    return receive(sip_phone)


def test_known_phone_is_told_its_token_url_and_fetches_it(pw, add_device, pnp, sip_phone, phone):
    device = add_device(MAC, "yealink-t54w", lines=("301",))
    assert ask(sip_phone, pnp).status == 200
    notify = receive(sip_phone)
    assert notify.method == "NOTIFY"
    url = notify.body.decode()
    # No request to take it from: the web listener (plain HTTP on PBX_HTTP_PORT).
    assert url == f"http://{HOST_A}:{settings.PBX_HTTP_PORT}/prov/{device.token}/"
    answer(sip_phone, notify, pnp)
    # The phone appends its file name and fetches over HTTP on the tenant's host.
    path = url.split(f"{HOST_A}:{settings.PBX_HTTP_PORT}", 1)[1] + f"{MAC}.cfg"
    response = phone(user_agent=USER_AGENTS["yealink-t54w"]).get(path)
    assert response.status_code == 200
    assert sip_password("301") in response.content.decode()


def test_other_tenants_phone_gets_its_own_host(pw, add_device, pnp, sip_phone):
    device = add_device(MAC, "yealink-t54w", lines=("401",), tenant=pw.tenant_b)
    assert ask(sip_phone, pnp).status == 200
    notify = receive(sip_phone)
    assert notify.body.decode() == f"http://{HOST_B}:{settings.PBX_HTTP_PORT}/prov/{device.token}/"
    answer(sip_phone, notify, pnp)


def test_unknown_mac_gets_404(pw, pnp, sip_phone):
    assert ask(sip_phone, pnp, "001565ffffff").status == 404


def test_closed_window_gets_404(pw, add_device, pnp, sip_phone):
    add_device(MAC, "yealink-t54w", provisioning_until=timezone.now() - timedelta(seconds=1))
    assert ask(sip_phone, pnp).status == 404


def test_allow_listed_phone_is_answered_after_the_window(pw, add_device, pnp, sip_phone):
    past = timezone.now() - timedelta(seconds=1)
    add_device(MAC, "yealink-t54w", provisioning_until=past, allowed_networks=["127.0.0.1/32"])
    assert ask(sip_phone, pnp).status == 200
    answer(sip_phone, receive(sip_phone), pnp)
