"""HKDF-SHA256 (RFC 5869), from `cryptography`: every key the system derives goes through here."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(key_material: bytes, info: bytes, length: int = 32, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 extract-and-expand; an empty salt is the RFC's default (hash-length zeros)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(key_material)
