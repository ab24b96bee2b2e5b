"""Fixtures for the SIP tests: a full engine on loopback (see ``engine_fixtures``)."""

from tests.sip.engine_fixtures import sip_engine, sip_engine_factory

__all__ = ["sip_engine", "sip_engine_factory"]
