"""Where uploaded logos and favicons live.

The project sets no ``MEDIA_ROOT``; brand assets go under ``PBX_MEDIA_ROOT`` (default
``var/media``) and are served by the brand API (``/api/v1/brand/logo/``), not by a static
media URL, so no web-server configuration is needed and a tenant only ever sees its own brand.
"""

from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


def media_root() -> Path:
    configured = getattr(settings, "PBX_MEDIA_ROOT", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "media"


@deconstructible
class BrandAssetStorage(FileSystemStorage):
    """A file system storage whose root is read from the settings on every use (tests move it)."""

    @property
    def base_location(self) -> str:
        return str(media_root())

    @property
    def location(self) -> str:
        return str(media_root().resolve())

    @property
    def base_url(self) -> str | None:  # type: ignore[override]
        return None


brand_storage = BrandAssetStorage()
