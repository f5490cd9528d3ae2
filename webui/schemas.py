"""The JSON API's response models: what /openapi.json promises a client, and what each endpoint
is checked against before it answers.

Models of shapes the dashboard builds itself forbid extra keys, so a key added to a read model by
mistake fails the endpoint (and the tests) instead of reaching clients undocumented. Shapes that
other services write (a worker's `/v1/info`, a run's `stats`, the provenance of agent calls kept
in the bridge's store) stay open: rows stored long ago must stay readable.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

# JavaScript's JSON.parse turns integers above 2^53 into the nearest double: 256-bit ids and
# 96-bit wei amounts travel as decimal strings, which every client reads exactly.
_UINT_PATTERN = r"^(0|[1-9][0-9]*)$"
_AS_STRING = "a decimal string, not a JSON number: it can exceed 2^53, where JSON numbers lose precision"


def _decimal(value: Any, info: ValidationInfo) -> Any:
    # Python ints from the dashboard become strings here; JSON input must already be a string,
    # so validating a response body also checks that nothing was sent as a number.
    if info.mode == "python" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Uint = Annotated[str, BeforeValidator(_decimal), Field(pattern=_UINT_PATTERN)]


def _uint(what: str) -> Any:
    return Field(description=f"{what}; {_AS_STRING}")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------------


class ErrorResponse(Closed):
    """An error the endpoint raised itself."""

    detail: str = Field(description="What was wrong, for people")


class ValidationIssue(BaseModel):
    """One of FastAPI's validation errors; its `input` and `ctx` vary with the error type."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description='Where the bad value was, e.g. ["query", "page"]')
    msg: str
    type: str = Field(description="Pydantic's error type, e.g. int_parsing")


class ValidationErrorResponse(Closed):
    """A malformed parameter: answered with 400 (not FastAPI's usual 422)."""

    detail: list[ValidationIssue]


# -- overview -----------------------------------------------------------------------------------


class Window(Closed):
    """Requests that ended in the last `seconds`."""

    seconds: int = Field(description="The window's length in seconds")
    fulfilled: int
    failed: int = Field(
        description="Ended without an OK answer: failed in the bridge, or delivered with an error status"
    )
    per_minute: float = Field(description="Fulfilled requests per minute over the window")
    p50_ms: float | None = Field(description="Median request-to-fulfilment latency; null when none was fulfilled")
    p95_ms: float | None = Field(description="95th percentile latency; null when none was fulfilled")


class ChartPoint(Closed):
    minute: int = Field(description="Start of the minute, unix seconds")
    fulfilled: int = Field(description="Requests fulfilled in that minute")
    p50_ms: float | None = Field(description="Their median latency; null when there were none")


class Failure(Closed):
    """A request that failed, or was fulfilled with an error status."""

    request_id: Uint = _uint("Request id (uint256)")
    agent_id: int
    status: str | None = Field(description="The run's status, e.g. AGENT_ERROR; null if it never ran")
    reason: str | None = Field(description="Why the bridge moved it, if it did")
    error: str | None = Field(description="The agent's error text (null when its logs are private)")
    updated_at: float = Field(description="Unix time of its last transition")


class Overview(Closed):
    counts: dict[str, int] = Field(description="Requests in each state, every state named")
    minute: Window = Field(description="The last minute")
    hour: Window = Field(description="The last hour")
    chart: list[ChartPoint] = Field(description="The last 60 minutes, oldest first")
    failures: list[Failure] = Field(description="The 10 most recent failures, newest first")


# -- requests -----------------------------------------------------------------------------------


class RequestSummary(Closed):
    request_id: Uint = _uint("Request id (uint256)")
    agent_id: int
    consumer: str = Field(description="The consumer contract's address")
    state: str
    status: str | None = Field(description="The run's status once executed, else null")
    worker: str | None = Field(description="Name of the worker that ran it, once one did")
    epoch: int | None = Field(description="Key epoch of the signature, once signed")
    requested_at: float = Field(description="Unix time the bridge saw the request")
    updated_at: float = Field(description="Unix time of its last transition")


class RequestPage(Closed):
    rows: list[RequestSummary] = Field(description="One page of requests, newest first")
    total: int = Field(description="Requests matching the filters, over all pages")
    page: int = Field(description="This page, 1-based")
    pages: int = Field(description="Number of pages, at least 1")
    states: list[str] = Field(description="Every state a request can be in, for filtering")


