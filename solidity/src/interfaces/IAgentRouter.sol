// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    Currency,
    NotProcessedReason,
    RequestCommitment,
    SignedAgentResult
} from "../libraries/AgentTypes.sol";

/// @title IAgentRouter
/// @notice Where consumer contracts request agent runs and where signed results come back.
/// @dev A request escrows the most it can cost (its value, or a hold on its subscription) and
///      stores one commitment slot. Results come back signed (EIP-712, domain `EnclaveAgents`/`1`)
///      by the cluster key of an epoch: one signature per result through `fulfill`, or one over a
///      whole batch through `fulfillBatch`, which saves an ecrecover and 64 bytes of calldata per
///      result. A result that cannot be processed emits `RequestNotProcessed` and the batch goes
///      on. A delivered request pays three parts: the agent's price to the agent's owner, the
///      operator's fee to the transmitter, and the callback's gas plus a fixed overhead at the
///      fulfil transaction's gas price, to the transmitter, up to what is left of the escrow; the
///      rest returns to the payer. Balances are withdrawn (pull payment). A request pays in wei or
///      in the deployment's fee token (`FEE_TOKEN`): prices and fees are set in wei and charged in
///      the token at the owner's rate (`tokensPerEth`), as the gas is reimbursed.
interface IAgentRouter {
    /// @notice Router settings.
    /// @param maxCallbackGasLimit Upper bound for a request's `callbackGasLimit`.
    /// @param maxOutputSize Largest output, in bytes, that `fulfill` delivers.
    /// @param maxInputSize Largest input, in bytes, that `request` accepts.
    /// @param requestTimeout Seconds after which an unanswered request may be cancelled.
    /// @param operatorFee Wei each request pays its transmitter besides its gas.
    /// @param fulfilGasOverhead Gas of a delivery besides its callback (verifying, calldata, the
    ///        transaction's share of its base cost), reimbursed with the callback's.
    struct Config {
        uint32 maxCallbackGasLimit;
        uint32 maxOutputSize;
        uint32 maxInputSize;
        uint32 requestTimeout;
        uint96 operatorFee;
        uint32 fulfilGasOverhead;
    }

    /// @notice Thrown when requesting a paused agent.
    error AgentIsPaused(uint256 agentId);
    /// @notice Thrown when a consumer not on a restricted agent's allow-list requests it.
    error ConsumerNotAllowed(uint256 agentId, address consumer);
    /// @notice Thrown when the value sent is below the request's most possible cost (`estimateCost`
    ///         at the request's gas price).
    error InsufficientFee(uint256 paid, uint256 cost);
    /// @notice Thrown when the fee does not fit in 96 bits.
    error FeeTooLarge(uint256 paid);
    /// @notice Thrown when a request's callback gas limit exceeds the router's maximum.
    error CallbackGasTooHigh(uint32 limit, uint32 max);
    /// @notice Thrown when a request's input exceeds the router's maximum.
    error InputTooLarge(uint256 size, uint256 max);
    /// @notice Thrown when `fulfill` or `fulfillBatch` is called with no results.
    error EmptyBatch();
    /// @notice Thrown when a batch signature does not recover to the signer of its epoch.
    error InvalidBatchSignature(uint64 epoch, address recovered);
    /// @notice Thrown when cancelling a request that is not open (its fields hash to no open id).
    error UnknownRequest(uint256 requestId);
    /// @notice Thrown when cancelling a request before its deadline.
    error RequestNotExpired(uint256 requestId, uint48 deadline);
    /// @notice Thrown when withdrawing with a zero balance.
    error NothingToWithdraw(address account);
    /// @notice Thrown when sending a withdrawal fails.
    error WithdrawalFailed(address to, uint256 amount);
    /// @notice Thrown when a setting is out of its range.
    error InvalidConfig();

    /// @notice What a request is charged, in its `AgentRequested` log.
    /// @param fee The most the request can cost, in `currency`: escrowed, or held by its subscription.
    /// @param price Of `fee`: the agent's price, for its owner.
    /// @param operatorFee Of `fee`: the operator's fee, for the transmitter.
    /// @param subscriptionId The paying subscription, or 0 when the consumer paid with the request.
    /// @param currency What `fee`, `price` and `operatorFee` count: wei, or fee-token units.
    struct Charge {
        uint96 fee;
        uint96 price;
        uint96 operatorFee;
        uint64 subscriptionId;
        Currency currency;
    }

