"""The on-chain protocol as the coprocessor signs it: statuses, request fields, EIP-712 results.

This module mirrors `solidity/src/libraries/AgentTypes.sol` and `AgentRouter.resultDigest`;
`tests/test_protocol.py` checks the digest against the deployed router.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache, cached_property, lru_cache
from typing import Any

import coincurve
from eth_abi.abi import encode

from protocol.keccak import checksum_address, keccak256
from protocol.status import Currency as Currency
from protocol.status import NotProcessedReason as NotProcessedReason
from protocol.status import Status as Status

DOMAIN_NAME = "EnclaveAgents"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
RESULT_TYPE = (
    "AgentResult(uint256 requestId,uint256 agentId,bytes32 codeHash,bytes32 inputHash,uint8 status,"
    "bytes32 outputHash,uint64 epoch)"
)
COMMITMENT_TYPES = [
    "uint256", "bytes32", "bytes32", "address", "uint96", "uint32", "uint48", "uint48", "uint32", "uint96", "uint96",
    "uint64", "address", "uint48", "uint8",
]  # fmt: skip
ZERO_ADDRESS = "0x" + "00" * 20
RESULT_TYPEHASH = keccak256(RESULT_TYPE.encode())
BATCH_TYPEHASH = keccak256(("AgentResultBatch(AgentResult[] results)" + RESULT_TYPE).encode())


def encode_static(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """`abi.encode` of static values (uintN, address, bytes32), a 32-byte word each: what a
    request's id and a result's struct hash are taken of, on every request's way, at a tenth
    of `eth_abi.encode`'s cost. Values outside their type raise, as there."""
    words = []
    for kind, value in zip(types, values, strict=True):
        if kind == "bytes32":
            if not isinstance(value, bytes) or len(value) != 32:
                raise ValueError(f"not a bytes32: {value!r}")
            words.append(value)
        elif kind == "address":
            raw = bytes.fromhex(str(value).removeprefix("0x"))
            if len(raw) != 20:
                raise ValueError(f"not an address: {value!r}")
            words.append(bytes(12) + raw)
        elif kind.startswith("uint") and isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < 1 << int(kind[4:]):
                raise ValueError(f"{value} is not a {kind}")
            words.append(value.to_bytes(32, "big"))
        else:
            raise ValueError(f"not a static {kind}: {value!r}")
    return b"".join(words)


@dataclass(frozen=True)
class RequestCommitment:
    """A request's fields; their hash is the request's id (RequestCommitment on-chain).

    `input_hash` is keccak256 of the input, so an id names one input: a result signed for any
    other input names a request that was never made, and the router skips it. `fee` is the most
    the request can cost; `price` (the agent owner's) and `operator_fee` (the transmitter's) are
    part of it, and `subscription_id` says who pays (0: the consumer, with the request's value).
    `assignee` alone may deliver it until `assigned_until` (unix time), when staking is on.
    `currency` says what the fee and its parts count: wei, or units of the router's fee token.
    """

    agent_id: int
    code_hash: bytes
    input_hash: bytes
    consumer: str
    fee: int
    callback_gas_limit: int
    created_at: int
    deadline: int
    nonce: int
    price: int = 0
    operator_fee: int = 0
    subscription_id: int = 0
    assignee: str = ZERO_ADDRESS
    assigned_until: int = 0
    currency: Currency = Currency.ETH

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.agent_id,
            self.code_hash,
            self.input_hash,
            self.consumer,
            self.fee,
            self.callback_gas_limit,
            self.created_at,
            self.deadline,
            self.nonce,
            self.price,
            self.operator_fee,
            self.subscription_id,
            self.assignee,
            self.assigned_until,
            int(self.currency),
        )

    @classmethod
    def from_tuple(cls, values: Sequence[Any]) -> RequestCommitment:
        """The fields as `as_tuple` gives them (and `abi.encode(commitment)` decodes to)."""
        named = {field.name: value for field, value in zip(fields(cls), values, strict=True)}
        return cls(**named | {"currency": Currency(named["currency"])})

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int) -> RequestCommitment:
        """The fields of an `AgentRequested` log; `createdAt` is the log's block number and
        `inputHash` the hash of its input. What it is charged comes as one tuple, `charge`."""
        charge = args["charge"]
        return cls(
            agent_id=int(args["agentId"]),
            code_hash=bytes(args["codeHash"]),
            input_hash=keccak256(bytes(args["input"])),
            consumer=str(args["consumer"]),
            fee=int(charge["fee"]),
            callback_gas_limit=int(args["callbackGasLimit"]),
            created_at=block_number,
            deadline=int(args["deadline"]),
            nonce=int(args["nonce"]),
            price=int(charge["price"]),
            operator_fee=int(charge["operatorFee"]),
            subscription_id=int(charge["subscriptionId"]),
            assignee=str(args["assignee"]),
            assigned_until=int(args["assignedUntil"]),
            currency=Currency(int(charge["currency"])),
        )

    @cached_property  # a hash the worker and the bridge ask for many times per request
    def request_id(self) -> int:
        """keccak256(abi.encode(commitment)), as `AgentRouter.requestIdOf` computes it."""
        return int.from_bytes(keccak256(encode_static(COMMITMENT_TYPES, self.as_tuple())), "big")


