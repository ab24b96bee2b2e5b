"""Digest HA1 computation shared by the Django side (stored HA1s) and tests."""

import hashlib

_ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 = H(username:realm:password) per RFC 3261 / RFC 8760."""
    digest = _ALGORITHMS[algorithm]
    return digest(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()
