"""A tenant's own TLS certificate: the checks on upload (certificates made here by a test PKI:
root -> intermediate -> leaf), the REST API, tenant isolation, and what reaches the engines
(the ``sip:tls:hosts`` hash, on commit)."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pbx.audit import SYSTEM
from pbx.crypto import decrypt
from pbx.errors import Conflict, ValidationFailed
from pbx.models import AuditEntry
from telephony.engine.store import client, redis_key
from telephony.sip.contract import TLS_HOSTS
from tenants import actions
from tenants.certificates import covers
from tenants.models import CertificateHost, Domain, TenantCertificate
from tests.certkit import DAY, NOW, TestPki, key_pem, pem, weak_rsa_key
from tests.conftest import Api

pytestmark = pytest.mark.django_db
URL = "/api/v1/certificates/"


def published(host: str) -> dict | None:
    raw = client().hget(redis_key(TLS_HOSTS), host)
    return json.loads(raw) if raw else None


def refused(world, chain: str, key: str) -> dict:
    """Upload for tenant A through the action; the refusal's field errors."""
    before = TenantCertificate.objects.count()
    with pytest.raises(ValidationFailed) as caught:
        actions.do_upload_certificate(world.tenant_a, chain=chain, key=key, actor=SYSTEM)
    assert TenantCertificate.objects.count() == before  # nothing written
    return caught.value.fields


# --- the checks ----------------------------------------------------------------------------


def test_a_good_chain_is_accepted_and_its_key_stored_encrypted(world, pki):
    leaf = pki.leaf("acme.test", "www.acme.test")
    cert = actions.do_upload_certificate(
        world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
    )
    assert [r.host for r in cert.host_rows.all()] == ["acme.test"]
    assert cert.names == ["acme.test", "www.acme.test"]
    assert cert.fingerprint == leaf.fingerprint
    assert cert.issuer == "CN=Test Intermediate CA"
    assert cert.key_type == "EC P-256"
    assert "PRIVATE KEY" not in cert.key_encrypted
    assert "PRIVATE KEY" in decrypt(cert.key_encrypted)
    assert 88 <= cert.days_left <= 90


def test_the_chain_may_end_with_the_trusted_root(world, pki):
    leaf = pki.leaf("acme.test")
    chain = leaf.chain_pem + pki.root_pem
    cert = actions.do_upload_certificate(
        world.tenant_a, chain=chain, key=leaf.key_pem, actor=SYSTEM
    )
    assert cert.chain_pem.count("BEGIN CERTIFICATE") == 3


def test_wrong_order_is_refused(world, pki):
    leaf = pki.leaf("acme.test")
    leaf_pem, mid, root = pem(leaf.cert), pem(pki.intermediate), pki.root_pem
    message = refused(world, mid + leaf_pem, leaf.key_pem)["chain"][0]
    assert message.startswith("The chain is out of order: certificate 2 (CN=acme.test)")
    message = refused(world, leaf_pem + root + mid, leaf.key_pem)["chain"][0]
    assert "certificate 2 (CN=Test Root CA) is a root, which may only come last" in message
    message = refused(world, leaf.chain_pem + leaf_pem, leaf.key_pem)["chain"][0]
    assert message == "Certificate 3 of the chain repeats certificate 1."


def test_a_missing_intermediate_is_refused(world, pki):
    leaf = pki.leaf("acme.test")
    fields = refused(world, pem(leaf.cert), leaf.key_pem)
    assert "intermediate certificate is missing" in fields["chain"][0]
    assert "Test Intermediate CA" in fields["chain"][0]


def test_a_chain_from_an_untrusted_ca_is_refused(world, pki):
    other = TestPki("Other")
    leaf = other.leaf("acme.test")
    fields = refused(world, leaf.chain_pem + other.root_pem, leaf.key_pem)
    assert "not trusted" in fields["chain"][0]


def test_a_key_of_another_certificate_is_refused(world, pki):
    leaf, other = pki.leaf("acme.test"), pki.leaf("acme.test")
    fields = refused(world, leaf.chain_pem, other.key_pem)
    assert fields == {"key": ["The private key does not belong to the certificate."]}


def test_expired_and_not_yet_valid_are_refused(world, pki):
    old = pki.leaf("acme.test", start=NOW - 400 * DAY, end=NOW - DAY)
    assert "expired on" in refused(world, old.chain_pem, old.key_pem)["chain"][0]
    future = pki.leaf("acme.test", start=NOW + 2 * DAY, end=NOW + 90 * DAY)
    assert "not valid before" in refused(world, future.chain_pem, future.key_pem)["chain"][0]


def test_a_certificate_for_other_hosts_is_refused(world, pki):
    leaf = pki.leaf("beta.test", "*.test")
    message = refused(world, leaf.chain_pem, leaf.key_pem)["chain"][0]
    assert "none of this tenant's host names (acme.test)" in message


