"""Helpers the portal's page tests share: the field errors a form page shows, and an object's
pages out of another tenant's reach."""

from __future__ import annotations

import re
from html import unescape


def field_errors(html: str, name: str) -> list[str]:
    """The errors shown under form field ``name``."""
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


def assert_out_of_reach(client, path: str, form: dict) -> None:
    """An object's page ``path`` (ending in ``/``) and its delete page answer 404 to
    ``client``: read, deleted or posted ``form``."""
    assert client.get(path).status_code == 404
    assert client.get(f"{path}delete/").status_code == 404
    assert client.post(f"{path}delete/").status_code == 404
    assert client.post(path, form).status_code == 404
