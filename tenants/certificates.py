"""Checking a TLS certificate a tenant uploads for its host names (no Django models here).

:func:`inspect_upload` takes the PEM text of a chain and of its private key and either returns a
:class:`CheckedCertificate` (normalised PEM, the names it covers, its validity and fingerprint)
or raises :class:`CertificateProblem` with one field and one sentence that says what to fix.
The rules, in the order they are checked:

- sizes: the chain at most ``MAX_CHAIN_BYTES`` and ``MAX_CHAIN_CERTS`` certificates, the key at
  most ``MAX_KEY_BYTES`` (checked before any parsing);
- both parse as PEM; the key is not passphrase-protected;
- the key is RSA of at least 2048 bits or EC on P-256 or P-384 (the leaf's, and the key's);
- the key is the leaf's (the first certificate's) key;
- the chain is in order, leaf first: each certificate's issuer is the next one's subject and
  its signature verifies with the next one's key;
- the chain ends at a trusted root: its last certificate is one, or is issued by one
  (``trusted_roots``: the system bundle and the deployment's extra CAs); otherwise an
  intermediate is missing;
- every certificate is valid now (not expired, not yet valid);
- the leaf's DNS names (subjectAltName; a wildcard covers one label) cover at least one of the
  tenant's host names.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

__all__ = [
    "MAX_CHAIN_BYTES",
    "MAX_CHAIN_CERTS",
    "MAX_KEY_BYTES",
    "CertificateProblem",
    "CheckedCertificate",
    "covers",
    "inspect_upload",
    "load_roots",
]

MAX_CHAIN_BYTES = 64 * 1024
MAX_CHAIN_CERTS = 6
MAX_KEY_BYTES = 16 * 1024
MIN_RSA_BITS = 2048
EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}

_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


class CertificateProblem(ValueError):
    """An upload refused: ``field`` is ``"chain"`` or ``"key"``, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CheckedCertificate:
    """An upload that passed every check, in normalised form."""

    chain_pem: str  # the certificates, leaf first, as PEM
    key_pem: str  # PKCS#8, unencrypted: the caller encrypts it before storing it
    names: tuple[str, ...]  # the leaf's DNS names (SAN), lower case, as written
    hosts: tuple[str, ...]  # the tenant's host names among those the leaf covers
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # SHA-256 of the leaf's DER, hex pairs separated by ":"
    key_type: str  # "RSA 2048", "EC P-256"...


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty name)"


def _key_type(key: object, field: str) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateProblem(
                field, f"The RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed."
            )
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        curve = EC_CURVES.get(key.curve.name)
        if curve is None:
            raise CertificateProblem(
                field, f"The EC curve {key.curve.name} is not accepted; use P-256 or P-384."
            )
        return f"EC {curve}"
    raise CertificateProblem(field, "Only RSA (2048 bits or more) and EC P-256/P-384 keys work.")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "replace") if isinstance(value, str) else value


def _parse_chain(data: bytes) -> list[x509.Certificate]:
    blocks = _PEM_CERT.findall(data)
    if not blocks:
        raise CertificateProblem(
            "chain", "No PEM certificate found (expected -----BEGIN CERTIFICATE----- blocks)."
        )
    if len(blocks) > MAX_CHAIN_CERTS:
        raise CertificateProblem(
            "chain", f"The chain has {len(blocks)} certificates; at most {MAX_CHAIN_CERTS}."
        )
    certs = []
    for i, block in enumerate(blocks, 1):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            raise CertificateProblem(
                "chain", f"Certificate {i} of the chain is not a valid PEM certificate."
            ) from None
    return certs


