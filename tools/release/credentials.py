"""C2PA content credentials of a release copy (docs/release-credentials.md).

`embed` writes a copy of the release MP4 carrying a C2PA manifest, signed by the releasing
custodian's Ed25519 key under the agency's certificate: the original as its parentOf
ingredient, the redactions as standard actions, and an `org.openbwc.release` assertion
naming the signed release record. `read` gives back what a stock reader sees, plus the
signer's key; `check` holds it to the release key and the record.

Stock readers (c2patool, Adobe's Verify, c2pa-python's Reader) show the manifest; the
release record stays the authority on exactly what was hidden (docs/release.md §4).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import c2pa
import nacl.exceptions
import nacl.signing

from tools.release import c2pa_store

ASSERTION_LABEL = "org.openbwc.release"
ACTIONS_LABEL = "c2pa.actions.v2"
OPERATION_PARAMETER = "org.openbwc.operation"
_INGREDIENT_LABEL = "original"      # the builder's handle, resolved to a hashed URI when signed
_FORMAT = "video/mp4"
_MESSAGE_CHARS = 240


class CredentialsError(Exception):
    """One line for the user: the manifest is missing, malformed, or cannot be made."""


@dataclass(frozen=True)
class Credentials:
    """What the active C2PA manifest of a release says, and who signed it."""
    manifest_label: str
    title: str | None
    claim_generator: str | None          # "name/version" of the first claim generator
    validation_state: str                # "Trusted", "Valid" or "Invalid" (c2pa's words)
    validation_errors: tuple[str, ...]   # failure codes, e.g. "signingCredential.untrusted"
    signer_public_key_hex: str | None    # the Ed25519 key that signed the claim (None: not Ed25519)
    signer_subject: str | None
    release_assertion: dict | None       # the org.openbwc.release assertion's content
    actions: tuple[dict, ...]            # the c2pa.actions.v2 list, in order
    ingredient_title: str | None
    ingredient_relationship: str | None
    ingredient_sha256: str | None        # the original's SHA-256, from the release assertion


# Which standard C2PA action a redaction is (C2PA 2.x action vocabulary). c2pa.redacted is
# not used: in C2PA it means that assertions were removed from a manifest, not content.
def action_name(operation: dict) -> str:
    op = operation.get("op")
    if op == "cut":
        return "c2pa.trimmed"            # "removal of a temporal range of the content"
    if op in ("region", "face", "faces") and operation.get("style") == "blur":
        return "c2pa.filtered"           # a mosaic: an applied filter
    return "c2pa.edited"                 # a mask, a muted or toned span: an editorial change


def check_chain(cert_chain_pem: bytes, release_key: nacl.signing.SigningKey) -> None:
    """Raises CredentialsError unless the chain's first certificate is for `release_key` and
    fit to sign C2PA claims (bwc redact asks before the long re-encode, embed again)."""
    from tools.release.certs import CertificateError, chain_public_key_hex, profile_problems
    try:
        chain_key = chain_public_key_hex(cert_chain_pem)
        unfit = profile_problems(cert_chain_pem)
    except CertificateError as exc:
        raise CredentialsError(str(exc)) from None
    if chain_key != bytes(release_key.verify_key).hex():
        raise CredentialsError("the certificate chain's first certificate is not for this release key "
                               f"(it certifies {chain_key})")
    if unfit:
        raise CredentialsError("the release certificate cannot sign C2PA claims: " + "; ".join(unfit)
                               + " (docs/release-credentials.md §3)")


def embed(release_mp4_in: str, release_mp4_out: str, *, original_mp4: str, record_sha256: str,
          record_name: str, actions: list[dict], cert_chain_pem: bytes,
          release_key: nacl.signing.SigningKey, tsa_url: str | None = None,
          original_sha256: str | None = None, encoder: dict | None = None) -> None:
    """Write `release_mp4_out` (new, 0600): `release_mp4_in` with a signed C2PA manifest.

    `actions` are the release record's operations ({"op": ..., ...}), one C2PA action each,
    after c2pa.opened on the original and before c2pa.transcoded (the re-encode, with
    `encoder`). No network unless `tsa_url` names an RFC 3161 time-stamp authority."""
    check_chain(cert_chain_pem, release_key)
    if original_sha256 is None:
        original_sha256 = _sha256_file(original_mp4)
    manifest = manifest_definition(os.path.basename(release_mp4_out), record_name, record_sha256,
                                   original_sha256, actions, encoder or {})
    settings = {
        # A thumbnail of the ingredient would put a frame of the unredacted original into
        # the public release.
        "builder": {"thumbnail": {"enabled": False}},
        # The anchor is the verifier's business: after signing, check the signature and
        # bindings only (and nothing over the network).
        "verify": {"verify_trust": False, "verify_timestamp_trust": False,
                   "remote_manifest_fetch": False, "ocsp_fetch": False},
    }
    try:
        dest = _new_file(release_mp4_out)
    except OSError as exc:
        raise CredentialsError(f"cannot write {release_mp4_out}: {exc.strerror or exc}") from None
    try:
        with dest, c2pa.Context.from_dict(settings) as context, \
                c2pa.Builder(manifest, context=context) as builder:
            with open(original_mp4, "rb") as original:
                builder.add_ingredient({"title": os.path.basename(original_mp4), "relationship": "parentOf",
                                        "label": _INGREDIENT_LABEL}, _FORMAT, original)
            signer = c2pa.Signer.from_callback(lambda data: release_key.sign(data).signature,
                                               c2pa.C2paSigningAlg.ED25519, cert_chain_pem.decode("ascii"),
                                               tsa_url)
            with signer, open(release_mp4_in, "rb") as source:
                builder.sign(signer, _FORMAT, source, dest)
    except BaseException as exc:
        _remove_quietly(release_mp4_out)     # ours: created above with O_EXCL
        if isinstance(exc, (c2pa.C2paError, OSError, UnicodeDecodeError, ValueError)):
            raise CredentialsError(f"cannot sign the C2PA manifest: {_one_line(exc)}") from None
        raise


def read(mp4: str, trust_anchors_pem: bytes | None) -> Credentials:
    """The active C2PA manifest of `mp4`, validated against `trust_anchors_pem` (PEM roots;
    None: no anchor, so at best "Valid"). Raises CredentialsError, one line, if there is
    no manifest or it cannot be parsed."""
    settings: dict[str, Any] = {"verify": {"verify_trust": True, "remote_manifest_fetch": False,
                                           "ocsp_fetch": False}}
    if trust_anchors_pem is not None:
        from cryptography import x509
        try:
            x509.load_pem_x509_certificates(trust_anchors_pem)
            settings["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
        except (ValueError, TypeError):    # UnicodeDecodeError is a ValueError
            raise CredentialsError("the trust anchors are not PEM certificates") from None
    try:
        with c2pa.Context.from_dict(settings) as context, open(mp4, "rb") as f, \
                c2pa.Reader(_FORMAT, f, context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        raise CredentialsError(f"{mp4}: no C2PA manifest") from None
    except (c2pa.C2paError, OSError, ValueError) as exc:
        raise CredentialsError(f"{mp4}: the C2PA manifest cannot be read: {_one_line(exc)}") from None
    try:
        return _credentials(mp4, store)
    except (KeyError, TypeError, AttributeError, IndexError):
        raise CredentialsError(f"{mp4}: the C2PA manifest store is not shaped as C2PA defines") from None


def check(creds: Credentials, release_pub_hex: str, record_sha256: str, *,
          original_sha256: str | None = None, operations: list[dict] | None = None) -> list[str]:
    """What is wrong with `creds` for a release signed by `release_pub_hex` whose record hashes
    to `record_sha256`; empty when nothing is. With the record's `original.mp4_sha256` and
    `operations`, the manifest must also name that original and declare those operations."""
    problems = []
    if creds.validation_state != "Trusted":
        codes = ", ".join(creds.validation_errors) or "no failure code"
        problems.append(f"C2PA manifest not trusted by the trust anchor: {creds.validation_state} ({codes})")
    if creds.signer_public_key_hex is None:
        problems.append("C2PA manifest not signed with an Ed25519 key")
    elif creds.signer_public_key_hex != release_pub_hex.lower():
        problems.append(f"C2PA manifest signed by key {creds.signer_public_key_hex}, not the release key "
                        f"{release_pub_hex.lower()}")
    assertion = creds.release_assertion
    if assertion is None:
        problems.append(f"C2PA manifest has no {ASSERTION_LABEL} assertion")
    else:
        if assertion.get("kind") != "release":
            problems.append(f"C2PA {ASSERTION_LABEL} assertion's kind is {assertion.get('kind')!r}, not 'release'")
        if assertion.get("record_sha256") != record_sha256.lower():
            problems.append(f"C2PA {ASSERTION_LABEL} assertion names record SHA-256 "
                            f"{assertion.get('record_sha256')}, not this record's {record_sha256.lower()}")
    if creds.ingredient_relationship != "parentOf":
        problems.append("C2PA manifest has no parentOf ingredient (the original)")
    if original_sha256 is not None and creds.ingredient_sha256 != original_sha256.lower():
        problems.append(f"C2PA manifest names original SHA-256 {creds.ingredient_sha256}, not the record's "
                        f"{original_sha256.lower()}")
    if operations is not None:
        declared = [a.get("parameters", {}).get(OPERATION_PARAMETER) for a in creds.actions
                    if isinstance(a.get("parameters"), dict) and OPERATION_PARAMETER in a["parameters"]]
        if declared != [_cbor_friendly(op) for op in operations]:
            problems.append(f"C2PA manifest's actions declare {len(declared)} redactions other than the "
                            f"record's {len(operations)} operations")
    return problems


def manifest_definition(title: str, record_name: str, record_sha256: str, original_sha256: str,
                        operations: list[dict], encoder: dict) -> dict:
    """The manifest handed to c2pa's Builder (docs/release-credentials.md §1, its vector)."""
    tool_version = _tool_version()
    actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [_INGREDIENT_LABEL]}}]
    for operation in operations:
        action = {"action": action_name(operation), "description": _describe(operation),
                  "parameters": {OPERATION_PARAMETER: _cbor_friendly(operation)}}
        changes = _changes(operation)
        if changes:
            action["changes"] = changes
        actions.append(action)
    actions.append({"action": "c2pa.transcoded", "description": "re-encoded after the redactions",
                    "parameters": {"org.openbwc.encoder": _cbor_friendly(encoder)}})
    return {
        "claim_generator_info": [{"name": "openbwc", "version": tool_version}],
        "title": title,
        "format": _FORMAT,
        "assertions": [
            {"label": ACTIONS_LABEL, "data": {"actions": actions}},
            {"label": ASSERTION_LABEL, "data": {"kind": "release", "record": record_name,
                                                "record_sha256": record_sha256.lower(),
                                                "original_sha256": original_sha256.lower()}},
        ],
    }


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("openbwc")
    except PackageNotFoundError:
        return "source checkout"


