"""Fixtures for the SIP tests: a full engine on loopback (see ``engine_fixtures``), call-layer
engines and pjsua2 phones (see ``callkit``)."""

from tests.sip.callkit import pbx, phones
from tests.sip.engine_fixtures import sip_engine, sip_engine_factory

__all__ = ["pbx", "phones", "sip_engine", "sip_engine_factory"]
