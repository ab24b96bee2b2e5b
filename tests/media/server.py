"""The media server as a real process for tests: ``python -m telephony.media`` on loopback.

    from tests.media.server import MediaServerProcess
    media = MediaServerProcess()
    host, port = media.control      # give this to the engine (PbxConfig.media_server)
    ...
    media.close()

The control port is picked by the server itself (port 0, read back from its ready line) and
checked with a ``stats`` request; the RTP ports are this test worker's own range
(:meth:`MediaServerProcess.ports`: 200 ports from 20000 + (pid % 50) * 200, so 100 sessions),
apart from rtpengine's (``tests/sip/pjphone.py``: 30000 + (pid % 300) * 100) so parallel
workers and both relays never collide.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class MediaServerProcess:
    """A media server subprocess; ``control`` is its (host, port), ``close()`` stops it."""

    def __init__(self, *, rtp_timeout: float = 60.0, extra_args: list[str] | None = None) -> None:
        ports = self.ports()
        self.rtp_ports = ports
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "telephony.media",
                "--control",
                "127.0.0.1:0",
                "--rtp-host",
                "127.0.0.1",
                "--rtp-port-min",
                str(ports.start),
                "--rtp-port-max",
                str(ports.stop - 1),
                "--rtp-timeout",
                str(rtp_timeout),
                *(extra_args or []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._stderr = threading.Thread(target=self._drain, daemon=True)
        self._stderr.start()
        self.control = self._wait_ready()

    @staticmethod
    def ports() -> range:
        """The RTP ports of this test worker's media server."""
        base = 20000 + (os.getpid() % 50) * 200
        return range(base, base + 200)  # 100 sessions (even ports)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def _wait_ready(self, timeout: float = 15.0) -> tuple[str, int]:
        """Read the ready line, then ask for stats over the control protocol."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()  # blocks until the line or the process' end
        if not line.startswith("media server ready on "):
            self.proc.kill()
            self.proc.wait(5)
            raise RuntimeError("media server did not start:\n" + "\n".join(self.log[-40:]))
        host, _, port = line.split()[-1].rpartition(":")
        address = (host, int(port))
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(address, timeout=2) as sock:
                    sock.sendall(b'{"id":1,"op":"stats"}\n')
                    answer = json.loads(sock.makefile("rb").readline())
                if answer.get("ok"):
                    return address
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("media server did not answer stats")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.join(2)


@pytest.fixture(scope="module")
def media_server():
    """A media server process for the tests of a module (``.control`` is its address)."""
    server = MediaServerProcess()
    yield server
    server.close()
