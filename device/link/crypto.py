"""The pod link's primitives (docs/link.md §2, §3): HMAC-SHA256, HKDF-SHA256, AES-128-CTR.

Only what a MicroPython board has: hashlib.sha256 and cryptolib.aes in ECB mode (its CTR
mode is a build option most ports leave out, so CTR is built here from ECB blocks). On
CPython the AES block comes from `cryptography` (OpenSSL); HMAC and HKDF are written out
because MicroPython has no hmac module, and are checked against CPython's hmac and the RFC
vectors in tests.
"""
import hashlib

try:
    import cryptolib   # MicroPython

    def _aes_ecb(key):
        return cryptolib.aes(key, 1).encrypt
except ImportError:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def _aes_ecb(key):
        return Cipher(algorithms.AES(key), modes.ECB()).encryptor().update

BLOCK = 64   # SHA-256 block size
_IPAD = bytes(0x36 for _ in range(BLOCK))
_OPAD = bytes(0x5C for _ in range(BLOCK))


def sha256(data):
    return hashlib.sha256(data).digest()


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def hmac_sha256(key, data):
    if len(key) > BLOCK:
        key = sha256(key)
    key = key + bytes(BLOCK - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(data)
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def hkdf(ikm, salt, info, length):
    """RFC 5869 with SHA-256."""
    if not 0 < length <= 255 * 32:
        raise ValueError("hkdf length out of range")
    prk = hmac_sha256(salt, ikm)
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes([i]))
        out += block
        i += 1
    return out[:length]


def aes_ctr(key, initial_block, data):
    """AES-128-CTR: the last 3 bytes of `initial_block` count 16-byte blocks from 0
    (docs/link.md §3); the same call encrypts and decrypts."""
    if len(key) != 16 or len(initial_block) != 16 or initial_block[13:] != b"\x00\x00\x00":
        raise ValueError("aes_ctr needs a 16-byte key and a block ending in three zero bytes")
    if len(data) > 16 * 0xFFFFFF:
        raise ValueError("aes_ctr: data too long")
    encrypt = _aes_ecb(key)
    prefix = initial_block[:13]
    out = bytearray(len(data))
    for i in range(0, len(data), 16):
        n = i // 16
        stream = encrypt(prefix + bytes([(n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]))
        chunk = data[i:i + 16]
        for j in range(len(chunk)):
            out[i + j] = chunk[j] ^ stream[j]
    return bytes(out)


def equal(a, b):
    """Constant-time comparison of two byte strings (the time depends on the length only)."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