def test_no_subject_alt_name_covers_nothing(world, pki):
    leaf = pki.leaf(cn="acme.test")
    assert "covers nothing" in refused(world, leaf.chain_pem, leaf.key_pem)["chain"][0]


def test_a_wildcard_covers_one_label(world, pki):
    Domain.objects.create(domain="portal.acme.test", tenant=world.tenant_a)
    leaf = pki.leaf("*.acme.test")
    cert = actions.do_upload_certificate(
        world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
    )
    # acme.test itself is not under *.acme.test; portal.acme.test is
    assert [r.host for r in cert.host_rows.all()] == ["portal.acme.test"]
    assert covers("*.acme.test", "PORTAL.acme.test.")
    assert not covers("*.acme.test", "a.portal.acme.test")
    assert not covers("*.acme.test", "acme.test")
    assert not covers("*.test", "acme.test")  # never a whole top-level domain


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (lambda: weak_rsa_key(), "The RSA key has 1024 bits; at least 2048 are needed."),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "The EC curve secp521r1 is not"),
    ],
)
def test_weak_or_unusual_keys_are_refused(world, pki, key, problem):
    leaf = pki.leaf("acme.test", key=key())
    assert refused(world, leaf.chain_pem, leaf.key_pem)["key"][0].startswith(problem)


def test_garbage_gets_a_clear_error(world, pki):
    leaf = pki.leaf("acme.test")
    assert "No PEM certificate found" in refused(world, "hello", leaf.key_pem)["chain"][0]
    broken = leaf.chain_pem.replace("MI", "xx", 1)
    assert "Certificate 1 of the chain" in refused(world, broken, leaf.key_pem)["chain"][0]
    assert refused(world, leaf.chain_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n")["key"] == [
        "The private key is not a valid PEM private key."
    ]
    assert "larger than" in refused(world, leaf.chain_pem * 200, leaf.key_pem)["chain"][0]
    assert refused(world, "", "")["chain"] == ["The certificate chain is required."]


def test_a_passphrase_protected_key_is_refused(world, pki):
    from cryptography.hazmat.primitives import serialization

    leaf = pki.leaf("acme.test")
    locked = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-pass"),
    ).decode()
    assert "passphrase" in refused(world, leaf.chain_pem, locked)["key"][0]


# --- the API -------------------------------------------------------------------------------


