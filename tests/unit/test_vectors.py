"""The evidence-format test vectors (tests/vectors/*.vector) against the reference reader.

Each vector says what a custodian must observe: the verify outcome, how many chunks are
authenticated, and whether the custodian key decrypts them to the pinned media hash.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from device.evidence.decrypt import NotARecipient, decrypt_segment
from device.evidence.segment_reader import OUTCOMES, TRUNCATED, verify_segment

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = sorted(VECTOR_DIR.glob("*.vector"))


def _load_generator():
    spec = importlib.util.spec_from_file_location("openbwc_vector_generator", VECTOR_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def parse_vector(blob: bytes) -> tuple[dict, bytes]:
    """Independent of the generator's parser: `key: value` lines, a blank line, the body."""
    head, sep, body = blob.partition(b"\n\n")
    assert sep, "vector has no blank line after its header"
    headers = {}
    for line in head.decode("ascii").splitlines():
        key, sep, value = line.partition(": ")
        assert sep and key not in headers, f"bad header line {line!r}"
        headers[key] = value
    assert set(headers) <= set(generator.HEADER_KEYS), f"unknown header keys {set(headers) - set(generator.HEADER_KEYS)}"
    return headers, body


def check_vector(headers: dict, body: bytes) -> None:
    """Assert everything the vector declares."""
    expect, decrypt = headers["expect"], headers["decrypt"]
    assert expect in OUTCOMES
    assert decrypt in ("ok", "not_recipient", "none")
    report = verify_segment(body, VerifyKey(bytes.fromhex(headers["device_pub"])))
    assert report.outcome == expect, report.reason
    assert report.reason or expect == "authentic"

    if report.ok:
        assert "chunks" in headers, "authentic/truncated vectors declare their chunk count"
        chunks = int(headers["chunks"])
        assert len(report.chunks) == chunks
        assert (report.last.chunk_count if report.last else 0) == chunks
    else:
        assert "chunks" not in headers
        assert report.chunks == []  # a failed file exposes nothing as authenticated

    secret = PrivateKey(bytes.fromhex(headers["custodian_key"]))
    if decrypt == "none":
        assert not report.authenticated
        assert "payload_sha256" not in headers
    elif decrypt == "not_recipient":
        assert report.authenticated
        with pytest.raises(NotARecipient):
            decrypt_segment(body, report, secret)
    else:
        plain = decrypt_segment(body, report, secret)
        assert plain.chunks == int(headers["chunks"])
        assert hashlib.sha256(plain.media).hexdigest() == headers["payload_sha256"]
        # The FINAL secretstream tag is among the authenticated chunks exactly when the
        # whole segment is signed: always for authentic, and for a torn final copy.
        if expect == "authentic":
            assert plain.ended_cleanly


def test_there_are_vectors():
    assert len(VECTORS) >= 25


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path):
    headers, body = parse_vector(path.read_bytes())
    check_vector(headers, body)


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_name_matches_outcome(path):
    """Vector names start with their outcome (not_recipient/two_recipients are authentic files)."""
    expect = parse_vector(path.read_bytes())[0]["expect"]
    assert path.stem.startswith(expect) or expect == "authentic"


def test_vectors_stay_small():
    sizes = {p.name: p.stat().st_size for p in VECTORS}
    # One vector needs a media add over 1 MiB (two chunks); everything else is small.
    big = {name for name, size in sizes.items() if size >= 100_000}
    assert big <= {"authentic_multi_checkpoint.vector"}
    assert sum(sizes.values()) < 3_000_000


def test_expectations_cover_every_outcome():
    used = {parse_vector(p.read_bytes())[0]["expect"] for p in VECTORS}
    assert used == set(OUTCOMES)
    decrypts = {parse_vector(p.read_bytes())[0]["decrypt"] for p in VECTORS}
    assert decrypts == {"ok", "not_recipient", "none"}


def test_truncated_vectors_decrypt_a_prefix_of_the_authentic_payload():
    """A cut-short file yields a prefix of the media the clean file yields."""
    by_name = {p.stem: parse_vector(p.read_bytes()) for p in VECTORS}
    for name in ("truncated_mid_chunk", "truncated_after_checkpoint", "truncated_final_copy_missing"):
        headers, body = by_name[name]
        report = verify_segment(body, VerifyKey(bytes.fromhex(headers["device_pub"])))
        assert report.outcome == TRUNCATED
        media = decrypt_segment(body, report, PrivateKey(bytes.fromhex(headers["custodian_key"]))).media
        assert len(media) > 0
        assert hashlib.sha256(media).hexdigest() == headers["payload_sha256"]


def test_regenerated_vectors_agree_with_reader_and_committed_expectations(tmp_path):
    """Generator and reader agree: a fresh run (new random keys inside libsodium, so new
    bytes) declares the same expectations as the committed files and verifies as declared."""
    assert generator.main([str(tmp_path)]) == 0
    fresh = sorted(tmp_path.glob("*.vector"))
    assert [p.name for p in fresh] == [p.name for p in VECTORS]
    for path in fresh:
        headers, body = parse_vector(path.read_bytes())
        committed_headers, committed_body = parse_vector((VECTOR_DIR / path.name).read_bytes())
        assert headers == committed_headers, path.name
        assert len(body) == len(committed_body), path.name
        check_vector(headers, body)


def test_parser_round_trip():
    headers = {"expect": "authentic", "device_pub": "00", "custodian_key": "11", "decrypt": "none",
               "comment": "x: y"}
    body = b"\n\nraw\x00bytes\n"
    assert generator.parse(generator.render(headers, body)) == (headers, body)
    assert parse_vector(generator.render(headers, body)) == (headers, body)
