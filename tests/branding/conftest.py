"""Branding fixtures: the effective-brand cache is in Redis, which the per-test database
rollback does not reach, so every test starts and ends with a fresh cache generation."""

import pytest


@pytest.fixture(autouse=True)
def fresh_brand_cache(settings, tmp_path):
    from branding.effective import invalidate

    settings.PBX_MEDIA_ROOT = str(tmp_path / "media")
    invalidate()
    yield
    invalidate()
