"""The admin sites' tests drive them as a browser does: a client bound to a host name."""

from tests.portal.conftest import portal  # noqa: F401 - the fixture, shared with the portal's tests
