"""Fixtures of the media server tests: ``media_server``, a real ``python -m telephony.media``
process on loopback, one per test module (see ``tests/media/server.py``, where other test
directories import it from)."""

from tests.media.server import media_server

__all__ = ["media_server"]
