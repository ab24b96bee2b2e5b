"""Real object storage servers for the recording tests: moto's S3 server (``moto_server``,
from moto[server]) and Azurite's blob service (from npm, installed by
``scripts/bootstrap.sh test`` under ``$PBX_VAR_DIR/tools``), each on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310  # http on loopback
            return
        except urllib.error.HTTPError:
            return  # it answers (403 for an unsigned request is fine)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


class Server:
    """A storage server process on a fixed port (so it can be stopped and started again)."""

    def __init__(self, command: list[str], url: str) -> None:
        self.command, self.url = command, url
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_http(self.url, self.proc)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class MotoS3(Server):
    """moto's S3 in server mode; ``bucket`` is made on every start (it keeps state in
    memory)."""

    KEY, SECRET, REGION = "testing-key", "testing-secret", "us-east-1"

    def __init__(self, bucket: str = "recordings") -> None:
        self.port = free_tcp_port()
        self.bucket = bucket
        self.endpoint = f"http://127.0.0.1:{self.port}"
        moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
        super().__init__([moto, "-H", "127.0.0.1", "-p", str(self.port)], self.endpoint)

    def start(self) -> None:
        import boto3

        super().start()
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET,
            region_name=self.REGION,
        ).create_bucket(Bucket=self.bucket)


class Azurite(Server):
    """Azurite's blob service in memory; ``container`` is made on every start."""

    def __init__(self, container: str = "recordings") -> None:
        self.port = free_tcp_port()
        self.container = container
        self.endpoint = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"
        binary = os.path.join(
            str(settings.VAR_DIR), "tools", "node_modules", ".bin", "azurite-blob"
        )
        if not os.path.exists(binary):
            raise RuntimeError(
                f"Azurite is not installed ({binary}): run scripts/bootstrap.sh test"
            )
        super().__init__(
            [
                binary,
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
            ],
            self.endpoint,
        )

    def start(self) -> None:
        from azure.storage.blob import BlobServiceClient

        super().start()
        BlobServiceClient(
            self.endpoint,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
        ).create_container(self.container)
