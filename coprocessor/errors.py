"""The base exception of the coprocessor.

CoprocessorError
├── AttestationError     a quote is forged, for an unknown measurement, or binds other keys
├── ProvisioningError    a worker could not get the cluster key from any gatekeeper
├── SealingError         sealed data is corrupt or sealed to another identity
└── CodeNotFound         no AgentCodePublished log carries this code hash (or it mismatches)
"""

from __future__ import annotations


class CoprocessorError(Exception):
    pass


class AttestationError(CoprocessorError):
    pass


class ProvisioningError(CoprocessorError):
    pass


class SealingError(CoprocessorError):
    pass


class CodeNotFound(CoprocessorError):
    def __init__(self, code_hash: bytes, detail: str = "no AgentCodePublished log carries it") -> None:
        super().__init__(f"agent code 0x{code_hash.hex()}: {detail}")
        self.code_hash = code_hash
