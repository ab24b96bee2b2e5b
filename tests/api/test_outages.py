"""PostgreSQL or Redis down: 503 with a clear JSON body, never a stack trace."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.cache import caches

from tests.conftest import closed_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_redis_down_answers_503(api, world, settings):
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = {
        alias: {
            **config,
            "LOCATION": dead,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
        for alias, config in settings.CACHES.items()
    }
    for alias in settings.CACHES:
        caches[alias].close()
    r = api(world.a_admin, world.tenant_a).get("/api/v1/extensions/")
    assert r.status_code == 503
    assert r.json()["code"] == "SERVICE_UNAVAILABLE"
    assert "Traceback" not in r.content.decode()


def test_postgres_down_answers_503(tmp_path):
    """A real server process whose database is unreachable."""
    port = closed_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pbx.settings.test",
        "PBX_DB_PORT": str(closed_port()),
        "PBX_DEBUG": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "pbx.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/extensions/",
                    headers={"Host": "acme.test"},
                    timeout=10,
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None, "server did not start"
        assert response.status_code == 503
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "5"
        health = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}, timeout=10
        )
        assert health.status_code == 503
    finally:
        server.terminate()
        server.wait(10)
