"""Tenants' TLS certificates to the engines (``contract.TLS_HOSTS``; the engine side is
``telephony.sip.tlshosts``).

For each host name: the active certificate (``tenants.models.CertificateHost``) with its key
decrypted, or no field at all (the platform's certificate serves it); then the host name on
``contract.TLS_HOSTS_CHANGED``. Called on commit by the certificate actions and by
``publish_all`` (``make run``), which also drops fields no certificate backs any more.
"""

import logging
from collections.abc import Iterable

from pbx.crypto import decrypt
from telephony.sip.contract import TLS_HOSTS, TLS_HOSTS_CHANGED, HostCertificate

from . import store

log = logging.getLogger(__name__)


def _wire(row) -> str:
    cert = row.certificate
    return HostCertificate(
        chain=cert.chain_pem, key=decrypt(cert.key_encrypted), fingerprint=cert.fingerprint
    ).to_json()


def publish_hosts(hosts: Iterable[str]) -> None:
    """Publish the current certificate (or none) of each of ``hosts``. Failures are logged:
    ``publish_all`` at the next start repairs a missed one."""
    from tenants.models import CertificateHost

    hosts = sorted({h.lower() for h in hosts if h})
    if not hosts:
        return
    rows = {
        r.host: r
        for r in CertificateHost.objects.filter(host__in=hosts).select_related("certificate")
    }
    try:
        pipe = store.client().pipeline()
        name = store.redis_key(TLS_HOSTS)
        for host in hosts:
            row = rows.get(host)
            if row is None:
                pipe.hdel(name, host)
            else:
                pipe.hset(name, host, _wire(row))
        for host in hosts:
            pipe.publish(store.redis_key(TLS_HOSTS_CHANGED), host)
        pipe.execute()
    except Exception:
        log.exception("could not publish the TLS certificates of %s", ", ".join(hosts))


def publish_all() -> int:
    """Every host's certificate, and no field for a host without one; returns the count."""
    from tenants.models import CertificateHost

    try:
        r = store.client(decode=True)
        published = {str(h) for h in r.hkeys(store.redis_key(TLS_HOSTS))}
    except Exception:
        log.exception("could not read the published TLS certificates")
        return 0
    current = set(CertificateHost.objects.values_list("host", flat=True))
    publish_hosts(current | published)
    return len(current)
