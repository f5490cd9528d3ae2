"""Status codes shared with the contracts (`AgentTypes.sol`); imported by the sandbox child, so light."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """How an agent run ended (AgentStatus on-chain)."""

    OK = 0
    AGENT_ERROR = 1
    TIMEOUT = 2
    RESOURCE_LIMIT = 3
    BAD_INPUT = 4


class Currency(IntEnum):
    """What a request's fee and its parts count (Currency on-chain): wei, or fee-token units."""

    ETH = 0
    TOKEN = 1


class NotProcessedReason(IntEnum):
    """Why `fulfill` skipped a result (NotProcessedReason on-chain)."""

    UNKNOWN_REQUEST = 0  # no open request with these fields (another input included)
    INVALID_SIGNATURE = 1
    STALE_EPOCH = 2
    REQUEST_EXPIRED = 3
    OUTPUT_TOO_LARGE = 4
    INSUFFICIENT_GAS = 5
    NOT_ASSIGNEE = 6  # another operator's assignment, still in its window
