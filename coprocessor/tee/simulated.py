"""The simulated TEE: a local attestation authority stands in for the CPU vendor.

The authority's Ed25519 key signs `measurement || report_data`, as a CPU signs a quote; the
measurement is the SHA-256 of the worker's own code, as an enclave's is of its binary. What this
cannot give is hardware isolation: it proves the protocol, not the machine. The `dcap` backend
verifies real Intel quotes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from coprocessor.errors import AttestationError
from coprocessor.sealing import load_or_create_secret, sealing_key
from coprocessor.tee.base import Quote

BACKEND = "simulated"
QUOTE_LABEL = b"enclave-agents/v1/simulated-quote"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# What runs inside a worker or gatekeeper: the coprocessor and the protocol package it imports.
# Nothing of the host side (bridge/, webui/, enclave/) is in it, so editing those never changes
# the measurement that the chain allows.
MEASURED_PACKAGES = ("coprocessor", "protocol")


def code_measurement(salt: str = "", root: Path = PROJECT_ROOT) -> bytes:
    """SHA-256 over the measured packages' source files. `salt` stands for modified code in tests."""
    digest = hashlib.sha256()
    for package in MEASURED_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in {".py", ".js"} and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    digest.update(salt.encode())
    return digest.digest()


def load_authority(path: Path) -> SigningKey:
    """The authority's private key, created on first use (mode 0600) with its public key beside
    it (`<path>.pub`). Only processes that make quotes (workers, gatekeepers) read this file;
    whoever only verifies reads the public key."""
    authority = SigningKey(load_or_create_secret(path))
    public = public_key_path(path)
    if not public.exists():
        public.write_text(bytes(authority.verify_key).hex() + "\n")
    return authority


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.name.removesuffix(".key") + ".pub")


def load_authority_public_key(path: Path) -> bytes:
    """The authority's public key, as `load_authority` wrote it."""
    return bytes.fromhex(path.read_text().strip())


class SimulatedTee:
    """A TEE identity whose quotes the local authority signs."""

    name = BACKEND

    def __init__(self, authority: SigningKey, state_dir: Path, measurement: bytes) -> None:
        self._authority = authority
        self._secret = load_or_create_secret(state_dir / "cpu-secret")
        self.measurement = measurement

    def quote(self, report_data: bytes) -> Quote:
        if len(report_data) != 64:
            raise ValueError("report data is 64 bytes")
        signature = self._authority.sign(QUOTE_LABEL + self.measurement + report_data).signature
        return Quote(backend=BACKEND, measurement=self.measurement, report_data=report_data, signature=signature)

    def sealing_key(self) -> bytes:
        return sealing_key(self._secret, self.measurement)


class SimulatedVerifier:
    """Accepts quotes signed by one authority public key."""

    def __init__(self, authority_public_key: bytes) -> None:
        self._key = VerifyKey(authority_public_key)

    def verify(self, quote: Quote) -> bytes:
        if quote.backend != BACKEND:
            raise AttestationError(f"expected a {BACKEND} quote, got {quote.backend}")
        try:
            self._key.verify(QUOTE_LABEL + quote.measurement + quote.report_data, quote.signature)
        except BadSignatureError as err:
            raise AttestationError("quote signature is not the attestation authority's") from err
        return quote.measurement
