"""Confidential inputs: an input that carries secrets sealed to the agent's public key.

    envelope = MAGIC || abi.encode(uint64 epoch, bytes sealedSecrets, bytes input)

`sealedSecrets` is a libsodium sealed box of the secrets' JSON (`{"API_KEY": "...",
"__inputHash": "0x<keccak256(input)>"}`) to the agent's X25519 key of `epoch`: the secrets count
only with the input they were sealed for. The chain, the bridge and its database see only ciphertext; the
worker opens it and the agent reads `ctx.secrets`, while `input` reaches `main` as usual. A
contract can build one too: `abi.encodePacked(MAGIC, abi.encode(epoch, sealed, input))`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from protocol.errors import ProtocolError
from protocol.hexes import to_hex

MAGIC = b"\xeaENV1"
# The entry of the sealed secrets that binds them to the envelope's input (not shown to agents).
INPUT_HASH_KEY = "__inputHash"


class EnvelopeError(ProtocolError, ValueError):
    """The envelope is malformed or cannot be opened with the keys at hand."""


@dataclass(frozen=True)
class Opened:
    input: bytes
    secrets: dict[str, str] = field(repr=False)


def seal_secrets(agent_public_key: bytes, epoch: int, secrets: dict[str, str], input_: bytes = b"") -> bytes:
    """An envelope for a request: `input_` in the clear, `secrets` for the agent's eyes only.

    The sealed part names the hash of `input_`, so nobody can copy the sealed secrets off the
    chain into a request of their own with other input.
    """
    bound = secrets | {INPUT_HASH_KEY: to_hex(keccak(input_))}
    return MAGIC + encode(["uint64", "bytes", "bytes"], [epoch, seal_to(agent_public_key, bound), input_])


def is_envelope(data: bytes) -> bool:
    return data.startswith(MAGIC)


def envelope_epoch(data: bytes) -> int:
    try:
        epoch, _, _ = decode(["uint64", "bytes", "bytes"], data[len(MAGIC) :])
    except (DecodingError, ValueError) as err:
        raise EnvelopeError(f"malformed secret envelope: {err}") from err
    return int(epoch)


def seal_to(agent_public_key: bytes, secrets: dict[str, str]) -> bytes:
    return bytes(SealedBox(PublicKey(agent_public_key)).encrypt(json.dumps(secrets).encode()))


def open_sealed_secrets(sealed: bytes, agent_encryption_key: bytes) -> dict[str, str]:
    try:
        secrets = json.loads(SealedBox(PrivateKey(agent_encryption_key)).decrypt(sealed))
    except (CryptoError, ValueError) as err:
        raise EnvelopeError("the secrets cannot be opened: sealed to another agent or epoch, or corrupt") from err
    if not isinstance(secrets, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()):
        raise EnvelopeError("secrets must be a JSON object of strings")
    return secrets


def open_envelope(data: bytes, agent_encryption_key: bytes) -> Opened:
    try:
        _, sealed, input_ = decode(["uint64", "bytes", "bytes"], data[len(MAGIC) :])
    except (DecodingError, ValueError) as err:
        raise EnvelopeError(f"malformed secret envelope: {err}") from err
    secrets = open_sealed_secrets(bytes(sealed), agent_encryption_key)
    if secrets.pop(INPUT_HASH_KEY, None) != to_hex(keccak(bytes(input_))):
        raise EnvelopeError("the secrets were sealed for another input: seal them with the input they go with")
    return Opened(input=bytes(input_), secrets=secrets)


# -- secrets sealed for a purpose -----------------------------------------------------------------
# Secrets that travel inside an input of the agent's own format (a Chainlink Functions request's
# secrets reference): `uint64 epoch (big-endian) || sealed box of {..., "__for": purpose}`. The
# worker opens them only for the agent itself (`ctx.unseal`), and only when they name a purpose:
# the agent compares the purpose with the request at hand (who asks, for whom), so a copy taken
# off the chain into another request is refused. Envelopes' and owners' secrets name none, so
# they never open this way.
PURPOSE_KEY = "__for"


def seal_for(agent_public_key: bytes, epoch: int, secrets: dict[str, str], purpose: str) -> bytes:
    """Secrets for the agent's eyes only, usable for `purpose` alone."""
    if PURPOSE_KEY in secrets:
        raise EnvelopeError(f"{PURPOSE_KEY} is reserved for the purpose the secrets are sealed for")
    return epoch.to_bytes(8, "big") + seal_to(agent_public_key, secrets | {PURPOSE_KEY: purpose})


def open_for(data: bytes, agent_encryption_keys: dict[int, bytes]) -> dict[str, str]:
    """The secrets `seal_for` sealed, with their purpose under `__for`."""
    if len(data) <= 8:
        raise EnvelopeError("sealed secrets too short: expected an 8-byte epoch and a sealed box")
    epoch = int.from_bytes(data[:8], "big")
    if epoch not in agent_encryption_keys:
        raise EnvelopeError(
            f"the secrets are sealed to key epoch {epoch}, which this cluster does not hold: reseal them"
        )
    secrets = open_sealed_secrets(data[8:], agent_encryption_keys[epoch])
    if not secrets.get(PURPOSE_KEY):
        raise EnvelopeError("the sealed secrets name no purpose: seal them for one")
    return secrets
