"""The base exception of the `enclave` package.

EnclaveError
├── ArtifactMissing      a compiled contract is not in out/ (run `forge build`)
├── DeploymentError      a deployment file is missing, malformed or for another chain
└── AnvilError           anvil did not start or answer
"""


class EnclaveError(Exception):
    """Anything the command line reports as a clear error instead of a traceback."""


class ArtifactMissing(EnclaveError):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(f"compiled contract {name} not found at {path}: run `forge build` (make setup)")
        self.name = name


class DeploymentError(EnclaveError):
    pass


class AnvilError(EnclaveError):
    pass
