"""The signature of a C2PA manifest embedded in an MP4, read from the file itself.

c2pa-python's Reader validates the signature and the certificate chain, but its JSON names
the signer only by subject, issuer and serial number: not by key. A verifier holding the
release key (docs/release-credentials.md §5) needs the key, so this module finds the active
manifest's COSE_Sign1 in the MP4's C2PA `uuid` box, takes the end-entity certificate from
its x5chain, and checks the Ed25519 signature over the claim itself, so the key it reports
is the key that signed, not merely a certificate that rode along.

The input is untrusted: every size is checked against its container, nesting and counts
are bounded, and anything malformed is a one-line StoreError.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import cbor2

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_MAX_TOP_BOXES = 1 << 20         # a fragmented MP4 has a moof and an mdat per fragment
_MAX_STORE_BYTES = 64 * 1024 * 1024     # a manifest store is kilobytes; this is generous
_MAX_DEPTH = 6
_MAX_CHILDREN = 4096
_COSE_SIGN1_TAG = 18
_COSE_ALG, _COSE_X5CHAIN = 1, 33
_COSE_EDDSA = -8


class StoreError(ValueError):
    pass


@dataclass(frozen=True)
class ManifestSignature:
    """The active manifest's signature: its certificates (end-entity first) and what it signs."""
    certificates_der: tuple[bytes, ...]
    algorithm: int              # the COSE alg id (-8 for EdDSA)
    protected: bytes            # the serialized protected header
    claim: bytes                # the claim box's bytes: the detached COSE payload
    signature: bytes

    def signed_message(self) -> bytes:
        """COSE Sig_structure for a Sign1 with a detached payload (RFC 9052 §4.4)."""
        return cbor2.dumps(["Signature1", self.protected, b"", self.claim])


def manifest_store(path: str) -> bytes:
    """The JUMBF manifest store of the MP4 at `path` (its top-level C2PA manifest box)."""
    found = None
    try:
        with open(path, "rb") as f:
            file_size = f.seek(0, 2)
            offset = 0
            for _ in range(_MAX_TOP_BOXES):
                if offset >= file_size:
                    break
                f.seek(offset)
                size, kind, header = _read_box_header(f.read(16), file_size - offset)
                if kind == b"uuid" and size >= header + 16 and _read_at(f, offset + header, 16) == C2PA_UUID:
                    if size > _MAX_STORE_BYTES:
                        raise StoreError("the MP4's C2PA box is larger than 64 MiB")
                    store = _manifest_box_store(_read_at(f, offset + header + 16, size - header - 16))
                    if store is not None:
                        if found is not None:
                            raise StoreError("the MP4 holds two C2PA manifest boxes")
                        found = store
                offset += size
            else:
                raise StoreError(f"the MP4 has more than {_MAX_TOP_BOXES} top-level boxes")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if found is None:
        raise StoreError("the MP4 has no C2PA manifest box")
    return found


