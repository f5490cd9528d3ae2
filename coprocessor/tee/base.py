"""What every TEE backend offers: a measurement, quotes over report data, a sealing key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.hexes import to_hex

IDENTITY_LABEL = b"enclave-agents/v1/identity"


@dataclass(frozen=True)
class Quote:
    """Evidence that `report_data` comes from code with `measurement` on a `backend` TEE."""

    backend: str
    measurement: bytes
    report_data: bytes
    # The simulated authority's signature, or for dcap the raw Intel quote itself.
    signature: bytes
    # dcap only: the collateral (TCB info, QE identity, CRLs) as JSON, to verify offline.
    collateral: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "backend": self.backend,
            "measurement": to_hex(self.measurement),
            "reportData": to_hex(self.report_data),
            "signature": to_hex(self.signature),
        }
        if self.collateral is not None:
            data["collateral"] = self.collateral
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quote:
        return cls(
            backend=str(data["backend"]),
            measurement=bytes.fromhex(str(data["measurement"]).removeprefix("0x")),
            report_data=bytes.fromhex(str(data["reportData"]).removeprefix("0x")),
            signature=bytes.fromhex(str(data["signature"]).removeprefix("0x")),
            collateral=data.get("collateral"),
        )


def identity_report_data(identity_public_key: bytes) -> bytes:
    """The 64 bytes of report data that bind a TEE's X25519 identity key to its quote."""
    return hashlib.sha256(IDENTITY_LABEL + identity_public_key).digest() + bytes(32)


class TeeBackend(Protocol):
    name: str
    measurement: bytes

    def quote(self, report_data: bytes) -> Quote: ...

    def sealing_key(self) -> bytes: ...


class QuoteVerifier(Protocol):
    def verify(self, quote: Quote) -> bytes:
        """Checks a quote's authenticity; returns its measurement or raises AttestationError."""
        ...
