// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Outcome of an agent run, as signed by the worker and delivered to the consumer.
/// @dev OK carries the agent's output; the others carry a short error message as output.
enum AgentStatus {
    OK, // the agent returned normally
    AGENT_ERROR, // the agent threw
    TIMEOUT, // the wall-time limit was reached
    RESOURCE_LIMIT, // memory, output size or HTTP call count exceeded
    BAD_INPUT // the input or a secret could not be decoded
}

/// @notice Why `fulfill` skipped one result of a batch (see `RequestNotProcessed`).
enum NotProcessedReason {
    UNKNOWN_REQUEST, // no open request with these fields: never made, already closed, or altered
    INVALID_SIGNATURE, // the signature does not recover to the epoch's signer
    STALE_EPOCH, // the epoch is unknown, revoked, or newer than allowed for this request
    REQUEST_EXPIRED, // the request's deadline has passed; it can only be cancelled
    OUTPUT_TOO_LARGE, // the output exceeds the router's cap
    INSUFFICIENT_GAS, // not enough gas left to give the callback its full limit
    NOT_ASSIGNEE // another operator is assigned the request, and its window is still open
}

/// @notice What a request's fee and its parts are counted in: wei, or units of the router's fee
///         token (`AgentRouter.FEE_TOKEN`).
enum Currency {
    ETH,
    TOKEN
}

/// @notice The fields of a request; their hash is the request's id.
/// @dev `keccak256(abi.encode(commitment))` is the id, and the router keeps one storage slot per
///      open id, so a request costs a single slot. `fulfill` and `cancel` take the fields back in
///      calldata and hash them: a result for other fields (another input above all) names a
///      request that was never made, and a transmitter cannot change what a request pays to
///      whom. All of them are in the `AgentRequested` event.
struct RequestCommitment {
    uint256 agentId;
    bytes32 codeHash;
    bytes32 inputHash; // keccak256 of the input: a result is valid for this input only
    address consumer;
    uint96 fee; // the most the request can cost, in `currency`: escrowed with it, or held by its subscription
    uint32 callbackGasLimit;
    uint48 createdAt; // block number of the request: decides which key epochs may answer
    uint48 deadline; // unix time after which the request can be cancelled
    uint32 nonce; // tells apart requests with equal fields in one block
    uint96 price; // of `fee`: the agent's price when requested, paid to the agent's owner
    uint96 operatorFee; // of `fee`: the operator's fee when requested, paid to the transmitter
    uint64 subscriptionId; // who pays: the subscription, or 0 for the consumer with the request's value
    address assignee; // the staked operator that alone may deliver it until `assignedUntil`, or none
    uint48 assignedUntil; // unix time; after it any staked operator may deliver it, and slash the assignee
    Currency currency; // what `fee`, `price` and `operatorFee` count, and what the request pays in
}

/// @notice One result of an agent run, as a worker produced it; its request id is the hash of
///         `commitment`.
struct AgentResult {
    RequestCommitment commitment;
    AgentStatus status;
    bytes output;
}

/// @notice A result with its own signature, for `AgentRouter.fulfill`.
/// @dev The signature is EIP-2098 compact (r, yParityAndS) over the EIP-712 `AgentResult`
///      digest, made with the cluster key of `epoch`.
struct SignedAgentResult {
    AgentResult result;
    uint64 epoch;
    bytes32 r;
    bytes32 vs;
}

/// @notice One signature of the cluster key of `epoch` over a whole batch of results, for
///         `AgentRouter.fulfillBatch`; EIP-2098 compact like a result's own signature.
struct BatchSignature {
    uint64 epoch;
    bytes32 r;
    bytes32 vs;
}
