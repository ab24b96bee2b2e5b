"""Phones fetching over TFTP from the management command's server, with a real TFTP client.

User story: a Cisco 79xx (TFTP only) is added in the portal; when it boots inside its
provisioning window it fetches ``SEP<MAC>.cnf.xml`` over TFTP and gets its own lines. An
unknown MAC, a phone whose window has closed, or one outside its allow-list gets "file not
found", and the server refuses uploads.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import tftpy
from django.utils import timezone

from provisioning import delivery
from provisioning.management.servers import tftp_server
from provisioning.models import Device, DeviceStatus

from .conftest import sip_password

pytestmark = pytest.mark.django_db

MAC = "001ec7a1b2c3"
NAME = f"SEP{MAC.upper()}.cnf.xml"


@pytest.fixture
def server(share_connection) -> Iterator[tuple[str, int]]:
    thread = tftp_server("127.0.0.1", 0, lookup=share_connection(delivery.tftp_lookup))
    address = thread.start()
    yield address
    thread.stop()


def fetch(server: tuple[str, int], name: str, target: Path) -> bytes | None:
    client = tftpy.TftpClient(server[0], server[1])
    try:
        client.download(name, str(target), timeout=2, retries=1)
    except tftpy.TftpException:
        return None
    return target.read_bytes()


def test_cisco_79xx_fetches_its_file_over_tftp(pw, add_device, server, tmp_path, in_tenant):
    device = add_device(MAC, "cisco-7961g", lines=("301", "302"))
    content = fetch(server, NAME, tmp_path / "a.xml")
    assert content is not None
    text = content.decode()
    assert sip_password("301") in text
    assert sip_password("302") in text
    assert "sip.phonea.test" in text
    with in_tenant(pw.tenant_a):
        row = Device.objects.get(pk=device.pk)
    assert row.status == DeviceStatus.PROVISIONED
    assert row.last_fetch_address == "127.0.0.1"
    assert row.last_fetch_user_agent == "TFTP"
    assert row.last_fetch_file == NAME


def test_tftp_hpa_client_gets_the_same_file(pw, add_device, server, tmp_path):
    add_device(MAC, "cisco-7961g", lines=("301",))
    target = tmp_path / "hpa.xml"
    result = subprocess.run(
        ["tftp", "-m", "octet", server[0], str(server[1]), "-c", "get", NAME, str(target)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert "Error" not in result.stdout + result.stderr
    assert sip_password("301") in target.read_text()


def test_unknown_mac_is_not_found(pw, server, tmp_path):
    assert fetch(server, "SEP001EC7FFFFFF.cnf.xml", tmp_path / "x") is None


def test_closed_window_is_not_served(pw, add_device, server, tmp_path):
    add_device(MAC, "cisco-7961g", provisioning_until=timezone.now() - timedelta(seconds=1))
    assert fetch(server, NAME, tmp_path / "x") is None


def test_allow_list_opens_tftp_after_the_window(pw, add_device, server, tmp_path):
    past = timezone.now() - timedelta(seconds=1)
    add_device(MAC, "cisco-7961g", provisioning_until=past, allowed_networks=["127.0.0.0/8"])
    assert fetch(server, NAME, tmp_path / "x") is not None


def test_outside_the_allow_list_is_refused_even_in_the_window(pw, add_device, server, tmp_path):
    add_device(MAC, "cisco-7961g", allowed_networks=["10.0.0.0/8"])
    assert fetch(server, NAME, tmp_path / "x") is None


def test_other_tenants_device_is_found_by_its_mac(pw, add_device, server, tmp_path):
    add_device(MAC, "cisco-7961g", lines=("401",), tenant=pw.tenant_b)
    content = fetch(server, NAME, tmp_path / "b.xml")
    assert content is not None
    assert sip_password("401") in content.decode()
    assert "sip.phoneb.test" in content.decode()


def test_uploads_are_refused(pw, add_device, server, tmp_path):
    add_device(MAC, "cisco-7961g")
    source = tmp_path / "evil.xml"
    source.write_text("<device/>")
    client = tftpy.TftpClient(server[0], server[1])
    with pytest.raises(tftpy.TftpException):
        client.upload(NAME, str(source), timeout=2, retries=1)


def test_tftp_failures_count_towards_the_ban(pw, add_device, server, tmp_path, settings):
    settings.PBX_PROV_MAX_FAILURES = 2
    add_device(MAC, "cisco-7961g")
    for n in range(2):
        assert fetch(server, f"SEP001EC7FFFF0{n}.cnf.xml", tmp_path / f"x{n}") is None
    # Banned now: even the real device's file is "not found" from this address.
    assert fetch(server, NAME, tmp_path / "y") is None