class RequestRow(Closed):
    """The bridge's stored row, column for column: binary columns as 0x-hex."""

    request_id: Uint = _uint("Request id (uint256)")
    agent_id: int
    consumer: str = Field(description="The consumer contract's address")
    code_hash: str = Field(description="The agent code the request named, 0x-hex")
    input: str = Field(description="The request's input bytes, 0x-hex")
    fee: Uint = _uint("Fee paid, in the request's currency (uint96)")
    callback_gas_limit: int
    created_at_block: int = Field(description="Block of the request; decides which key epochs may answer")
    deadline: int = Field(description="Unix time after which the request can be cancelled")
    nonce: int = Field(description="Tells apart requests with equal fields in one block (uint32)")
    price: Uint = _uint("Of the fee: the agent's price when requested, for its owner")
    operator_fee: Uint = _uint("Of the fee: the operator's fee when requested, for the transmitter")
    subscription_id: int = Field(description="The subscription that pays, or 0 when the consumer paid with the request")
    assignee: str = Field(description="The staked operator that alone may deliver it until assigned_until; zero: none")
    assigned_until: int = Field(description="Unix time after which any staked operator may deliver it")
    currency: int = Field(0, description="What the fee and its parts count: 0 wei, 1 the router's fee token")
    owner: str | None = Field(
        None, description="The bridge replica (its transmitter) that holds it while it works on it"
    )
    lease_until: float = Field(0, description="Unix time the holding replica's lease ends unless renewed")
    next_attempt_at: float = Field(description="Unix time before which the bridge does not try it again")
    cancel_tx: str | None = Field(description="The bridge's cancel transaction after the deadline, if any")
    request_tx: str
    requested_at: float = Field(description="Unix time the bridge saw the request")
    state: str
    worker: str | None
    epoch: int | None = Field(description="Key epoch of the signature, once signed")
    status: str | None
    output: str | None = Field(description="The run's output bytes, 0x-hex")
    error: str | None
    logs: str | None = Field(description="The run's public log lines, as JSON text")
    stats: str | None = Field(description="The run's figures, as JSON text")
    result: str | None = Field(description="The worker's signed result, as JSON text")
    fulfil_tx: str | None
    gas_used: int | None = Field(description="Gas used by the fulfilling transaction")
    callback_succeeded: int | None = Field(description="1 or 0 (SQLite's booleans); null until known")
    gas_reimbursed: Uint | None = Field(
        description="Wei the delivery paid its transmitter for gas (decimal); null until this bridge delivered it"
    )
    refunded: Uint | None = Field(description="Wei the delivery returned to the payer (decimal); null until delivered")
    reason: str | None = Field(description="Why the bridge last moved the request back or to an end state")
    attempts: int = Field(description="Failed attempts so far")
    updated_at: float


class Transition(Closed):
    state: str
    at: float = Field(description="Unix time of the transition")
    detail: str | None
    # Left out of the first transition (there is no earlier one), as the templates expect.
    after_ms: float | None = Field(
        default=None, description="Milliseconds since the previous transition; absent on the first"
    )


class DecodedOutput(Closed):
    types: list[str] = Field(description="Solidity ABI types, from the agent's manifest")
    values: list[str] = Field(description="Each value as text (integers in decimal, so nothing loses precision)")


class AgentCall(BaseModel):
    """An agent the run called through ctx.callAgent, as the worker reported it."""

    # Written by workers and kept in the bridge's store as they sent it: open, so that rows a
    # worker of another version wrote still read.
    model_config = ConfigDict(extra="allow")

    agentId: int
    codeHash: str = Field(description="The callee's code hash, 0x-hex")
    depth: int = Field(description="Call depth: 1 for an agent the requested one called")
    status: str | None = Field(description="The callee's status; null if it did not finish")


class RequestDetail(Closed):
    id: Uint = _uint("Request id (uint256)")
    row: RequestRow
    terminal: bool = Field(description="True once fulfilled, failed or cancelled: nothing will change")
    transitions: list[Transition] = Field(description="Every state the request went through, in order")
    input: str = Field(description="The input as people read it: text, pretty JSON, else hex")
    output: str | None = Field(description="The output as people read it; null before the run")
    logs: list[str] = Field(description="Public log lines (empty when the agent's logs are private)")
    stats: dict[str, Any] = Field(
        description="The run's figures as the worker reported them (elapsed_ms, memory_bytes, ...): "
        "the worker decides which, so the set is open"
    )
    calls: list[AgentCall] = Field(description="Provenance: every agent the run called")
    error: str | None
    decoded: DecodedOutput | None = Field(
        default=None, description="The output decoded by the ABI types its agent's manifest declares (OK answers)"
    )
    sealed_logs_bytes: int | None = Field(
        description="Bytes of ciphertext when the agent's logs are private (only the owner reads them); else null"
    )


# -- agents -------------------------------------------------------------------------------------