    /// @notice Emitted for every request; it carries everything a worker and the bridge need.
    /// @param requestId The new request's id.
    /// @param agentId The agent to run.
    /// @param consumer The contract that receives the result.
    /// @param codeHash The agent version that must run (keccak256 of its code).
    /// @param input The agent's input bytes.
    /// @param callbackGasLimit Gas given to the consumer's callback.
    /// @param deadline Unix time after which the request may be cancelled.
    /// @param nonce Tells apart requests with equal fields in one block.
    /// @param assignee The staked operator that alone may deliver it until `assignedUntil`, or none.
    /// @param assignedUntil Unix time after which any staked operator may deliver it.
    /// @param charge What it pays, in what, and who pays.
    /// @dev The commitment's `createdAt` is the block number of this log and its `inputHash` is
    ///      keccak256(input), so neither is repeated. `charge` is a static tuple: its fields lie
    ///      in the log's data as if they were the event's own.
    event AgentRequested(
        uint256 indexed requestId,
        uint256 indexed agentId,
        address indexed consumer,
        bytes32 codeHash,
        bytes input,
        uint32 callbackGasLimit,
        uint48 deadline,
        uint32 nonce,
        address assignee,
        uint48 assignedUntil,
        Charge charge
    );
    /// @notice Emitted when a result is delivered and the request closed, with what its delivery
    ///         settled. The request's `price` (paid to the agent's owner) and `operatorFee` (to
    ///         the transmitter) are its `AgentRequested` log's: a delivery pays exactly those.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param callbackSucceeded False when the consumer's callback reverted or ran out of gas.
    /// @param gasReimbursed Paid to the transmitter (the transaction's sender) for the callback's
    ///        gas and the overhead, at the transaction's gas price, at most what the escrow had
    ///        left after the price and the operator's fee.
    /// @param refunded Returned to the payer (the subscription, or the consumer's balance).
    /// @dev Both amounts count in the request's currency.
    event RequestFulfilled(
        uint256 indexed requestId, AgentStatus status, bool callbackSucceeded, uint96 gasReimbursed, uint96 refunded
    );
    /// @notice Emitted when a result is delivered to a consumer address without code: nothing was
    ///         called (a call would have "succeeded" without running anything), and the request
    ///         is closed with `callbackSucceeded` false.
    /// @param requestId The request.
    /// @param consumer The address that made the request and has no code now.
    event ConsumerHasNoCode(uint256 indexed requestId, address indexed consumer);
    /// @notice Emitted when a result of a batch is skipped; the request, if open, stays open.
    /// @param requestId The request the result named.
    /// @param reason Why it was skipped.
    event RequestNotProcessed(uint256 indexed requestId, NotProcessedReason reason);
    /// @notice Emitted when an expired request is cancelled and its fee returned to its payer.
    /// @param requestId The request.
    /// @param consumer The request's consumer: its balance gets the fee back when it paid.
    /// @param fee The refunded fee, in the request's currency.
    /// @param subscriptionId The subscription whose hold is released, or 0.
    event RequestCancelled(uint256 indexed requestId, address indexed consumer, uint96 fee, uint64 subscriptionId);
    /// @notice Emitted when an account withdraws its balance.
    /// @param account Whose balance.
    /// @param to Where it went.
    /// @param amount How much, in wei.
    event BalanceWithdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice Emitted when an account withdraws its balance in the fee token.
    /// @param account Whose balance.
    /// @param to Where it went.
    /// @param amount How much, in fee-token units.
    event TokenBalanceWithdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice Emitted when the owner sets the fee token's rate.
    /// @param tokensPerEth Fee-token units worth one ether.
    event TokenRateSet(uint256 tokensPerEth);
    /// @notice Emitted when the owner changes the settings.
    /// @param config The new settings.
    event ConfigSet(Config config);

    /// @notice Requests a run of an agent, paid with the value sent; the caller receives the result
    ///         in `onAgentResult`. The value is the most the request can cost and must be at least
    ///         `estimateCost(agentId, callbackGasLimit, tx.gasprice)`; what it does not cost comes
    ///         back to the caller's balance.
    /// @param agentId The agent.
    /// @param input The input bytes handed to the agent's `main`.
    /// @param callbackGasLimit Gas for the consumer's callback, at most `maxCallbackGasLimit`.
    /// @return requestId The request's id: keccak256 of its `RequestCommitment` (agent, code hash,
    ///         input hash, consumer, fee and its parts, callback gas, block, deadline, nonce,
    ///         subscription), unique among open requests. A result is accepted for exactly these
    ///         fields, so for this input only.
    function request(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId);

