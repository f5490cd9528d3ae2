"""The JSON shapes the worker and the gatekeeper speak, shared by their clients.

Byte strings travel as 0x hex, uint256 values as decimal strings (JSON numbers lose precision
past 2^53). Attributes are Python's snake_case; on the wire every field is camelCase (aliases),
and a model validates and dumps with the aliases by default.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from protocol.hexes import from_hex as from_hex
from protocol.hexes import to_hex as to_hex
from protocol.results import (
    ZERO_ADDRESS,
    AgentResult,
    CompactSignature,
    Currency,
    RequestCommitment,
    SignedResult,
    Status,
)


class Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


# The ranges of the Solidity types: out-of-range values are refused at the door (422), not
# when the worker encodes them.
Uint256 = Annotated[int, Field(ge=0, lt=2**256)]
Uint48 = Annotated[int, Field(ge=0, lt=2**48)]
Uint32 = Annotated[int, Field(ge=0, lt=2**32)]
Bytes32Hex = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]


class CommitmentModel(Wire):
    agent_id: Uint256
    code_hash: Bytes32Hex
    input_hash: Bytes32Hex
    consumer: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
    fee: Annotated[str, Field(pattern=r"^[0-9]{1,29}$")]  # uint96 in decimal
    callback_gas_limit: Uint32
    created_at: Uint48
    deadline: Uint48
    nonce: Uint32
    price: Annotated[str, Field(pattern=r"^[0-9]{1,29}$")] = "0"  # uint96 in decimal
    operator_fee: Annotated[str, Field(pattern=r"^[0-9]{1,29}$")] = "0"
    subscription_id: Annotated[int, Field(ge=0, lt=2**64)] = 0
    assignee: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")] = ZERO_ADDRESS
    assigned_until: Uint48 = 0
    currency: Currency = Currency.ETH

    @classmethod
    def of(cls, c: RequestCommitment) -> CommitmentModel:
        return cls(
            agent_id=c.agent_id,
            code_hash=to_hex(c.code_hash),
            input_hash=to_hex(c.input_hash),
            consumer=c.consumer,
            fee=str(c.fee),
            callback_gas_limit=c.callback_gas_limit,
            created_at=c.created_at,
            deadline=c.deadline,
            nonce=c.nonce,
            price=str(c.price),
            operator_fee=str(c.operator_fee),
            subscription_id=c.subscription_id,
            assignee=c.assignee,
            assigned_until=c.assigned_until,
            currency=c.currency,
        )

    def to_commitment(self) -> RequestCommitment:
        return RequestCommitment(
            agent_id=self.agent_id,
            code_hash=from_hex(self.code_hash),
            input_hash=from_hex(self.input_hash),
            consumer=self.consumer,
            fee=int(self.fee),
            callback_gas_limit=self.callback_gas_limit,
            created_at=self.created_at,
            deadline=self.deadline,
            nonce=self.nonce,
            price=int(self.price),
            operator_fee=int(self.operator_fee),
            subscription_id=self.subscription_id,
            assignee=self.assignee,
            assigned_until=self.assigned_until,
            currency=self.currency,
        )


class SignatureModel(Wire):
    epoch: int
    r: str
    vs: str

    @classmethod
    def of(cls, s: CompactSignature) -> SignatureModel:
        return cls(epoch=s.epoch, r=to_hex(s.r), vs=to_hex(s.vs))

    def to_signature(self) -> CompactSignature:
        return CompactSignature(epoch=self.epoch, r=from_hex(self.r), vs=from_hex(self.vs))


class ExecuteRequest(Wire):
    """A request to run: its on-chain fields and its input. The worker derives the id from the
    fields and the input hash from the input it runs, and checks both against the chain."""

    commitment: CommitmentModel
    input: Annotated[str, Field(pattern=r"^0x([0-9a-fA-F]{2})*$")]


class ExecuteResponse(Wire):
    request_id: str
    commitment: CommitmentModel
    status: str
    output: str
    signature: SignatureModel
    logs: list[str]
    error: str | None
    stats: dict[str, Any]
    worker: str
    # Provenance: the agents this run called through ctx.callAgent, with their code hashes.
    calls: list[dict[str, Any]] = []
    # Private logs: {"logs": [...], "error": ...} sealed to the owner's key (then logs is empty
    # and error None).
    sealed_logs: str | None = None

    def signed_result(self) -> SignedResult:
        result = AgentResult(
            commitment=self.commitment.to_commitment(),
            status=Status[self.status],
            output=from_hex(self.output),
        )
        return SignedResult(result=result, signature=self.signature.to_signature())


# Requests one execute-batch call may carry.
MAX_EXECUTE_BATCH = 64


class ExecuteBatchRequest(Wire):
    requests: Annotated[list[ExecuteRequest], Field(min_length=1, max_length=MAX_EXECUTE_BATCH)]
    # The chain the requests were made on, for a worker that serves several (optional when it
    # serves one). Results are signed for that chain's id and router, whatever is named here.
    chain_id: int | None = None


class BatchItem(Wire):
    """One request's answer in a batch: its result, or the HTTP status and reason that
    `/v1/execute` would have given it alone (409 refused, 502 code missing, 503 retry later)."""

    result: ExecuteResponse | None = None
    status_code: int | None = None
    error: str | None = None


class ExecuteBatchResponse(Wire):
    results: list[BatchItem]


class IndexedItem(Wire):
    """A request's answer in a part of an execute-each answer: `index` is its place in the batch."""

    index: Annotated[int, Field(ge=0, lt=MAX_EXECUTE_BATCH)]
    item: BatchItem


class ExecuteEachPart(Wire):
    """The answers of a batch's requests that were ready together (the execute stream's
    EXECUTE_EACH, protocol/stream.py)."""

    answers: Annotated[list[IndexedItem], Field(min_length=1, max_length=MAX_EXECUTE_BATCH)]


class SignBatchRequest(Wire):
    results: list[ExecuteResponse]
    chain_id: int | None = None


class ProvisionRequest(Wire):
    quote: dict[str, Any]
    identity_public_key: str


class ProvisionResponse(Wire):
    epoch: int
    sealed_cluster_key: str


class JoinRequest(Wire):
    """A peer gatekeeper asking for the master keys: its quote, identity and chain account."""

    quote: dict[str, Any]
    identity_public_key: str
    address: str
    # The chain and TeeRegistry it serves: master keys are shared within one registry only.
    chain_id: int
    registry: str
    signature: str


class AgentSecretsRequest(Wire):
    """An owner's sealed settings for an agent, signed, with a version that only goes up."""

    epoch: int
    version: int
    sealed: str
    signature: str
