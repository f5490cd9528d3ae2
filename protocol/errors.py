"""The base exception of the shared protocol package.

ProtocolError
├── ArtifactMissing      a compiled contract is not in out/ (run `forge build`)
├── DeploymentError      a deployment file is missing or malformed, or a transaction reverted
├── EnvelopeError        a sealed envelope is malformed or cannot be opened (protocol/envelope.py)
└── ManifestError        an agent's @enclave line is malformed (also a ValueError)
"""

from __future__ import annotations


class ProtocolError(Exception):
    pass


class ArtifactMissing(ProtocolError):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(f"compiled contract {name} not found at {path}: run `forge build` (make setup)")
        self.name = name


class DeploymentError(ProtocolError):
    pass


class ManifestError(ProtocolError, ValueError):
    pass
