"""Reading a custodian-supplied file (a plan, a release record) with one-line refusals:
never more than `max_bytes` read, whatever the file is."""
from __future__ import annotations


def read_bounded(path: str, max_bytes: int, what: str, error: type[Exception]) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise error(f"{path}: over {max_bytes} bytes; not {what}")
    return raw


def read_pem_certificates(path: str, option: str, error: type[Exception]) -> bytes:
    """A certificate chain or trust anchors (PEM) named by a command-line option."""
    raw = read_bounded(path, 1_000_000, "PEM certificates", error)
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        raise error(f"{option} {path}: not PEM certificates")
    return raw


def unique_members(pairs: list[tuple[str, object]]) -> dict:
    """json object_pairs_hook: a repeated member is refused (two readers must not see two values)."""
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a member name is repeated")
    return dict(pairs)


def sha256_file(path: str) -> str:
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
