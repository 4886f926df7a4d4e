"""The release key's certificate request and profile check (docs/release-credentials.md §3),
and the C2PA signature reader (tools/release/c2pa_store.py) on untrusted bytes."""
from __future__ import annotations

import nacl.signing
import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from private_ca import make_root

from tools.release import c2pa_store
from tools.release.certs import CertificateError, make_csr, parse_subject, profile_problems

KEY = nacl.signing.SigningKey(bytes(range(32)))


def test_parse_subject_keeps_order_and_escaped_commas():
    name = parse_subject("CN=Records Unit, O=City Police\\, Central ,C=US")
    assert [(a.oid._name, a.value) for a in name] == [("commonName", "Records Unit"),
                                                      ("organizationName", "City Police, Central"),
                                                      ("countryName", "US")]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_subject_is_a_name_or_one_line(text):
    try:
        name = parse_subject(text)
    except CertificateError as exc:
        assert "\n" not in str(exc)
    else:
        assert any(a.oid == x509.oid.NameOID.COMMON_NAME for a in name)


def test_the_csr_asks_for_the_profile_and_a_ca_issue_passes_it():
    csr_pem = make_csr(KEY, "CN=Records Unit")
    ca = make_root()
    assert profile_problems(ca.issue(csr_pem)) == []


def test_profile_problems_name_what_a_certificate_lacks():
    ca = make_root()
    assert profile_problems(ca.issue(make_csr(KEY, "CN=x"), ekus=())) == [
        "ExtendedKeyUsage lacks id-kp-emailProtection (1.3.6.1.5.5.7.3.4)"]
    # the root itself is a CA, signs certificates and has no AuthorityKeyIdentifier
    problems = profile_problems(ca.anchor_pem)
    assert "KeyUsage lacks digitalSignature" in problems and "BasicConstraints says it is a CA" in problems
    with pytest.raises(CertificateError):
        profile_problems(b"not pem")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.text(max_size=60))
def test_the_store_parser_refuses_random_bytes_in_one_line(data, label):
    try:
        c2pa_store.active_signature(data, label)
    except c2pa_store.StoreError as exc:
        assert "\n" not in str(exc)


def _box(kind: bytes, body: bytes) -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def _superbox(label: str, *children: bytes) -> bytes:
    jumd = _box(b"jumd", bytes(16) + b"\x03" + label.encode() + b"\0")
    return _box(b"jumb", jumd + b"".join(children))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_well_formed_boxes_around_random_cbor_are_refused_in_one_line(claim, signature):
    store = _superbox("c2pa", _superbox("urn:m", _superbox("c2pa.claim.v2", _box(b"cbor", claim)),
                                        _superbox("c2pa.signature", _box(b"cbor", signature))))
    try:
        result = c2pa_store.active_signature(store, "urn:m")
    except c2pa_store.StoreError as exc:
        assert "\n" not in str(exc)
    else:
        assert result.certificates_der and result.claim == claim


def test_a_deeply_nested_store_is_refused():
    box = _superbox("x", _box(b"cbor", b""))
    for _ in range(50):
        box = _superbox("x", box)
    with pytest.raises(c2pa_store.StoreError, match="nest too deep"):
        c2pa_store.active_signature(_superbox("c2pa", box), "x")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_the_mp4_box_walk_refuses_random_files_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("walk") / "f.mp4"
    path.write_bytes(data)
    try:
        c2pa_store.manifest_store(str(path))
    except c2pa_store.StoreError as exc:
        assert "\n" not in str(exc)