@dataclass(frozen=True)
class AgentResult:
    """What a worker returns for one request (AgentResult on-chain)."""

    commitment: RequestCommitment
    status: Status
    output: bytes

    @property
    def request_id(self) -> int:
        return self.commitment.request_id

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.commitment.as_tuple(), int(self.status), self.output)

    def struct_hash(self, epoch: int) -> bytes:
        return keccak256(
            encode_static(
                ["bytes32", "uint256", "uint256", "bytes32", "bytes32", "uint8", "bytes32", "uint64"],
                [
                    RESULT_TYPEHASH,
                    self.request_id,
                    self.commitment.agent_id,
                    self.commitment.code_hash,
                    self.commitment.input_hash,
                    int(self.status),
                    keccak256(self.output),
                    epoch,
                ],
            )
        )


@dataclass(frozen=True)
class CompactSignature:
    """An EIP-2098 signature with the key epoch that made it."""

    epoch: int
    r: bytes
    vs: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.epoch, self.r, self.vs)


@dataclass(frozen=True)
class SignedResult:
    """A result with its own signature, as `fulfill` takes it (SignedAgentResult on-chain)."""

    result: AgentResult
    signature: CompactSignature

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.result.as_tuple(), self.signature.epoch, self.signature.r, self.signature.vs)


@cache  # one per chain and router a process serves; it was a tenth of each signature's time
def domain_separator(chain_id: int, router: str) -> bytes:
    return keccak256(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak256(DOMAIN_NAME.encode()), keccak256(DOMAIN_VERSION.encode()), chain_id, router],
        )
    )


def typed_digest(chain_id: int, router: str, struct_hash: bytes) -> bytes:
    return keccak256(b"\x19\x01" + domain_separator(chain_id, router) + struct_hash)


def result_digest(*, chain_id: int, router: str, result: AgentResult, epoch: int) -> bytes:
    """The EIP-712 digest the cluster key signs for one result; equals `AgentRouter.resultDigest`."""
    return typed_digest(chain_id, router, result.struct_hash(epoch))


def batch_digest(*, chain_id: int, router: str, results: list[AgentResult], epoch: int) -> bytes:
    """The EIP-712 digest of a batch; equals `AgentRouter.batchDigest`."""
    return batch_digest_of(chain_id, router, [result.struct_hash(epoch) for result in results])


def batch_digest_of(chain_id: int, router: str, struct_hashes: list[bytes]) -> bytes:
    """`batch_digest` from its results' struct hashes, for a caller that has them already."""
    return typed_digest(chain_id, router, keccak256(BATCH_TYPEHASH + keccak256(b"".join(struct_hashes))))


def sign_digest(signing_key: bytes, digest: bytes, epoch: int) -> CompactSignature:
    """Signs a digest in the compact (EIP-2098) form the router takes: RFC 6979 and low s, as
    eth_account signs, at a fifth of its cost (it made the key's object anew every time)."""
    signature = _secp256k1_key(signing_key).sign_recoverable(digest, hasher=None)
    r, s, y_parity = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return CompactSignature(epoch=epoch, r=r, vs=(s | (y_parity << 255)).to_bytes(32, "big"))


@lru_cache(maxsize=8)  # a worker signs with its current cluster key, and a few past ones
def _secp256k1_key(signing_key: bytes) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(signing_key)


def sign_result(signing_key: bytes, *, chain_id: int, router: str, result: AgentResult, epoch: int) -> SignedResult:
    """Signs one result with a cluster key."""
    digest = result_digest(chain_id=chain_id, router=router, result=result, epoch=epoch)
    return SignedResult(result=result, signature=sign_digest(signing_key, digest, epoch))


def recover_result_signer(*, chain_id: int, router: str, signed: SignedResult) -> str:
    """The address that signed a result (to check a result before co-signing it in a batch)."""
    digest = result_digest(chain_id=chain_id, router=router, result=signed.result, epoch=signed.signature.epoch)
    return recover_digest_signer(digest, signed.signature)


def recover_digest_signer(digest: bytes, signature: CompactSignature) -> str:
    """The checksummed address whose key made `signature` over `digest` (ValueError if none)."""
    vs = int.from_bytes(signature.vs, "big")
    s, y_parity = vs & ((1 << 255) - 1), vs >> 255
    recoverable = signature.r + s.to_bytes(32, "big") + bytes([y_parity])
    public = coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    return checksum_address(keccak256(public.format(compressed=False)[1:])[12:])
