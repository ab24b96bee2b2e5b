"""The self-signed certificate ``make run`` makes (``scripts/tls_cert.sh``, run by bootstrap).

User story: an operator runs ``make run`` on a fresh machine and gets a certificate that names
every host the browser may use (the demo tenant's, the provider's with its subdomains, the SIP
server's public name); running it again changes nothing; naming a new public host remakes it;
and a certificate the operator put in its place is never overwritten.
"""

import ipaddress
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]


def make(var: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROOT / "scripts" / "tls_cert.sh"],
        env={"PATH": "/usr/bin:/bin", "PBX_VAR_DIR": str(var), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def names(var: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate((var / "tls" / "sip.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [*san.get_values_for_type(x509.DNSName)] + [
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    ]


def test_the_certificate_names_the_hosts_and_is_made_once(tmp_path):
    assert make(tmp_path).returncode == 0
    assert names(tmp_path) == ["localhost", "*.localhost", "demo.localhost", "127.0.0.1"]
    assert (tmp_path / "tls" / "sip.key").stat().st_mode & 0o077 == 0
    first = (tmp_path / "tls" / "sip.crt").read_bytes()
    again = make(tmp_path)
    assert again.returncode == 0
    assert "making" not in again.stdout
    assert (tmp_path / "tls" / "sip.crt").read_bytes() == first

    public = {"PBX_PUBLIC_HOSTS": "localhost,pbx.example.com", "PBX_SIP_PUBLIC_HOST": "203.0.113.5"}
    assert make(tmp_path, **public).returncode == 0
    assert set(names(tmp_path)) == {
        "localhost",
        "*.localhost",
        "demo.localhost",
        "pbx.example.com",
        "*.pbx.example.com",  # the tenants under the provider's name
        "127.0.0.1",
        "203.0.113.5",
    }


def test_an_operators_certificate_is_left_alone(tmp_path):
    assert make(tmp_path).returncode == 0
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pbx.example.com")])
    own = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(tz=UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(tz=UTC) + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("198.51.100.7"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = own.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "tls" / "sip.crt").write_bytes(pem)
    done = make(tmp_path, PBX_PUBLIC_HOSTS="pbx.example.com")
    assert done.returncode == 0
    assert (tmp_path / "tls" / "sip.crt").read_bytes() == pem


def test_a_certificate_of_the_old_bootstrap_is_remade_with_the_new_names(tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1",
            "-keyout", tls / "sip.key", "-out", tls / "sip.crt",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert make(tmp_path).returncode == 0
    assert "demo.localhost" in names(tmp_path)


def test_a_host_that_is_no_host_name_is_refused(tmp_path):
    done = make(tmp_path, PBX_PUBLIC_HOSTS="pbx.example.com,evil;rm -rf")
    assert done.returncode == 1
    assert "'evil;rm-rf'" in done.stderr
    assert "is not a host name or address" in done.stderr
    assert not (tmp_path / "tls" / "sip.crt").exists()
