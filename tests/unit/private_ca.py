"""A private certificate authority for tests: a root (Ed25519) that issues C2PA claim-signing
certificates for release keys, from their CSR (`bwc release-csr`), with the profile
docs/release-credentials.md §3 asks an agency's CA for. Imported by the credentials tests."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from tools.release.certs import SIGNING_EKUS

_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class PrivateCA:
    key: ed25519.Ed25519PrivateKey
    certificate: x509.Certificate

    @property
    def anchor_pem(self) -> bytes:
        """The root certificate: what a verifier passes as its trust anchor."""
        return self.certificate.public_bytes(_PEM)

    def issue(self, csr_pem: bytes, *, valid_days: int = 365, ekus=SIGNING_EKUS) -> bytes:
        """The chain PEM (end-entity, then this root) for the key and subject of `csr_pem`."""
        csr = x509.load_pem_x509_csr(csr_pem)
        assert csr.is_signature_valid, "the CSR is not signed by its own key"
        now = datetime.datetime.now(datetime.timezone.utc)
        public_key = csr.public_key()
        builder = (x509.CertificateBuilder()
                   .subject_name(csr.subject).issuer_name(self.certificate.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=valid_days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        leaf = builder.sign(self.key, None)
        return leaf.public_bytes(_PEM) + self.anchor_pem


def make_root(name: str = "OpenBWC Test Agency Root CA") -> PrivateCA:
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenBWC tests")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, None))
    return PrivateCA(key, cert)
