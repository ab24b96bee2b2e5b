"""Fixtures of the media server tests: ``media_server``, a real ``python -m telephony.media``
process on loopback (see ``tests/media/server.py``), one per test module."""

import pytest

from tests.media.server import MediaServerProcess


@pytest.fixture(scope="module")
def media_server():
    server = MediaServerProcess()
    yield server
    server.close()
