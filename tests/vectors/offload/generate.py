"""Writes messages.json: the signed messages of docs/offload.md §3 and a receipt (format.md §9),
made with fixed keys. Run `python tests/vectors/offload/generate.py` to regenerate; the test
checks the file against the code, so a change to either shows."""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))

from nacl.signing import SigningKey  # noqa: E402

from device.evidence.receipt import RECEIPT_DOMAIN, _canonical, make_receipt  # noqa: E402
from device.offload.protocol import (  # noqa: E402
    request_message, response_message, sha256_hex, sign_request, sign_response,
)

DEVICE_SEED = bytes(range(32))
INTAKE_SEED = bytes(range(32, 64))


def build() -> dict:
    device, intake = SigningKey(DEVICE_SEED), SigningKey(INTAKE_SEED)
    d = bytes(device.verify_key).hex()
    body = b"part bytes\n"
    path = f"/v1/devices/{d}/segments/3/{sha256_hex(b'whole file')}/parts/0"
    utc_us, nonce = 1764547200123456, "00112233445566778899aabbccddeeff"
    headers = sign_request(device, "PUT", path, sha256_hex(body), utc_us, nonce)
    resp_body = json.dumps({"status": "stored", "receipt": None}, sort_keys=True).encode()
    resp_headers = sign_response(intake, nonce, 200, resp_body)
    receipt = make_receipt(intake, d, {"seq": 3, "hash": "ab" * 32, "chunks": 7},
                           {"n": 41, "hash": "cd" * 32}, 1764547201000000)
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}
    empty = make_receipt(intake, d, None, None, 1764547201000000)
    refusal_nonce = "ffeeddccbbaa99887766554433221100"
    refusal_body = json.dumps({"detail": "the intake holds 10 bytes of audit file 1, not 20",
                               "error": "audit_gap"}, sort_keys=True).encode()
    return {
        "comment": "docs/offload.md §10; Ed25519 (RFC 8032) with the seeds below",
        "device_seed": DEVICE_SEED.hex(), "device_key": d,
        "intake_seed": INTAKE_SEED.hex(), "intake_key": bytes(intake.verify_key).hex(),
        "request": {"method": "PUT", "path": path, "utc_us": utc_us, "nonce": nonce,
                    "body_hex": body.hex(), "body_sha256": sha256_hex(body),
                    "signed_bytes_hex": request_message("PUT", path, utc_us, nonce, sha256_hex(body)).hex(),
                    "headers": headers},
        "response": {"nonce": nonce, "status": 200, "body_hex": resp_body.hex(),
                     "signed_bytes_hex": response_message(nonce, 200, sha256_hex(resp_body)).hex(),
                     "headers": resp_headers},
        "receipt": {"object": receipt, "signed_bytes_hex": (RECEIPT_DOMAIN + _canonical(unsigned)).hex()},
        "receipt_covering_nothing": {"object": empty, "signed_bytes_hex": (RECEIPT_DOMAIN + _canonical(
            {k: v for k, v in empty.items() if k != "signature"})).hex()},
        "refusal": {"nonce": refusal_nonce, "status": 409, "body_hex": refusal_body.hex(),
                    "signed_bytes_hex": response_message(refusal_nonce, 409, sha256_hex(refusal_body)).hex(),
                    "headers": sign_response(intake, refusal_nonce, 409, refusal_body)},
    }


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "messages.json")
    with open(out, "w") as f:
        json.dump(build(), f, indent=2, sort_keys=True)
        f.write("\n")
    print(out)