    /// @notice Requests a run of an agent, paid in the fee token: the router takes
    ///         `estimateTokenCost(agentId, callbackGasLimit, tx.gasprice)` from the caller, who
    ///         approved it for that; what the request does not cost comes back to the caller's
    ///         token balance. Reverts with `NoFeeToken` when the router takes no token.
    /// @param agentId The agent.
    /// @param input The input bytes handed to the agent's `main`.
    /// @param callbackGasLimit Gas for the consumer's callback, at most `maxCallbackGasLimit`.
    /// @return requestId The request's id, as `request` makes it.
    function requestWithToken(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        returns (uint256 requestId);

    /// @notice Requests a run of an agent, charged to a subscription the caller is a consumer of:
    ///         it holds `estimateCost(agentId, callbackGasLimit, tx.gasprice)` until the request is
    ///         fulfilled (and pays what it cost) or cancelled (and pays nothing); in the token
    ///         (`estimateTokenCost`) when the subscription holds the token.
    /// @param subscriptionId The paying subscription.
    /// @param agentId The agent.
    /// @param input The input bytes handed to the agent's `main`.
    /// @param callbackGasLimit Gas for the consumer's callback, at most `maxCallbackGasLimit`.
    /// @return requestId The request's id, as `request` makes it.
    function requestWithSubscription(
        uint64 subscriptionId,
        uint256 agentId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external returns (uint256 requestId);

    /// @notice The most a request can cost: the agent's price, the operator's fee, and its callback
    ///         gas plus the delivery overhead at `gasPrice`.
    /// @param agentId The agent.
    /// @param callbackGasLimit The request's callback gas.
    /// @param gasPrice The gas price to reimburse the delivery at, at most (the request's own
    ///        `tx.gasprice` is what `request` checks against).
    /// @return cost In wei.
    function estimateCost(uint256 agentId, uint32 callbackGasLimit, uint256 gasPrice)
        external
        view
        returns (uint256 cost);

    /// @notice `estimateCost` in fee-token units at the current rate, rounded down.
    /// @param agentId The agent.
    /// @param callbackGasLimit The request's callback gas.
    /// @param gasPrice The gas price to reimburse the delivery at, at most.
    /// @return cost In fee-token units.
    function estimateTokenCost(uint256 agentId, uint32 callbackGasLimit, uint256 gasPrice)
        external
        view
        returns (uint256 cost);

    /// @notice Delivers results that each carry their own signature. Anyone may transmit; the
    ///         operator's fees and gas reimbursements go to the caller.
    /// @dev Never reverts for one bad result: it emits `RequestNotProcessed` and moves on.
    /// @param results The results, each with its request fields, epoch and signature.
    /// @return fulfilled How many results were delivered.
    function fulfill(SignedAgentResult[] calldata results) external returns (uint256 fulfilled);

    /// @notice Delivers a batch of results covered by one signature of an epoch's cluster key.
    /// @dev Reverts with `InvalidBatchSignature` when the signature is bad; otherwise each result
    ///      that cannot be processed emits `RequestNotProcessed` and the batch goes on.
    /// @param results The results, each with its request fields.
    /// @param signature The cluster key's signature over `batchDigest(results, signature.epoch)`.
    /// @return fulfilled How many results were delivered.
    function fulfillBatch(AgentResult[] calldata results, BatchSignature calldata signature)
        external
        returns (uint256 fulfilled);

    /// @notice Cancels an unanswered request after its deadline; its fee returns to its payer (the
    ///         consumer's balance, or its subscription's hold is released).
    /// @param commitment The request's fields as emitted in `AgentRequested`.
    function cancel(RequestCommitment calldata commitment) external;

    /// @notice Sends the caller's whole balance (agent prices, operator fees, gas reimbursements or
    ///         refunds) to `to`.
    /// @param to The recipient.
    function withdraw(address payable to) external;

    /// @notice Sends the caller's whole balance in the fee token to `to`.
    /// @param to The recipient.
    function withdrawToken(address to) external;

    /// @notice Sets how many fee-token units one ether is worth: what token requests are charged
    ///         and token transmitters reimbursed at. Owner only; reverts with `NoFeeToken` on a
    ///         router without a token.
    /// @param rate Fee-token units per 10^18 wei, not zero.
    function setTokenRate(uint256 rate) external;

    /// @notice Changes the settings. Owner only.
    /// @param config The new settings.
    function setConfig(Config calldata config) external;

    /// @notice The EIP-712 digest that the cluster key signs for a result:
    ///         `AgentResult(requestId, agentId, codeHash, inputHash, status, outputHash, epoch)`.
    /// @param result The result, with its request's fields.
    /// @param epoch The key epoch of the signer.
    /// @return digest The typed-data hash.
    function resultDigest(AgentResult calldata result, uint64 epoch) external view returns (bytes32 digest);

    /// @notice The EIP-712 digest that the cluster key signs for a batch:
    ///         `AgentResultBatch(AgentResult[] results)` with every result in `epoch`.
    /// @param results The batch.
    /// @param epoch The key epoch of the signer.
    /// @return digest The typed-data hash.
    function batchDigest(AgentResult[] calldata results, uint64 epoch) external view returns (bytes32 digest);

    /// @notice The id of the request with these fields.
    /// @param commitment The request's fields.
    /// @return requestId keccak256(abi.encode(commitment)).
    function requestIdOf(RequestCommitment calldata commitment) external pure returns (uint256 requestId);

    /// @notice Whether a request is open: made, and neither fulfilled nor cancelled.
    /// @param requestId The request.
    /// @return open True while a result or a cancellation can close it.
    function isOpen(uint256 requestId) external view returns (bool open);

    /// @notice An account's withdrawable balance in wei.
    /// @param account The account.
    /// @return amount The balance.
    function balanceOf(address account) external view returns (uint256 amount);

    /// @notice An account's withdrawable balance in fee-token units.
    /// @param account The account.
    /// @return amount The balance.
    function tokenBalanceOf(address account) external view returns (uint256 amount);

    /// @notice Fee-token units worth one ether; 0 while token payments are off.
    /// @return rate The rate.
    function tokensPerEth() external view returns (uint256 rate);

    /// @notice The current settings.
    /// @return config The settings.
    function getConfig() external view returns (Config memory config);
}
