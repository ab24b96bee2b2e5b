"""baresip as an SRTP desk phone: registered over TLS with SDES-SRTP mandatory
(``mediaenc=srtp-mand``), headless (a temp config directory).

pjsua2's wheel is built without TLS and its binding exposes no SRTP setting, so the SRTP phone
of the tests is baresip (libre with OpenSSL, its ``srtp`` module). As callee it runs the
``echo`` module: it answers and sends back what it receives, so a plain phone hearing its own
tone proves the audio crossed the SRTP leg both ways (decrypted and encrypted by baresip).
As caller it sends a 440 Hz tone (``ausine``).
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.sip.engine_fixtures import SIP_PASSWORD, EngineHandle

__all__ = ["Baresip", "self_signed"]


def self_signed(directory: Path) -> tuple[str, str]:
    """A self-signed certificate and key for the engine's TLS listener (paths)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sip.crt", directory / "sip.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


class Baresip:
    """One baresip process for extension ``user``: over TLS, SRTP mandatory."""

    def __init__(
        self, engine: EngineHandle, directory: Path, user: str, *, echo: bool, dial: str = ""
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        modules = ["g711.so", "srtp.so", "ausine.so", "aufile.so"]
        apps = ["account.so", "menu.so", *(["echo.so"] if echo else [])]
        lines = [
            "poll_method\t\tepoll",
            "sip_listen\t\t127.0.0.1:0",
            "module_path\t\t/usr/lib/baresip/modules",
            *[f"module\t\t\t{m}" for m in modules],
            *[f"module_app\t\t{m}" for m in apps],
            "audio_player\t\taufile,/dev/null",
            "audio_source\t\tausine,440",
            # ausine only makes 48 kHz stereo; baresip resamples it to the call's 8 kHz mono.
            "ausrc_srate\t\t48000",
            "ausrc_channels\t\t2",
        ]
        (directory / "config").write_text("\n".join(lines) + "\n")
        tls = engine.addresses["TLS"]
        (directory / "accounts").write_text(
            f"<sip:{user}@acme.test;transport=tls>;auth_pass={SIP_PASSWORD};"
            f'outbound="sip:{tls[0]}:{tls[1]};transport=tls";regint=120;'
            f"mediaenc=srtp-mand;answermode=auto\n"
        )
        argv = ["baresip", "-f", str(directory)]
        if dial:
            argv += ["-e", f"/dial sip:{dial}@acme.test"]
        self.log = directory / "baresip.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed test command line
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()