def test_admin_uploads_reads_and_deletes_over_the_api(
    world, pki, django_capture_on_commit_callbacks
):
    """A tenant admin uploads the certificate of acme.test; the engines get it (chain and key)
    at once; the API shows hosts, expiry and fingerprint, never the key; deleting it gives the
    host back to the platform's certificate."""
    api = Api("acme.test", world.a_admin)
    leaf = pki.leaf("acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(URL, {"chain": leaf.chain_pem, "key": leaf.key_pem})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["hosts"] == ["acme.test"]
    assert body["fingerprint"] == leaf.fingerprint
    assert body["uploaded_by"] == "admin@acme.test"
    assert 88 <= body["days_left"] <= 90
    assert "key" not in body
    assert "PRIVATE" not in r.content.decode()
    wire = published("acme.test")
    assert wire["fingerprint"] == leaf.fingerprint
    assert wire["chain"].count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" in wire["key"]

    listed = api.get(URL).json()
    assert [c["id"] for c in listed["items"]] == [body["id"]]
    assert audited_actions(world) >= {"certificate.upload"}

    # A new certificate for the same host replaces the old one.
    newer = pki.leaf("acme.test", "sip.acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        r2 = api.post(URL, {"chain": newer.chain_pem, "key": newer.key_pem})
    assert r2.status_code == 201
    assert not TenantCertificate.objects.filter(pk=body["id"]).exists()
    assert published("acme.test")["fingerprint"] == newer.fingerprint

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{URL}{r2.json()['id']}/").status_code == 204
    assert published("acme.test") is None
    assert not CertificateHost.objects.filter(host="acme.test").exists()
    assert "certificate.delete" in audited_actions(world)


def audited_actions(world) -> set[str]:
    rows = AuditEntry.objects.filter(tenant=world.tenant_a, action__startswith="certificate.")
    return set(rows.values_list("action", flat=True))


def test_bad_uploads_are_field_errors_not_500(world, pki):
    api = Api("acme.test", world.a_admin)
    leaf = pki.leaf("acme.test")
    for data, field in (
        ({"chain": "garbage", "key": leaf.key_pem}, "chain"),
        ({"chain": leaf.chain_pem, "key": "garbage"}, "key"),
        ({"chain": leaf.chain_pem}, "key"),
        ({"chain": "\x00\xff" * 10, "key": "\x7f"}, "chain"),
        ({"chain": "x" * 80_000, "key": leaf.key_pem}, "chain"),
    ):
        r = api.post(URL, data)
        assert r.status_code == 400, (field, r.content)
        assert r.json()["code"] == "VALIDATION_ERROR"
        assert field in r.json()["fields"], r.json()
    assert not TenantCertificate.objects.exists()


def test_another_tenant_cannot_see_or_delete_it(world, pki, django_capture_on_commit_callbacks):
    leaf = pki.leaf("acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        cert = actions.do_upload_certificate(
            world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
        )
    beta = Api("beta.test", world.b_admin)
    assert beta.get(f"{URL}{cert.pk}/").status_code == 404
    assert beta.delete(f"{URL}{cert.pk}/").status_code == 404
    assert beta.get(URL).json()["items"] == []
    # A's admin on B's host: nothing there either.
    assert Api("beta.test", world.a_admin).get(f"{URL}{cert.pk}/").status_code in (401, 404)
    # And a user of A without tenant.settings may not read it.
    assert Api("acme.test", world.a_user).get(URL).status_code == 403
    assert TenantCertificate.objects.filter(pk=cert.pk).exists()
    assert published("acme.test")["fingerprint"] == leaf.fingerprint
    # B cannot upload a certificate for A's host either.
    r = beta.post(URL, {"chain": leaf.chain_pem, "key": leaf.key_pem})
    assert r.status_code == 400
    assert "none of this tenant's host names (beta.test)" in r.json()["fields"]["chain"][0]


def test_a_host_name_the_tenant_loses_is_no_longer_served(
    world, pki, django_capture_on_commit_callbacks
):
    """The certificate serves the tenant's host names only: when acme.test stops being one
    (a new SIP domain and web host), its row goes, and the engines' hash follows."""
    from telephony.engine.tls import publish_all

    leaf = pki.leaf("acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_upload_certificate(
            world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
        )
    assert published("acme.test") is not None
    # (the commit callbacks are not run: they would move the shared world's snapshots)
    actions.do_update_tenant(world.tenant_a, sip_domain="acme2.test", actor=SYSTEM)
    assert CertificateHost.objects.filter(host="acme.test").exists()  # still the web host
    actions.do_update_tenant(world.tenant_a, web_host="www.acme2.test", actor=SYSTEM)
    assert not TenantCertificate.objects.filter(tenant=world.tenant_a).exists()
    publish_all()
    assert published("acme.test") is None


def test_only_a_ca_may_sign_and_the_leaf_is_a_servers(world, pki):
    """Chains every client refuses are refused here too: a certificate signed by a leaf (a
    tenant forging a name with the key of a certificate it owns), a CA certificate served as
    the leaf, a leaf only for TLS clients."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from tests.certkit import _cert

    owned = pki.leaf("owned.example")
    key = ec.generate_private_key(ec.SECP256R1())
    forged = _cert("acme.test", "owned.example", key.public_key(), owned.key, ca=False,
                   names=("acme.test",))  # fmt: skip
    chain = pem(forged) + pem(owned.cert) + pem(pki.intermediate)
    message = refused(world, chain, key_pem(key))["chain"][0]
    assert (
        message
        == "Certificate 2 (CN=owned.example) signs the one before it but is not a CA certificate."
    )

    ca_leaf = _cert("acme.test", "Test Intermediate CA", key.public_key(), pki.mid_key, ca=True,
                    names=("acme.test",))  # fmt: skip
    message = refused(world, pem(ca_leaf) + pem(pki.intermediate), key_pem(key))["chain"][0]
    assert "is a CA certificate, not a server's" in message

    now = datetime.datetime.now(datetime.UTC)
    client_only = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme.test")]))
        .issuer_name(pki.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("acme.test")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.mid_key, hashes.SHA256())
    )
    message = refused(world, pem(client_only) + pem(pki.intermediate), key_pem(key))["chain"][0]
    assert "not for TLS servers" in message


def test_a_name_another_tenants_certificate_serves_is_not_taken_over(world, pki):
    """An upload never takes a host name from another tenant's certificate (a SIP domain
    made equal to another tenant's host): 409, and the other tenant's row stays."""
    theirs = pki.leaf("beta.test")
    cert_b = actions.do_upload_certificate(
        world.tenant_b, chain=theirs.chain_pem, key=theirs.key_pem, actor=SYSTEM
    )
    CertificateHost.objects.create(host="acme.test", certificate=cert_b)  # B's, somehow
    mine = pki.leaf("acme.test")
    with pytest.raises(Conflict) as caught:
        actions.do_upload_certificate(
            world.tenant_a, chain=mine.chain_pem, key=mine.key_pem, actor=SYSTEM
        )
    assert "Another tenant's certificate serves acme.test" in caught.value.message
    assert CertificateHost.objects.get(host="acme.test").certificate == cert_b
    assert not TenantCertificate.objects.filter(tenant=world.tenant_a).exists()
