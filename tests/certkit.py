"""A small test PKI made with ``cryptography``: a root CA, an intermediate CA and leaf
certificates for the names a test asks for, as PEM text (what a tenant admin uploads)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, public_key, signer, *, ca: bool, names=(), start=None, end=None):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start or NOW - DAY)
        .not_valid_after(end or NOW + 90 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Leaf:
    cert: x509.Certificate
    key: object
    chain: list[x509.Certificate] = field(default_factory=list)  # leaf first

    @property
    def key_pem(self) -> str:
        return key_pem(self.key)

    @property
    def chain_pem(self) -> str:
        return "".join(pem(c) for c in self.chain)

    @property
    def fingerprint(self) -> str:
        digest = self.cert.fingerprint(hashes.SHA256()).hex().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class TestPki:
    """Root -> intermediate -> leaves. ``root_pem`` is what a deployment would trust."""

    __test__ = False  # not a test class for pytest

    def __init__(self, label: str = "Test") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert(
            f"{label} Root CA", f"{label} Root CA", self.root_key.public_key(), self.root_key,
            ca=True, end=NOW + 3650 * DAY,
        )  # fmt: skip
        self.mid_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _cert(
            f"{label} Intermediate CA", f"{label} Root CA", self.mid_key.public_key(),
            self.root_key, ca=True, end=NOW + 1825 * DAY,
        )  # fmt: skip
        self.label = label

    @property
    def root_pem(self) -> str:
        return pem(self.root)

    def leaf(self, *names: str, key=None, start=None, end=None, cn: str | None = None) -> Leaf:
        key = key or ec.generate_private_key(ec.SECP256R1())
        cert = _cert(
            cn or (names[0] if names else "no-names"), f"{self.label} Intermediate CA",
            key.public_key(), self.mid_key, ca=False, names=names, start=start, end=end,
        )  # fmt: skip
        return Leaf(cert, key, [cert, self.intermediate])


def weak_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused


def trust(settings, tmp_path, *pkis: TestPki) -> None:
    """Make the deployment trust these test roots (and nothing else) for uploads."""
    bundle = tmp_path / "roots.pem"
    bundle.write_text("".join(p.root_pem for p in pkis))
    settings.TLS_TRUSTED_CA_FILES = [str(bundle)]