def _changes(operation: dict) -> list[dict]:
    """Where the change is, as C2PA regions of interest (a temporal range of media seconds
    in NPT, and for a box a pixel rectangle): what a stock reader can point at."""
    start_s, end_s = operation.get("start_s"), operation.get("end_s")
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (start_s, end_s)):
        return []
    region = [{"type": "temporal", "time": {"type": "npt", "start": str(float(start_s)), "end": str(float(end_s))}}]
    box = operation.get("box")
    if isinstance(box, (list, tuple)) and len(box) == 4:
        region.append({"type": "spatial", "shape": {"type": "rectangle", "unit": "pixel",
                                                    "origin": {"x": float(box[0]), "y": float(box[1])},
                                                    "width": float(box[2]), "height": float(box[3])}})
    change = {"region": region}
    if operation.get("label") or operation.get("reason"):
        change["description"] = operation.get("label") or operation.get("reason")
    return [change]


def _describe(operation: dict) -> str:
    op = operation.get("op")
    span = f"{operation.get('start_s')}-{operation.get('end_s')} s"
    if op == "cut":
        return f"cut {span}: {operation.get('reason')}"
    if op == "audio":
        return f"audio {operation.get('mode')} {span}"
    return f"{op} {operation.get('style')} {span}"


def _cbor_friendly(value):
    # c2pa-rs renders a CBOR array of small integers as bytes (base64) in its JSON, so a box
    # [x, y, w, h] becomes a map, which every reader shows as numbers.
    if isinstance(value, dict):
        return {k: (_box(v) if k == "box" and isinstance(v, (list, tuple)) and len(v) == 4
                    else _cbor_friendly(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cbor_friendly(v) for v in value]
    return value


def _box(box) -> dict:
    return {"x": box[0], "y": box[1], "width": box[2], "height": box[3]}


def _credentials(mp4: str, store: dict) -> Credentials:
    label = store["active_manifest"]
    manifest = store["manifests"][label]
    assertions = {a["label"]: a.get("data") for a in manifest.get("assertions", [])}
    ingredients = [i for i in manifest.get("ingredients", []) if i.get("relationship") == "parentOf"]
    ingredient = ingredients[0] if len(ingredients) == 1 else {}
    release = assertions.get(ASSERTION_LABEL)
    generators = manifest.get("claim_generator_info") or [{}]
    generator = generators[0]
    results = store.get("validation_results", {})
    codes = [f["code"] for f in results.get("activeManifest", {}).get("failure", [])]
    for delta in results.get("ingredientDeltas", []):
        codes += [f["code"] for f in delta.get("validationDeltas", {}).get("failure", [])]
    actions = (assertions.get(ACTIONS_LABEL) or {}).get("actions", [])
    signer_key, key_problem = _signer_key(mp4, label)
    state = store.get("validation_state", "Invalid")
    if key_problem:
        codes.append(key_problem)
        state = "Invalid"
    info = manifest.get("signature_info") or {}
    return Credentials(
        manifest_label=label, title=manifest.get("title"),
        claim_generator=f"{generator.get('name')}/{generator.get('version')}" if generator else None,
        validation_state=state, validation_errors=tuple(codes), signer_public_key_hex=signer_key,
        signer_subject=info.get("common_name"), release_assertion=release if isinstance(release, dict) else None,
        actions=tuple(a for a in actions if isinstance(a, dict)),
        ingredient_title=ingredient.get("title"), ingredient_relationship=ingredient.get("relationship"),
        ingredient_sha256=release.get("original_sha256") if isinstance(release, dict) else None)


def _signer_key(mp4: str, label: str) -> tuple[str | None, str | None]:
    """The Ed25519 key that signed the active claim, checked here too (c2pa_store's docstring)."""
    from tools.release.certs import CertificateError, certificate_public_key_hex
    try:
        signature = c2pa_store.active_signature(c2pa_store.manifest_store(mp4), label)
        key_hex = certificate_public_key_hex(signature.certificates_der[0])
    except (c2pa_store.StoreError, CertificateError) as exc:
        raise CredentialsError(f"{mp4}: the C2PA signature cannot be read: {exc}") from None
    if key_hex is None or signature.algorithm != c2pa_store._COSE_EDDSA:
        return None, None
    try:
        nacl.signing.VerifyKey(bytes.fromhex(key_hex)).verify(signature.signed_message(), signature.signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return key_hex, "openbwc.claimSignature.mismatch"
    return key_hex, None


def _sha256_file(path: str) -> str:
    import hashlib
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def _new_file(path: str):
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), "w+b")


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS - 3] + "..."
