"""Fixtures for every test directory."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Start each test with empty per-process caches of users and provisioning layers.

    They are validated by version tokens in Redis, which a save replaces at once and again on
    commit. A test's transaction is rolled back, never committed: its last token stays in
    Redis while the rows go back, so an entry cached during one test could look current in
    the next. (In production a rolled-back change cannot be cached: other connections never
    see it, and authentication reads the user before a request writes anything.)
    """
    from provisioning import layers
    from tenants import user_cache

    layers._cache.clear()
    user_cache._cache.clear()