class Manifest(Closed):
    """The `// @enclave {...}` line at the top of an agent's code."""

    name: str | None
    allow_hosts: list[str] = Field(description="Hosts the agent may fetch from")
    limits: dict[str, int] = Field(description="Limits the manifest sets, by manifest name (wallTimeMs, ...)")
    logs_key: str | None = Field(description="The owner's X25519 public key, 0x-hex, when logs are private")
    output: list[str] = Field(default=[], description="The output's Solidity ABI types, when it declares them")


class AgentVersion(Closed):
    version: int
    codeHash: str = Field(description="That version's code hash, 0x-hex")
    block: int = Field(description="Block it was published in")


class Agent(Closed):
    id: int = Field(description="Agent id: uint256 on-chain but a counter from 1, so a JSON number")
    codeHash: str = Field(description="The current version's code hash, 0x-hex")
    price: Uint = _uint("Price of a request, in wei (uint96)")
    version: int
    paused: bool
    restricted: bool = Field(description="Only allow-listed consumers may request it")
    owner: str = Field(description="The owner's address")
    manifest: Manifest
    requests: int = Field(default=0, description="Requests the bridge has seen for it")
    last_used: float | None = Field(default=None, description="When it was last requested (unix seconds)")


class AgentDetail(Agent):
    code: str = Field(description="The current version's source")
    versions: list[AgentVersion] = Field(description="Every version published, oldest first")


# -- services and keys --------------------------------------------------------------------------


class Service(Closed):
    url: str
    name: str
    healthy: bool = Field(description="Answered just now, and (a worker) holds the current epoch's key")
    info: dict[str, Any] = Field(
        description="The service's last /v1/info answer, as it gave it: its keys differ between workers "
        "and gatekeepers and between versions"
    )
    last_seen: float | None = Field(description="Unix time of its last answer; null if it never answered")
    quote_verified_at: float | None = Field(description="Unix time its attestation quote was last verified")
    quote_error: str | None = Field(description="Why its quote failed verification, if it did")
    served: int = Field(description="Requests it ran, as the bridge recorded")


class Services(Closed):
    workers: list[Service]
    gatekeepers: list[Service]


class KeyEpoch(Closed):
    epoch: int
    signer: str = Field(description="Address of the epoch's signing key")
    publishedAt: int = Field(description="Block the epoch was published in")
    key: str = Field(description="The epoch's encryption public key, 0x-hex")
    state: str = Field(
        description='"current", "revoked", or "answers requests made before block N" for a rotated-out epoch'
    )


class Operator(Closed):
    address: str
    active: bool = Field(description="Stakes enough to transmit and be assigned requests")
    staked: Uint = _uint("Staked, in token units (18 decimals)")
    unstaking: Uint = _uint("Unstaking: slashable until unstakeAvailableAt, then withdrawable")
    unstakeAvailableAt: int = Field(description="Unix time the unstaking amount can be withdrawn")
    missed: int = Field(description="Assignments it missed, which another operator delivered and slashed")
    slashed: Uint = _uint("What those cost it, in token units")
    deliveredForOthers: int = Field(description="Assignments of others it delivered after their window")
    fleet: str | None = Field(
        default=None, description="The lead of the fleet it is in (one operator's transmitters), if any"
    )


class Staking(Closed):
    minStake: Uint = _uint("Least stake that transmits")
    slashAmount: Uint = _uint("What a missed assignment costs")
    assignmentWindowS: int = Field(description="Seconds only a request's assignee may deliver it")
    unstakeDelayS: int = Field(description="Seconds unstaked tokens stay slashable")
    operators: list[Operator] = Field(description="Every operator that ever staked")


class Subscription(Closed):
    id: int
    owner: str
    balance: Uint = _uint("What it holds in its currency, open requests' holds included")
    held: Uint = _uint("What is held for its open requests")
    currency: int = Field(description="What it holds and pays in: 0 wei, 1 the router's fee token")


class Economics(Closed):
    operatorFee: Uint = _uint("Wei each request pays its transmitter besides gas")
    feeToken: str | None = Field(description="The ERC-20 requests may pay in besides wei; null: none")
    tokensPerEth: Uint = _uint("Fee-token units worth one ether: what token requests pay prices, fees and gas at")
    fulfilGasOverhead: int = Field(description="Gas of a delivery besides its callback, reimbursed with it")
    staking: Staking | None = Field(description="Null when the router has no staking: anyone may transmit")
    subscriptions: list[Subscription] = Field(description="Subscriptions not cancelled")


class Keys(Closed):
    current: int = Field(description="The current epoch")
    rotationPending: bool = Field(description="A rotation was requested and not yet done")
    epochs: list[KeyEpoch] = Field(description="Every epoch, newest first")
