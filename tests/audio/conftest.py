import pytest


@pytest.fixture
def media(settings, tmp_path):
    """A MEDIA_ROOT of the test's own (tenant files are written and removed in it)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root
