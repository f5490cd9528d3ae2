"""Sealing: data at rest that only this TEE identity can open.

A real TEE derives its sealing key from the CPU and the enclave's measurement; the simulated
backend keeps a random sealing secret in a file of the TEE's own state folder (mode 0600) and
binds it to the measurement the same way, so code with another measurement cannot unseal.
"""

from __future__ import annotations

import os
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.utils import random

from coprocessor.errors import SealingError
from protocol.kdf import hkdf


def sealing_key(secret: bytes, measurement: bytes) -> bytes:
    return hkdf(secret, b"enclave-agents/v1/sealing/" + measurement)


def seal(key: bytes, plaintext: bytes) -> bytes:
    return bytes(SecretBox(key).encrypt(plaintext))


def unseal(key: bytes, sealed: bytes) -> bytes:
    try:
        return bytes(SecretBox(key).decrypt(sealed))
    except CryptoError as err:
        raise SealingError("sealed data cannot be opened by this identity") from err


def load_or_create_secret(path: Path) -> bytes:
    """The simulated CPU secret: 32 random bytes, created once, readable by the owner only."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = random(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
    return secret


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
