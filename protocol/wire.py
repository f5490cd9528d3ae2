"""The JSON shapes the worker and the gatekeeper speak, shared by their clients.

Byte strings travel as 0x hex, uint256 values as decimal strings (JSON numbers lose precision
past 2^53).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from protocol.hexes import from_hex as from_hex
from protocol.hexes import to_hex as to_hex
from protocol.results import AgentResult, CompactSignature, RequestCommitment, SignedResult, Status


class Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class CommitmentModel(Wire):
    agentId: int
    codeHash: str
    inputHash: str
    consumer: str
    fee: str
    callbackGasLimit: int
    createdAt: int
    deadline: int
    nonce: int

    @classmethod
    def of(cls, c: RequestCommitment) -> CommitmentModel:
        return cls(
            agentId=c.agent_id,
            codeHash=to_hex(c.code_hash),
            inputHash=to_hex(c.input_hash),
            consumer=c.consumer,
            fee=str(c.fee),
            callbackGasLimit=c.callback_gas_limit,
            createdAt=c.created_at,
            deadline=c.deadline,
            nonce=c.nonce,
        )

    def to_commitment(self) -> RequestCommitment:
        return RequestCommitment(
            agent_id=self.agentId,
            code_hash=from_hex(self.codeHash),
            input_hash=from_hex(self.inputHash),
            consumer=self.consumer,
            fee=int(self.fee),
            callback_gas_limit=self.callbackGasLimit,
            created_at=self.createdAt,
            deadline=self.deadline,
            nonce=self.nonce,
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
    input: str


class ExecuteResponse(Wire):
    requestId: str
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
    sealedLogs: str | None = None

    def signed_result(self) -> SignedResult:
        result = AgentResult(
            commitment=self.commitment.to_commitment(),
            status=Status[self.status],
            output=from_hex(self.output),
        )
        return SignedResult(result=result, signature=self.signature.to_signature())


class SignBatchRequest(Wire):
    results: list[ExecuteResponse]


class ProvisionRequest(Wire):
    quote: dict[str, Any]
    identityPublicKey: str


class ProvisionResponse(Wire):
    epoch: int
    sealedClusterKey: str
