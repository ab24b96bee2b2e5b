"""Readable text on brand colours (WCAG 2.x relative luminance and contrast ratio).

Users pick any colour; the portal never trusts it to carry text as it is. The text on a colour
is black or white, whichever contrasts more: for every sRGB colour that choice reaches at least
4.58:1, above the 4.5:1 WCAG AA asks of normal text. Where the colour itself is the text (links
on the light page), a colour too light for that is darkened until it reaches 4.5:1.
``static/portal/brand-preview.js`` mirrors these formulas for the live preview.
"""

from __future__ import annotations

import re

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
BLACK = "#000000"
WHITE = "#ffffff"
# The lightest background the portal puts accent-coloured text on (the current menu entry).
LIGHT_BACKGROUND = "#e8f0fe"
AA_TEXT = 4.5
# WCAG 1.4.11: a button must stand out from the page by 3:1 to be seen as one.
AA_NON_TEXT = 3.0


def is_hex(value: str) -> bool:
    return bool(value) and bool(HEX.match(value))


def _channel(c: int) -> float:
    s = c / 255
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def _rgb(colour: str) -> tuple[int, int, int]:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return r, g, b


def luminance(colour: str) -> float:
    r, g, b = _rgb(colour)
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (always at least 4.5:1)."""
    return BLACK if contrast(background, BLACK) >= contrast(background, WHITE) else WHITE


def ink(colour: str, background: str = LIGHT_BACKGROUND) -> str:
    """``colour`` as text on a light background: itself if it reads at 4.5:1, else darkened
    (mixed towards black) just enough to."""
    r, g, b = _rgb(colour)
    for step in range(101):
        keep = 1 - step / 100
        candidate = "#{:02x}{:02x}{:02x}".format(*(round(c * keep) for c in (r, g, b)))
        if contrast(candidate, background) >= AA_TEXT:
            return candidate
    return BLACK


def scheme(primary: str, accent: str) -> dict[str, str]:
    """The portal's colours from a brand's two (each may be blank or invalid: then unset),
    each with the text colour that reads on it: the top bar is the primary colour, buttons the
    accent (the primary when no accent is set), links the accent darkened where it is too
    light to read on the page."""
    primary = primary if is_hex(primary) else ""
    accent = accent if is_hex(accent) else primary
    return {
        "bar_color": primary,
        "bar_text": text_on(primary) if primary else "",
        "accent": accent,
        "accent_text": text_on(accent) if accent else "",
        "accent_ink": ink(accent) if accent else "",
    }


def low_contrast_warning(colour: str, background: str = WHITE) -> str:
    """A sentence for the form when ``colour`` barely stands out from the page, else ''."""
    if not is_hex(colour):
        return ""
    ratio = contrast(colour, background)
    if ratio >= AA_NON_TEXT:
        return ""
    return (
        f"Low contrast: this colour stands out from the white page by only {ratio:.1f}:1 "
        f"(3:1 is the minimum for buttons). Text on it will be {_name(text_on(colour))}, "
        f"and links will use the darker {ink(colour)}."
    )


def _name(colour: str) -> str:
    return "black" if colour == BLACK else "white"
