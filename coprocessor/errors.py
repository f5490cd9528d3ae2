"""The base exception of the coprocessor.

CoprocessorError
├── AttestationError        a quote is forged, for an unknown measurement, or binds other keys
├── ProvisioningError       a worker could not get the cluster key from any gatekeeper
├── SealingError            sealed data is corrupt, sealed to another identity, or moved
├── CodeNotFound            no AgentCodePublished log carries this code hash (the node's fault)
├── CodeInvalid             the published code is not UTF-8 text (the agent's fault)
├── InsecureBackendRefused  the simulated TEE was about to run outside a development chain
├── NotReady                a worker holds no key for the chain's current epoch
├── RequestRefused          a request the chain did not make (other input or fields, not open)
├── HostUnavailable         the chain could not be asked: retry later, nothing was signed
│   └── OwnerSettingsUnreadable  the stored owner settings do not open: the host's file
├── FetchError              ctx.fetch refused or failed: a JS exception in the agent
└── HostError               any other host call refused: a JS exception in the agent
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


class InsecureBackendRefused(CoprocessorError):
    pass


class NotReady(CoprocessorError):
    pass


class RequestRefused(CoprocessorError):
    pass


class HostUnavailable(CoprocessorError):
    pass


class FetchError(CoprocessorError):
    pass


class HostError(CoprocessorError):
    pass


class CodeInvalid(CoprocessorError):
    def __init__(self, code_hash: bytes, detail: str) -> None:
        super().__init__(f"agent code 0x{code_hash.hex()}: {detail}")
        self.code_hash = code_hash


class OwnerSettingsUnreadable(HostUnavailable):
    pass


class WrongChain(CoprocessorError):
    """A call for a chain this worker does not serve (or naming none while it serves several)."""
