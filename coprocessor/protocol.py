"""The on-chain protocol as the coprocessor signs it: statuses, request fields, EIP-712 results.

This module mirrors `solidity/src/libraries/AgentTypes.sol` and `AgentRouter.resultDigest`;
`tests/test_protocol.py` checks the digest against the deployed router.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

DOMAIN_NAME = "EnclaveAgents"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
RESULT_TYPEHASH = keccak(
    text="AgentResult(uint256 requestId,uint256 agentId,bytes32 codeHash,uint8 status,bytes32 outputHash,uint64 epoch)"
)


class Status(IntEnum):
    """How an agent run ended (AgentStatus on-chain)."""

    OK = 0
    AGENT_ERROR = 1
    TIMEOUT = 2
    RESOURCE_LIMIT = 3
    BAD_INPUT = 4


class NotProcessedReason(IntEnum):
    """Why `fulfill` skipped a result (NotProcessedReason on-chain)."""

    UNKNOWN_REQUEST = 0
    COMMITMENT_MISMATCH = 1
    INVALID_SIGNATURE = 2
    STALE_EPOCH = 3
    REQUEST_EXPIRED = 4
    OUTPUT_TOO_LARGE = 5
    INSUFFICIENT_GAS = 6


@dataclass(frozen=True)
class RequestCommitment:
    """The request fields that the router's one-slot commitment hashes."""

    agent_id: int
    code_hash: bytes
    consumer: str
    fee: int
    callback_gas_limit: int
    created_at: int
    deadline: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.agent_id,
            self.code_hash,
            self.consumer,
            self.fee,
            self.callback_gas_limit,
            self.created_at,
            self.deadline,
        )

    def hash(self) -> bytes:
        return keccak(
            encode(["uint256", "bytes32", "address", "uint96", "uint32", "uint48", "uint48"], list(self.as_tuple()))
        )


@dataclass(frozen=True)
class SignedResult:
    """A result as `fulfill` takes it (AgentResult on-chain)."""

    request_id: int
    commitment: RequestCommitment
    status: Status
    epoch: int
    r: bytes
    vs: bytes
    output: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.request_id,
            self.commitment.as_tuple(),
            int(self.status),
            self.epoch,
            self.r,
            self.vs,
            self.output,
        )


def domain_separator(chain_id: int, router: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), chain_id, router],
        )
    )


def result_digest(
    *,
    chain_id: int,
    router: str,
    request_id: int,
    agent_id: int,
    code_hash: bytes,
    status: Status,
    output: bytes,
    epoch: int,
) -> bytes:
    """The EIP-712 digest the cluster key signs; equals `AgentRouter.resultDigest`."""
    struct_hash = keccak(
        encode(
            ["bytes32", "uint256", "uint256", "bytes32", "uint8", "bytes32", "uint64"],
            [RESULT_TYPEHASH, request_id, agent_id, code_hash, int(status), keccak(output), epoch],
        )
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id, router) + struct_hash)


def sign_result(
    signing_key: bytes,
    *,
    chain_id: int,
    router: str,
    request_id: int,
    commitment: RequestCommitment,
    status: Status,
    output: bytes,
    epoch: int,
) -> SignedResult:
    """Signs a result with a cluster key, in the compact (EIP-2098) form the router takes."""
    digest = result_digest(
        chain_id=chain_id,
        router=router,
        request_id=request_id,
        agent_id=commitment.agent_id,
        code_hash=commitment.code_hash,
        status=status,
        output=output,
        epoch=epoch,
    )
    signature = Account.unsafe_sign_hash(digest, signing_key)
    y_parity = signature.v - 27
    vs = (signature.s | (y_parity << 255)).to_bytes(32, "big")
    return SignedResult(
        request_id=request_id,
        commitment=commitment,
        status=status,
        epoch=epoch,
        r=signature.r.to_bytes(32, "big"),
        vs=vs,
        output=output,
    )
