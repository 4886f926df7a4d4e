"""The release key's X.509 side: a CSR for the agency's CA, and keys read back from certificates.

The release key stays the project's Ed25519 key (`bwc keygen --release`); an agency's CA
certifies it so that stock C2PA readers can name the agency (docs/release-credentials.md §3).
"""
from __future__ import annotations

import nacl.signing
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What a C2PA claim-signing certificate needs (C2PA 2.x §14.5.1; c2pa-rs check_certificate_profile):
# X.509 v3; KeyUsage with digitalSignature (marked critical) and not keyCertSign; an
# ExtendedKeyUsage without anyExtendedKeyUsage; an AuthorityKeyIdentifier; no issuer or
# subject unique ids; valid when it signs. Of the EKUs, c2pa-python 0.38 (c2pa-rs 0.91) with
# its default settings accepts id-kp-emailProtection only (measured: id-kp-documentSigning,
# c2pa-kp-claimSigning 1.3.6.1.4.1.62558.2.1 or Microsoft's document signing alone are
# refused "certificate missing required EKU"), so the profile requires emailProtection and
# asks for documentSigning beside it, the purpose that says what the key does.
EKU_EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION          # 1.3.6.1.5.5.7.3.4
EKU_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")   # id-kp-documentSigning, RFC 9336
SIGNING_EKUS = (EKU_EMAIL_PROTECTION, EKU_DOCUMENT_SIGNING)

_SUBJECT_KEYS = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME,
                 "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "C": NameOID.COUNTRY_NAME,
                 "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
                 "emailAddress": NameOID.EMAIL_ADDRESS}
_MAX_SUBJECT_CHARS = 1024


class CertificateError(ValueError):
    pass


def parse_subject(subject: str) -> x509.Name:
    """`CN=Records Unit,O=City Police,C=US` -> an X.509 name (RFC 4514 order, `\\,` escapes a comma)."""
    if not subject or len(subject) > _MAX_SUBJECT_CHARS:
        raise CertificateError(f"the subject must be 1..{_MAX_SUBJECT_CHARS} characters, like CN=Records Unit,O=Agency")
    parts, current, escaped = [], "", False
    for ch in subject:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    attributes = []
    for part in parts:
        key, sep, value = part.strip().partition("=")
        if not sep or key.strip() not in _SUBJECT_KEYS or not value.strip():
            raise CertificateError(f"subject part {part.strip()!r} is not one of "
                                   f"{', '.join(k + '=...' for k in _SUBJECT_KEYS)}")
        oid, value = _SUBJECT_KEYS[key.strip()], value.strip()
        if oid == NameOID.COUNTRY_NAME and (len(value) != 2 or not value.isascii() or not value.isalpha()):
            raise CertificateError(f"subject C={value!r} must be a two-letter country code")
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
            raise CertificateError(f"subject part {key.strip()}= holds a control character")
        attributes.append(x509.NameAttribute(oid, value))
    if not any(a.oid == NameOID.COMMON_NAME for a in attributes):
        raise CertificateError("the subject needs a CN=... (the name C2PA readers show)")
    return x509.Name(attributes)


def make_csr(release_key: nacl.signing.SigningKey, subject: str) -> bytes:
    """A PEM PKCS #10 request, signed by the release key, asking for the C2PA signing profile."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(release_key))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(parse_subject(subject))
           # The extensions the CA is asked for; a CA applies its own profile, and the
           # verifier (c2pa) checks what was issued.
           .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                        data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                        crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
           .add_extension(x509.ExtendedKeyUsage(list(SIGNING_EKUS)), critical=False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .sign(key, None))
    return csr.public_bytes(serialization.Encoding.PEM)


def certificate_public_key_hex(der: bytes) -> str | None:
    """The raw Ed25519 public key of a DER certificate, hex; None for another key type."""
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the signing certificate does not parse ({_short(exc)})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return None
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def chain_public_key_hex(chain_pem: bytes) -> str | None:
    """The Ed25519 key of the first (end-entity) certificate of a PEM chain."""
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the certificate chain is not PEM certificates ({_short(exc)})") from None
    return certificate_public_key_hex(certs[0].public_bytes(serialization.Encoding.DER))


def profile_problems(chain_pem: bytes) -> list[str]:
    """What the chain's end-entity certificate lacks of the C2PA signing profile (above), in
    words an agency's CA operator can act on; empty when nothing."""
    import datetime
    try:
        cert = x509.load_pem_x509_certificates(chain_pem)[0]
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"the certificate chain is not PEM certificates ({_short(exc)})") from None
    problems = []
    ext = {e.oid: e for e in cert.extensions}
    if cert.version != x509.Version.v3:
        problems.append("it is not an X.509 v3 certificate")
    ku = ext.get(x509.oid.ExtensionOID.KEY_USAGE)
    if ku is None or not ku.value.digital_signature:
        problems.append("KeyUsage lacks digitalSignature")
    elif ku.value.key_cert_sign:
        problems.append("KeyUsage has keyCertSign (a CA key cannot sign claims)")
    eku = ext.get(x509.oid.ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None or EKU_EMAIL_PROTECTION not in eku.value:
        problems.append("ExtendedKeyUsage lacks id-kp-emailProtection (1.3.6.1.5.5.7.3.4)")
    elif ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku.value:
        problems.append("ExtendedKeyUsage has anyExtendedKeyUsage, which C2PA refuses")
    if x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in ext:
        problems.append("it has no AuthorityKeyIdentifier")
    basic = ext.get(x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if basic is not None and basic.value.ca:
        problems.append("BasicConstraints says it is a CA")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        problems.append(f"it is valid only {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}")
    return problems


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__
