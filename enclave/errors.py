"""The base exception of the `enclave` package.

EnclaveError
├── AnvilError           anvil did not start or answer
└── StackError           a service of the stack did not start or become healthy
"""


class EnclaveError(Exception):
    """Anything the command line reports as a clear error instead of a traceback."""


class AnvilError(EnclaveError):
    pass


class StackError(EnclaveError):
    pass