def _read_at(f, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def _manifest_box_store(body: bytes) -> bytes | None:
    """The JUMBF of a C2PA box whose purpose is "manifest"; None for another purpose (merkle)."""
    # version and flags (4 bytes), the purpose, null-terminated, then an 8-byte offset
    end = body.find(b"\0", 4)
    if len(body) < 5 or end < 0:
        raise StoreError("the MP4's C2PA box has no purpose")
    if body[4:end] != b"manifest":
        return None
    if len(body) < end + 9:
        raise StoreError("the MP4's C2PA manifest box is cut short")
    return body[end + 9:]


def active_signature(store: bytes, manifest_label: str) -> ManifestSignature:
    """The signature of the manifest labelled `manifest_label` in a JUMBF manifest store."""
    top = _children(store, 0)
    if len(top) != 1 or top[0][0] != "c2pa":
        raise StoreError("the C2PA box does not hold one manifest store labelled c2pa")
    manifests = [box for box in top[0][1] if box[0] == manifest_label]
    if len(manifests) != 1:
        raise StoreError(f"the manifest store holds {len(manifests)} manifests labelled {manifest_label}")
    parts = {}
    for label, content in manifests[0][1]:
        if label in parts:
            raise StoreError(f"the manifest holds two boxes labelled {label}")
        parts[label] = content
    claims = [label for label in parts if label in ("c2pa.claim", "c2pa.claim.v2")]
    if len(claims) != 1 or "c2pa.signature" not in parts:
        raise StoreError("the manifest has no single claim and signature")
    claim, signature = _cbor_payload(parts[claims[0]]), _cbor_payload(parts["c2pa.signature"])
    return _parse_cose(signature, claim)


def _read_box_header(head: bytes, room: int) -> tuple[int, bytes, int]:
    if len(head) < 8:
        raise StoreError("a box header is cut short")
    size, kind = struct.unpack(">I4s", head[:8])
    header = 8
    if size == 1:
        if len(head) < 16:
            raise StoreError("a box header is cut short")
        size, header = struct.unpack(">Q", head[8:16])[0], 16
    elif size == 0:
        size = room            # "to the end of the file"
    if size < header or size > room:
        raise StoreError(f"a {kind!r} box of {size} bytes does not fit its container")
    return size, kind, header


def _boxes(buf: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each box laid end to end in `buf`."""
    out, offset = [], 0
    while offset < len(buf):
        if len(out) >= _MAX_CHILDREN:
            raise StoreError(f"a JUMBF box holds more than {_MAX_CHILDREN} boxes")
        size, kind, header = _read_box_header(buf[offset:offset + 16], len(buf) - offset)
        out.append((kind, buf[offset + header:offset + size]))
        offset += size
    return out


def _children(buf: bytes, depth: int) -> list[tuple[str, object]]:
    """JUMBF superboxes in `buf` as (label, content): nested superboxes as lists, else the raw boxes."""
    if depth > _MAX_DEPTH:
        raise StoreError("the JUMBF boxes nest too deep")
    out = []
    for kind, body in _boxes(buf):
        if kind != b"jumb":
            continue
        inner = _boxes(body)
        if not inner or inner[0][0] != b"jumd":
            raise StoreError("a JUMBF superbox does not start with its description box")
        label = _description_label(inner[0][1])
        if any(k == b"jumb" for k, _ in inner[1:]):
            out.append((label, _children(body, depth + 1)))
        else:
            out.append((label, inner[1:]))
    return out


def _description_label(body: bytes) -> str:
    # uuid (16), toggles (1), then the label, null-terminated, when toggle bit 1 is set
    if len(body) < 17 or not body[16] & 0x02:
        raise StoreError("a JUMBF description box has no label")
    end = body.find(b"\0", 17)
    if end < 0:
        raise StoreError("a JUMBF label is not terminated")
    try:
        return body[17:end].decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError("a JUMBF label is not UTF-8") from None


def _cbor_payload(content) -> bytes:
    if not isinstance(content, list) or len(content) != 1 or content[0][0] != b"cbor":
        raise StoreError("a claim or signature box does not hold one CBOR box")
    return content[0][1]


def _parse_cose(raw: bytes, claim: bytes) -> ManifestSignature:
    try:
        cose = cbor2.loads(raw)
        if not isinstance(cose, cbor2.CBORTag) or cose.tag != _COSE_SIGN1_TAG:
            raise StoreError("the signature is not a tagged COSE_Sign1")
        items = cose.value
        if not isinstance(items, (list, tuple)) or len(items) != 4:
            raise StoreError("the COSE_Sign1 does not have four members")
        protected, unprotected, payload, signature = items
        if not isinstance(protected, bytes) or not isinstance(signature, bytes) or payload is not None:
            raise StoreError("the COSE_Sign1 is not a detached signature over a protected header")
        header = cbor2.loads(protected)
    except StoreError:
        raise
    except Exception as exc:   # cbor2 raises several types (and RecursionError) on malformed input
        raise StoreError(f"the signature is not valid CBOR ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise StoreError("the COSE protected header is not a map")
    chain = header.get(_COSE_X5CHAIN)
    if chain is None and isinstance(unprotected, dict):
        chain = unprotected.get(_COSE_X5CHAIN)    # C2PA 1.x put it in the unprotected header
    if isinstance(chain, bytes):
        chain = [chain]
    if not isinstance(chain, (list, tuple)) or not chain or not all(isinstance(c, bytes) for c in chain):
        raise StoreError("the COSE signature carries no certificate chain")
    alg = header.get(_COSE_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise StoreError("the COSE protected header names no algorithm")
    return ManifestSignature(tuple(chain), alg, protected, claim, signature)
