"""What an uploaded logo or favicon is, read from its own bytes (no image library).

Raster images only: an SVG served from the portal's own origin could carry script. The kind
comes from the file's signature, never from its name or the browser's content type, and the
size in pixels from its header, so an image that is not what it claims, or is huge, or is a
1x1 tracking pixel, is refused before it is stored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from django.conf import settings

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x00\x00\x01\x00", "ico"),
)
KINDS_TEXT = "a PNG, JPEG, GIF, WebP or ICO image"
# (smallest, largest) side in pixels, per use.
LIMITS = {"logo": (16, 2048), "favicon": (16, 512)}


def image_kind(head: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _png(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _ico(data: bytes) -> tuple[int, int] | None:
    # The largest image of the directory; a 0 byte means 256 pixels.
    if len(data) < 6:
        return None
    (count,) = struct.unpack("<H", data[4:6])
    sizes = []
    for i in range(count):
        entry = data[6 + 16 * i : 6 + 16 * i + 2]
        if len(entry) < 2:
            return None
        sizes.append((entry[0] or 256, entry[1] or 256))
    return max(sizes) if sizes else None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


_SIZE = {"png": _png, "gif": _gif, "ico": _ico, "jpeg": _jpeg, "webp": _webp}


@dataclass(frozen=True)
class ImageInfo:
    kind: str
    width: int
    height: int


def max_bytes() -> int:
    return int(getattr(settings, "PBX_BRAND_ASSET_MAX_BYTES", 512 * 1024))


def image_problem(upload, use: str) -> str | None:
    """Why ``upload`` cannot be the brand's ``use`` ("logo" or "favicon"), or None; on success
    the upload is renamed ``upload.<kind>`` (the stored name is ours, see the model)."""
    limit = max_bytes()
    if upload.size > limit:
        return f"The file is too large: at most {limit // 1024} KiB."
    upload.seek(0)
    data = upload.read(limit + 1)
    upload.seek(0)
    kind = image_kind(data[:16])
    if kind is None:
        return f"Not an image this portal accepts: upload {KINDS_TEXT}."
    size = _SIZE[kind](data)
    if size is None:
        return f"The {kind.upper()} file is damaged: its size in pixels cannot be read."
    smallest, largest = LIMITS[use]
    width, height = size
    if min(width, height) < smallest or max(width, height) > largest:
        return (
            f"The image is {width}×{height} pixels; a {use} must be between {smallest} and "
            f"{largest} pixels on each side."
        )
    upload.name = f"upload.{kind}"
    return None
