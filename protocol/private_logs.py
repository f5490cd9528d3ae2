"""Private logs: an agent's `ctx.log` lines and full error, sealed to its owner's key.

The owner's X25519 key pair is derived from their Ethereum key, so nothing new needs keeping:
`enclave agent deploy --private-logs` puts the public half in the agent's manifest (the code
hash commits to it) and `enclave agent logs` opens what the worker sealed with the private half.
"""

from __future__ import annotations

import json
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from protocol.kdf import hkdf

LABEL = b"enclave-agents/v1/private-logs"


def owner_logs_key(owner_private_key: bytes) -> PrivateKey:
    """The owner's log key pair, derived from their Ethereum private key."""
    return PrivateKey(hkdf(owner_private_key, LABEL))


def seal_logs(public_key: bytes, request_id: int, logs: list[str], error: str | None) -> bytes:
    """The logs of one request's run; the request id inside, so they cannot be shown as another's."""
    plaintext = json.dumps({"requestId": str(request_id), "logs": logs, "error": error}).encode()
    return bytes(SealedBox(PublicKey(public_key)).encrypt(plaintext))


def open_logs(owner_private_key: bytes, sealed: bytes, request_id: int) -> dict[str, Any]:
    try:
        opened: dict[str, Any] = json.loads(SealedBox(owner_logs_key(owner_private_key)).decrypt(sealed))
    except CryptoError as err:
        raise ValueError("these logs are sealed to another key: is this the agent owner's key?") from err
    if opened.get("requestId") != str(request_id):
        raise ValueError(f"these logs are of request {opened.get('requestId')}, not of {request_id}")
    return opened