def _parse_key(data: bytes) -> object:
    if b"ENCRYPTED" in data:
        raise CertificateProblem(
            "key", "The private key is protected by a passphrase; upload it unencrypted."
        )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateProblem(
            "key", "The private key is protected by a passphrase; upload it unencrypted."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateProblem("key", "The private key is not a valid PEM private key.") from None


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_order(certs: list[x509.Certificate]) -> None:
    seen: dict[bytes, int] = {}
    for i, cert in enumerate(certs, 1):
        der = cert.public_bytes(serialization.Encoding.DER)
        if der in seen:
            raise CertificateProblem(
                "chain", f"Certificate {i} of the chain repeats certificate {seen[der]}."
            )
        seen[der] = i
    for i, cert in enumerate(certs):
        if i < len(certs) - 1 and _self_signed(cert):
            raise CertificateProblem(
                "chain",
                f"The chain is out of order: certificate {i + 1} ({_name(cert.subject)}) is a "
                "root, which may only come last. Put the leaf first, then each issuer.",
            )
        for j in range(i):
            if cert.issuer == certs[j].subject and cert.issuer != cert.subject:
                raise CertificateProblem(
                    "chain",
                    f"The chain is out of order: certificate {i + 1} ({_name(cert.subject)}) "
                    f"comes after its issuer. Put the leaf first, then each issuer.",
                )
    for i in range(len(certs) - 1):
        child, parent = certs[i], certs[i + 1]
        where = f"Certificate {i + 1} ({_name(child.subject)})"
        if child.issuer != parent.subject:
            if any(child.issuer == c.subject for c in certs if c is not child):
                raise CertificateProblem(
                    "chain",
                    f"The chain is out of order: {where} is not followed by its issuer "
                    f"({_name(child.issuer)}). Put the leaf first, then each issuer.",
                )
            raise CertificateProblem(
                "chain",
                f"{where} is issued by {_name(child.issuer)}, which the chain lacks: "
                "an intermediate certificate is missing.",
            )
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateProblem(
                "chain", f"{where}: its signature does not verify with the next certificate's key."
            ) from None
        _check_issuer(parent, i + 2, below=i)
    _check_leaf(certs[0])


def _check_issuer(cert: x509.Certificate, position: int, *, below: int) -> None:
    """A certificate that signs another must be a CA allowed to sign certificates, with room
    for the ``below`` intermediates under it (RFC 5280 4.2.1.9): clients refuse anything else."""
    where = f"Certificate {position} ({_name(cert.subject)})"
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        raise CertificateProblem(
            "chain", f"{where} signs the one before it but is not a CA certificate."
        )
    if bc.path_length is not None and below > bc.path_length:
        raise CertificateProblem(
            "chain", f"{where} may not have {below} intermediate(s) under it (path length)."
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise CertificateProblem("chain", f"{where} is not allowed to sign certificates.")


def _check_leaf(leaf: x509.Certificate) -> None:
    """The served certificate is no CA, and may serve TLS servers when it says what for."""
    try:
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is not None and bc.ca:
        raise CertificateProblem(
            "chain",
            "The first certificate is a CA certificate, not a server's: put the leaf first.",
        )
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        raise CertificateProblem(
            "chain", "The certificate is not for TLS servers (its extended key usage lacks it)."
        )


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_anchor(certs: list[x509.Certificate], roots: Iterable[x509.Certificate]) -> None:
    last = certs[-1]
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for root in roots:
        by_subject.setdefault(root.subject, []).append(root)
    last_der = last.public_bytes(serialization.Encoding.DER)
    if any(
        r.public_bytes(serialization.Encoding.DER) == last_der
        for r in by_subject.get(last.subject, ())
    ):
        return  # the upload ends with a trusted root
    for root in by_subject.get(last.issuer, ()):
        try:
            last.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    if _self_signed(last):
        raise CertificateProblem(
            "chain",
            f"The chain ends at {_name(last.subject)}, a root that is not trusted here "
            "(self-signed or private CA).",
        )
    raise CertificateProblem(
        "chain",
        f"The chain ends at {_name(last.subject)}, issued by {_name(last.issuer)}, which is "
        "neither in the upload nor a trusted root: an intermediate certificate is missing.",
    )


def _check_dates(certs: list[x509.Certificate], now: datetime.datetime) -> None:
    for i, cert in enumerate(certs, 1):
        who = "The certificate" if i == 1 else f"Certificate {i} of the chain"
        if cert.not_valid_after_utc <= now:
            raise CertificateProblem(
                "chain", f"{who} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."
            )
        if cert.not_valid_before_utc > now:
            raise CertificateProblem(
                "chain",
                f"{who} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC.",
            )


def _dns_names(leaf: x509.Certificate) -> tuple[str, ...]:
    try:
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    names = san.value.get_values_for_type(x509.DNSName)  # type: ignore[attr-defined]
    return tuple(dict.fromkeys(n.lower().rstrip(".") for n in names))


def covers(name: str, host: str) -> bool:
    """Whether the certificate name ``name`` covers ``host``: equal, or a ``*.`` wildcard that
    stands for exactly one (whole) left-most label (RFC 6125 6.4.3, as browsers do)."""
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name == host:
        return True
    if not name.startswith("*."):
        return False
    label, _, rest = host.partition(".")
    return bool(label) and "*" not in name[2:] and rest == name[2:] and rest.count(".") >= 1


def fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def inspect_upload(
    chain: str | bytes,
    key: str | bytes,
    *,
    tenant_hosts: Iterable[str],
    roots: Iterable[x509.Certificate],
    now: datetime.datetime | None = None,
) -> CheckedCertificate:
    """Check an upload (see the module's rules); the first problem found is raised."""
    chain_b, key_b = _as_bytes(chain or b""), _as_bytes(key or b"")
    if len(chain_b) > MAX_CHAIN_BYTES:
        raise CertificateProblem("chain", f"The chain is larger than {MAX_CHAIN_BYTES} bytes.")
    if len(key_b) > MAX_KEY_BYTES:
        raise CertificateProblem("key", f"The private key is larger than {MAX_KEY_BYTES} bytes.")
    if not chain_b.strip():
        raise CertificateProblem("chain", "The certificate chain is required.")
    if not key_b.strip():
        raise CertificateProblem("key", "The private key is required.")
    certs = _parse_chain(chain_b)
    private = _parse_key(key_b)
    leaf = certs[0]
    key_type = _key_type(private, "key")
    _key_type(leaf.public_key(), "chain")
    _check_order(certs)
    if _public_der(leaf.public_key()) != _public_der(private.public_key()):  # type: ignore[attr-defined]
        raise CertificateProblem("key", "The private key does not belong to the certificate.")
    _check_anchor(certs, roots)
    now = now or datetime.datetime.now(datetime.UTC)
    _check_dates(certs, now)
    names = _dns_names(leaf)
    if not names:
        raise CertificateProblem(
            "chain", "The certificate names no DNS host (subjectAltName) and covers nothing."
        )
    wanted = tuple(dict.fromkeys(h.lower().rstrip(".") for h in tenant_hosts if h))
    hosts = tuple(h for h in wanted if any(covers(n, h) for n in names))
    if not hosts:
        raise CertificateProblem(
            "chain",
            f"The certificate covers {', '.join(names)} but none of this tenant's host names "
            f"({', '.join(wanted) or 'none'}).",
        )
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
    key_pem = private.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return CheckedCertificate(
        chain_pem=pem,
        key_pem=key_pem,
        names=names,
        hosts=hosts,
        subject=_name(leaf.subject),
        issuer=_name(leaf.issuer),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=fingerprint(leaf),
        key_type=key_type,
    )


@lru_cache(maxsize=8)
def load_roots(paths: tuple[str, ...]) -> tuple[x509.Certificate, ...]:
    """The CA certificates in the PEM bundles at ``paths`` (a missing or unreadable file is
    skipped; a certificate that does not parse too: system bundles carry odd ones)."""
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for block in _PEM_CERT.findall(data):
            try:
                with warnings.catch_warnings():
                    # A few old roots in the system bundles have a negative serial number.
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    roots.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return tuple(roots)
