"""Signed statements about keys: what a gatekeeper serves and what a client checks.

A requester must know that the public key it seals secrets to belongs to the cluster, not to
whoever answered the HTTP request. The gatekeeper signs the agent's public key with the epoch's
cluster key, whose address the chain publishes in TeeRegistry; the client checks the signature
against the chain, so a gatekeeper that lies is caught, and so is anyone in between.
"""

from __future__ import annotations

from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

AGENT_KEY_STATEMENT = "EnclaveAgents agent encryption key"
AGENT_SECRETS_STATEMENT = "EnclaveAgents agent secrets"


def agent_key_digest(agent_id: int, epoch: int, public_key: bytes) -> bytes:
    return keccak(
        encode(["string", "uint256", "uint64", "bytes32"], [AGENT_KEY_STATEMENT, agent_id, epoch, public_key])
    )


def agent_secrets_digest(agent_id: int, epoch: int, version: int, sealed: bytes) -> bytes:
    """What an agent's owner signs to set its settings; `version` only goes up, so an older
    signed upload cannot be replayed over a newer one."""
    return keccak(
        encode(
            ["string", "uint256", "uint64", "uint64", "bytes32"],
            [AGENT_SECRETS_STATEMENT, agent_id, epoch, version, keccak(sealed)],
        )
    )


def sign_statement(private_key: bytes, digest: bytes) -> bytes:
    """An EIP-191 personal signature over a 32-byte digest (what wallets show and sign)."""
    return bytes(Account.sign_message(encode_defunct(primitive=digest), private_key).signature)


def statement_signer(digest: bytes, signature: bytes) -> str:
    return str(Account.recover_message(encode_defunct(primitive=digest), signature=signature))
