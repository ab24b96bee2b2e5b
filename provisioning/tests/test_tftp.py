"""The read-only TFTP server, fetched from by real clients (tftpy and tftp-hpa)."""

from __future__ import annotations

import io
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import tftpy

from provisioning.vendors.tftp import (
    TftpRequestError,
    TftpServerThread,
    safe_filename,
    to_netascii,
)

CONFIG = b'<?xml version="1.0"?>\n<device>\r\n' + b"<line/>\n" * 400 + b"</device>\n"
EXACT = b"x" * 1024  # a multiple of 512: the transfer must end with an empty block
FILES = {"SEP001565A1B2C3.cnf.xml": CONFIG, "exact.bin": EXACT}
TFTP_HPA = shutil.which("tftp")


class Recorder:
    """The lookup callback the Django side would supply, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, int]]] = []

    def __call__(self, filename: str, client: tuple[str, int]) -> bytes | None:
        self.calls.append((filename, client))
        if filename == "boom":
            raise RuntimeError("database down")
        return FILES.get(filename)


@pytest.fixture
def lookup() -> Recorder:
    return Recorder()


@pytest.fixture
def server(lookup: Recorder) -> Iterator[tuple[str, int]]:
    thread = TftpServerThread(lookup, "127.0.0.1", 0, timeout=0.5, retries=3)
    address = thread.start()
    yield address
    thread.stop()


def tftpy_get(address: tuple[str, int], name: str, **options: int) -> bytes:
    out = io.BytesIO()
    client = tftpy.TftpClient(address[0], address[1], options=options)
    client.download(name, out, timeout=2, retries=2)
    return out.getvalue()


def test_tftpy_downloads_a_served_file(server: tuple[str, int], lookup: Recorder) -> None:
    assert tftpy_get(server, "SEP001565A1B2C3.cnf.xml") == CONFIG
    assert lookup.calls[0][0] == "SEP001565A1B2C3.cnf.xml"
    assert lookup.calls[0][1][0] == "127.0.0.1"


def test_leading_slash_is_stripped(server: tuple[str, int], lookup: Recorder) -> None:
    assert tftpy_get(server, "/SEP001565A1B2C3.cnf.xml") == CONFIG
    assert lookup.calls[0][0] == "SEP001565A1B2C3.cnf.xml"


def test_exact_multiple_of_block_size(server: tuple[str, int]) -> None:
    assert tftpy_get(server, "exact.bin") == EXACT


def test_blksize_and_tsize_options(server: tuple[str, int]) -> None:
    assert tftpy_get(server, "SEP001565A1B2C3.cnf.xml", blksize=1428, tsize=0) == CONFIG
    assert tftpy_get(server, "exact.bin", blksize=1024) == EXACT


def test_unknown_file_is_an_error(server: tuple[str, int]) -> None:
    with pytest.raises(tftpy.TftpException, match="File not found"):
        tftpy_get(server, "SEP000000000001.cnf.xml")


def test_write_is_refused(server: tuple[str, int], lookup: Recorder, tmp_path: Path) -> None:
    source = tmp_path / "evil.cfg"
    source.write_bytes(b"evil")
    client = tftpy.TftpClient(server[0], server[1])
    # tftpy reports the error code's standard text; 2 is "access violation".
    with pytest.raises(tftpy.TftpException, match="errorcode = 2"):
        client.upload("SEP001565A1B2C3.cnf.xml", str(source), timeout=2, retries=2)
    assert lookup.calls == []  # a write never reaches the callback
    assert tftpy_get(server, "SEP001565A1B2C3.cnf.xml") == CONFIG  # unchanged


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "x\\..\\y", "/./x"])
def test_path_traversal_is_refused(server: tuple[str, int], lookup: Recorder, name: str) -> None:
    with pytest.raises(tftpy.TftpException, match="errorcode = 2"):
        tftpy_get(server, name)
    assert lookup.calls == []


def test_failing_lookup_answers_an_error_and_server_survives(server: tuple[str, int]) -> None:
    with pytest.raises(tftpy.TftpException, match="errorcode = 0"):
        tftpy_get(server, "boom")
    assert tftpy_get(server, "exact.bin") == EXACT


def test_garbage_datagram_gets_an_error_and_server_survives(server: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(b"\x00\x03\x00\x01hello", server)  # DATA on the request port
        reply, _ = sock.recvfrom(1024)
        assert struct.unpack("!HH", reply[:4]) == (5, 4)  # ERROR, illegal operation
        sock.sendto(b"\x00\x01file\x00mail\x00", server)  # obsolete "mail" mode
        reply, _ = sock.recvfrom(1024)
        assert struct.unpack("!HH", reply[:4]) == (5, 4)
    assert tftpy_get(server, "exact.bin") == EXACT


def test_busy_server_serves_clients_concurrently(server: tuple[str, int]) -> None:
    # Two clients ask at once; the second gets its file without waiting for the first.
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
    ):
        for sock in (first, second):
            sock.settimeout(2)
            sock.sendto(b"\x00\x01exact.bin\x00octet\x00", server)
        for sock in (first, second):
            data, peer = sock.recvfrom(1024)
            assert data[:4] == b"\x00\x03\x00\x01"
            assert peer[1] != server[1]  # each transfer has its own port (TID)


# --- the Debian tftp-hpa client ------------------------------------------------------------


def hpa(
    server: tuple[str, int], *command: str, mode: str = "octet"
) -> subprocess.CompletedProcess[str]:
    assert TFTP_HPA is not None, "tftp-hpa is missing: make test installs it (apt tftp-hpa)"
    return subprocess.run(
        [TFTP_HPA, "-m", mode, server[0], str(server[1]), "-c", *command],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("mode", ["octet", "netascii"])
def test_tftp_hpa_get(server: tuple[str, int], tmp_path: Path, mode: str) -> None:
    target = tmp_path / "got.xml"
    result = hpa(server, "get", "SEP001565A1B2C3.cnf.xml", str(target), mode=mode)
    assert "Error" not in result.stdout + result.stderr
    # In netascii the client turns CR LF back into LF, so the bytes round-trip.
    assert target.read_bytes() == CONFIG


def test_tftp_hpa_unknown_file(server: tuple[str, int], tmp_path: Path) -> None:
    result = hpa(server, "get", "nope.cfg", str(tmp_path / "nope"))
    assert "Error code 1" in result.stdout + result.stderr


def test_tftp_hpa_put_is_refused(server: tuple[str, int], tmp_path: Path, lookup: Recorder) -> None:
    source = tmp_path / "upload.cfg"
    source.write_bytes(b"account.1.password = stolen\n")
    result = hpa(server, "put", str(source), "SEP001565A1B2C3.cnf.xml")
    assert "Error code 2" in result.stdout + result.stderr
    assert "read-only" in result.stdout + result.stderr
    assert lookup.calls == []


# --- helpers --------------------------------------------------------------------------------


def test_safe_filename() -> None:
    assert safe_filename("/y000000000000.cfg") == "y000000000000.cfg"
    assert safe_filename("prov/abc/SEP1.cnf.xml") == "prov/abc/SEP1.cnf.xml"
    for bad in ("", "/", "..", "a/../b", "a//b", "a\\b", "a\x00b", "x" * 300):
        with pytest.raises(TftpRequestError):
            safe_filename(bad)


def test_netascii_encoding() -> None:
    assert to_netascii(b"a\nb\rc\r\n") == b"a\r\nb\r\0c\r\0\r\n"


def test_port_in_use_is_reported(server: tuple[str, int]) -> None:
    with pytest.raises(OSError, match="in use"):
        TftpServerThread(lambda name, addr: None, server[0], server[1]).start()
