// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {IAgentRegistry} from "../interfaces/IAgentRegistry.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @notice What Chainlink's router calls on a FunctionsClient.
interface IFunctionsClientCallback {
    function handleOracleFulfillment(bytes32 requestId, bytes memory response, bytes memory err) external;
}

/// @title FunctionsRouterAdapter
/// @notice A home for Chainlink Functions consumers: a `FunctionsClient` contract pointed at this
///         address runs unchanged. `sendRequest` takes the CBOR request that Chainlink's
///         `FunctionsRequest` library encodes and asks the Functions runtime agent
///         (compat/chainlink-functions.js) to run it; the router's result comes back through
///         `handleOracleFulfillment(requestId, response, err)` with exactly the client's callback
///         gas, a response or an error and never both. Subscriptions work as Chainlink users know
///         them, funded in ETH: each request pays the runtime agent's price from its subscription.
/// @dev The request's bytes (source, args, secrets reference) are the agent's input, so the
///      router's request id binds them exactly as it binds any agent's input.
contract FunctionsRouterAdapter is AgentConsumer {
    /// @notice A subscription, shaped as Chainlink's `IFunctionsSubscriptions.Subscription`.
    struct Subscription {
        uint96 balance; // wei, spent by requests
        address owner;
        uint96 blockedBalance; // always 0 here: a request pays its fee when it is made
        address proposedOwner;
        address[] consumers;
        bytes32 flags;
    }

    struct Pending {
        address client;
        uint32 callbackGasLimit;
        uint64 subscriptionId;
        uint96 fee;
    }

    /// @notice The request data version that Chainlink's FunctionsRequest library writes.
    uint16 public constant REQUEST_DATA_VERSION = 1;
    /// @notice The largest callback gas a client may ask for (Chainlink's default maximum).
    uint32 public constant MAX_CALLBACK_GAS = 300_000;
    /// @notice Gas this adapter spends around the client's callback: decoding the answer, the
    ///         bookkeeping, the call itself and its event.
    uint32 public constant CALLBACK_OVERHEAD_GAS = 60_000;

    /// @notice The Functions runtime agent that runs every request.
    uint256 public immutable FUNCTIONS_AGENT_ID;

    uint64 private s_subscriptionCount;
    mapping(uint64 subscriptionId => Subscription) private s_subscriptions;
    mapping(uint64 subscriptionId => mapping(address consumer => bool)) private s_isConsumer;
    mapping(uint256 requestId => Pending) private s_pending;
    /// @dev One more than the requests of a subscription whose fee is still held (unanswered, or
    ///      cancelled and not reclaimed): starting at 1, a request's count never writes a zero slot
    ///      anew (20,000 gas), only changes a live one.
    mapping(uint64 subscriptionId => uint256) private s_openRequestsPlusOne;
    /// @dev Wei the router refunded (cancelled requests) that no subscription has been given back.
    uint256 private s_refunds;

    /// @notice Emitted when a subscription is created.
    event SubscriptionCreated(uint64 indexed subscriptionId, address owner);
    /// @notice Emitted when a subscription is funded.
    event SubscriptionFunded(uint64 indexed subscriptionId, uint256 oldBalance, uint256 newBalance);
    /// @notice Emitted when a consumer may use a subscription.
    event SubscriptionConsumerAdded(uint64 indexed subscriptionId, address consumer);
    /// @notice Emitted when a consumer may no longer use a subscription.
    event SubscriptionConsumerRemoved(uint64 indexed subscriptionId, address consumer);
    /// @notice Emitted when a subscription's owner proposes another owner.
    event SubscriptionOwnerTransferRequested(uint64 indexed subscriptionId, address from, address to);
    /// @notice Emitted when the proposed owner accepts a subscription.
    event SubscriptionOwnerTransferred(uint64 indexed subscriptionId, address from, address to);
    /// @notice Emitted when a subscription is cancelled and its balance paid out.
    event SubscriptionCanceled(uint64 indexed subscriptionId, address fundsRecipient, uint256 fundsAmount);
    /// @notice Emitted for every request, as Chainlink's router emits it (costs in wei).
    event RequestStart(
        bytes32 indexed requestId,
        bytes32 indexed donId,
        uint64 indexed subscriptionId,
        address subscriptionOwner,
        address requestingContract,
        address requestInitiator,
        bytes data,
        uint16 dataVersion,
        uint32 callbackGasLimit,
        uint96 estimatedTotalCostJuels
    );
    /// @notice Emitted when a request's answer reached its client, as Chainlink's router emits it:
    ///         `resultCode` 0 when the callback succeeded, 1 when it reverted.
    event RequestProcessed(
        bytes32 indexed requestId,
        uint64 indexed subscriptionId,
        uint96 totalCostJuels,
        address transmitter,
        uint8 resultCode,
        bytes response,
        bytes err,
        bytes callbackReturnData
    );

    /// @notice Emitted when a cancelled request's fee goes back to its subscription.
    event FeeReclaimed(bytes32 indexed requestId, uint64 indexed subscriptionId, uint96 fee);

    /// @notice The request is not one of this adapter's, or its fee was already handled.
    error NotPending(uint256 requestId);
    /// @notice The request is still open: it may yet be answered.
    error StillOpen(uint256 requestId);
    /// @notice The router refunded nothing for this request: it was delivered, not cancelled.
    error NotRefunded(uint256 requestId);
    /// @notice Only the router sends this contract ether directly (refunds it withdraws).
    error OnlyRouterPays();
    /// @notice No subscription has this id.
    error InvalidSubscription();
    /// @notice Only the subscription's owner may do this.
    error MustBeSubscriptionOwner();
    /// @notice The caller is not a consumer of the subscription.
    error InvalidConsumer(uint64 subscriptionId, address consumer);
    /// @notice The subscription cannot pay for the request.
    error InsufficientBalance(uint96 balance, uint96 required);
    /// @notice The request names a data version this adapter does not read.
    error UnsupportedRequestDataVersion(uint16 version);
    /// @notice The callback gas asked for is over the maximum.
    error GasLimitTooBig(uint32 limit);
    /// @notice A request without data.
    error EmptyRequestData();
    /// @notice A subscription's balance would not fit its uint96.
    error BalanceTooLarge(uint256 balance);
    /// @notice The subscription has requests whose fees may yet come back to it.
    error CannotRemoveWithPendingRequests();
    /// @notice Only the proposed owner may accept a subscription.
    error MustBeProposedOwner(address proposedOwner);
    /// @notice No contract is registered under this id (this router has no allow list).
    error RouteNotFound(bytes32 id);
    /// @notice Paying out a cancelled subscription failed.
    error PaymentFailed(address to, uint256 amount);

    /// @param router The AgentRouter.
    /// @param functionsAgentId The Functions runtime agent's id on that router.
    constructor(address router, uint256 functionsAgentId) AgentConsumer(router) {
        FUNCTIONS_AGENT_ID = functionsAgentId;
    }

    // -- subscriptions -------------------------------------------------------------------------

    /// @notice Creates a subscription owned by the caller.
    function createSubscription() public returns (uint64 subscriptionId) {
        subscriptionId = ++s_subscriptionCount;
        s_subscriptions[subscriptionId].owner = msg.sender;
        s_openRequestsPlusOne[subscriptionId] = 1;
        emit SubscriptionCreated(subscriptionId, msg.sender);
    }

    /// @notice Creates a subscription owned by the caller, with one consumer.
    function createSubscriptionWithConsumer(address consumer) external returns (uint64 subscriptionId) {
        subscriptionId = createSubscription();
        _addConsumer(subscriptionId, consumer);
    }

    /// @notice Adds the wei sent to a subscription's balance (anyone may fund any subscription).
    function fundSubscription(uint64 subscriptionId) external payable {
        Subscription storage sub = _subscription(subscriptionId);
        uint256 old = sub.balance;
        uint256 funded = old + msg.value;
        if (funded > type(uint96).max) revert BalanceTooLarge(funded);
        sub.balance = uint96(funded);
        emit SubscriptionFunded(subscriptionId, old, funded);
    }

    /// @notice Lets `consumer` send requests paid by the subscription.
    function addConsumer(uint64 subscriptionId, address consumer) external {
        _onlyOwner(subscriptionId);
        _addConsumer(subscriptionId, consumer);
    }

    /// @notice Stops `consumer` from sending requests paid by the subscription.
    function removeConsumer(uint64 subscriptionId, address consumer) external {
        Subscription storage sub = _onlyOwner(subscriptionId);
        if (!s_isConsumer[subscriptionId][consumer]) revert InvalidConsumer(subscriptionId, consumer);
        s_isConsumer[subscriptionId][consumer] = false;
        address[] storage consumers = sub.consumers;
        for (uint256 i; i < consumers.length; ++i) {
            if (consumers[i] == consumer) {
                consumers[i] = consumers[consumers.length - 1];
                consumers.pop();
                break;
            }
        }
        emit SubscriptionConsumerRemoved(subscriptionId, consumer);
    }

    /// @notice Proposes `newOwner` as the subscription's owner; it becomes owner once it accepts.
    function proposeSubscriptionOwnerTransfer(uint64 subscriptionId, address newOwner) external {
        Subscription storage sub = _onlyOwner(subscriptionId);
        sub.proposedOwner = newOwner;
        emit SubscriptionOwnerTransferRequested(subscriptionId, msg.sender, newOwner);
    }

    /// @notice The proposed owner takes the subscription over. Secrets sealed for the previous
    ///         owner stop opening for its requests (they are bound to the owner, as on Chainlink).
    function acceptSubscriptionOwnerTransfer(uint64 subscriptionId) external {
        Subscription storage sub = _subscription(subscriptionId);
        if (msg.sender != sub.proposedOwner) revert MustBeProposedOwner(sub.proposedOwner);
        address previous = sub.owner;
        sub.owner = msg.sender;
        sub.proposedOwner = address(0);
        emit SubscriptionOwnerTransferred(subscriptionId, previous, msg.sender);
    }

    /// @notice Cancels a subscription and pays its balance to `to`. Refused while requests are
    ///         open or their fees unreclaimed: those fees come back to the subscription.
    function cancelSubscription(uint64 subscriptionId, address to) external {
        Subscription storage sub = _onlyOwner(subscriptionId);
        if (s_openRequestsPlusOne[subscriptionId] != 1) revert CannotRemoveWithPendingRequests();
        delete s_openRequestsPlusOne[subscriptionId];
        uint256 amount = sub.balance;
        address[] memory consumers = sub.consumers;
        for (uint256 i; i < consumers.length; ++i) {
            s_isConsumer[subscriptionId][consumers[i]] = false;
        }
        delete s_subscriptions[subscriptionId];
        emit SubscriptionCanceled(subscriptionId, to, amount);
        (bool paid,) = to.call{value: amount}("");
        if (!paid) revert PaymentFailed(to, amount);
    }

    /// @notice A subscription, as Chainlink's `getSubscription` returns it.
    function getSubscription(uint64 subscriptionId) external view returns (Subscription memory) {
        return s_subscriptions[subscriptionId];
    }

    /// @notice How many of a subscription's requests hold its fee: unanswered, or cancelled and
    ///         not yet reclaimed.
    function getPendingRequestCount(uint64 subscriptionId) external view returns (uint256) {
        uint256 plusOne = s_openRequestsPlusOne[subscriptionId];
        return plusOne == 0 ? 0 : plusOne - 1;
    }

    /// @notice Chainlink's allow-list route: this router has none, so it is the zero id.
    function getAllowListId() external pure returns (bytes32) {
        return bytes32(0);
    }

    /// @notice Chainlink's contract registry: this router routes to no other contract.
    function getContractById(bytes32 id) external pure returns (address) {
        revert RouteNotFound(id);
    }

    /// @notice How many subscriptions were ever created.
    function getSubscriptionCount() external view returns (uint64) {
        return s_subscriptionCount;
    }

    /// @notice Gives a cancelled request's fee back to its subscription (a request that waited
    ///         past its deadline unanswered is cancelled on-chain, by anyone, and the router
    ///         credits its fee to this adapter). Anyone may call it.
    /// @dev Credits only what the router refunded: a request this adapter was not called back
    ///      for but that was delivered has no refund, and its reclaim reverts.
    function reclaimFee(uint256 requestId) external {
        Pending memory pending = s_pending[requestId];
        if (pending.client == address(0)) revert NotPending(requestId);
        if (ROUTER.isOpen(requestId)) revert StillOpen(requestId);
        Subscription storage sub = _subscription(pending.subscriptionId);
        uint256 owed = ROUTER.balanceOf(address(this));
        if (owed != 0) {
            s_refunds += owed;
            ROUTER.withdraw(payable(address(this)));
        }
        if (s_refunds < pending.fee) revert NotRefunded(requestId);
        s_refunds -= pending.fee;
        delete s_pending[requestId];
        --s_openRequestsPlusOne[pending.subscriptionId];
        sub.balance += pending.fee;
        emit FeeReclaimed(bytes32(requestId), pending.subscriptionId, pending.fee);
    }

    /// @notice Refunds the router pays out to this adapter.
    receive() external payable {
        if (msg.sender != address(ROUTER)) revert OnlyRouterPays();
    }

    // -- requests ------------------------------------------------------------------------------

    /// @notice Chainlink's `IFunctionsRouter.sendRequest`: runs the CBOR request `data` and calls
    ///         the caller's `handleOracleFulfillment` with the answer.
    /// @return requestId The request's id (the AgentRouter's id, as bytes32).
    function sendRequest(
        uint64 subscriptionId,
        bytes calldata data,
        uint16 dataVersion,
        uint32 callbackGasLimit,
        bytes32 donId
    ) external returns (bytes32 requestId) {
        if (data.length == 0) revert EmptyRequestData();
        if (dataVersion != REQUEST_DATA_VERSION) revert UnsupportedRequestDataVersion(dataVersion);
        if (callbackGasLimit > MAX_CALLBACK_GAS) revert GasLimitTooBig(MAX_CALLBACK_GAS);
        (uint96 fee, address owner) = _charge(subscriptionId);
        // The owner goes first in the runtime's input: secrets sealed for this owner open for it.
        uint256 id = _requestAgent(
            FUNCTIONS_AGENT_ID, abi.encodePacked(owner, data), callbackGasLimit + CALLBACK_OVERHEAD_GAS, fee
        );
        ++s_openRequestsPlusOne[subscriptionId];
        s_pending[id] =
            Pending({client: msg.sender, callbackGasLimit: callbackGasLimit, subscriptionId: subscriptionId, fee: fee});
        requestId = bytes32(id);
        _emitStart(requestId, donId, subscriptionId, owner, data, callbackGasLimit, fee);
    }

    function _onAgentResult(uint256 id, AgentStatus status, bytes calldata output) internal override {
        Pending memory pending = s_pending[id];
        if (pending.client == address(0)) return; // not a request of this adapter's
        delete s_pending[id];
        --s_openRequestsPlusOne[pending.subscriptionId];
        bytes memory response;
        bytes memory err;
        if (status == AgentStatus.OK) {
            // The runtime answers abi.encode(bytes response, bytes err), one of them empty; an
            // answer of another shape is the client's error, never this callback's revert (which
            // would leave the request pending here and the client uncalled).
            try this.decodeAnswer(output) returns (bytes memory decodedResponse, bytes memory decodedErr) {
                (response, err) = (decodedResponse, decodedErr);
            } catch {
                err = "the Functions runtime answered in an unexpected shape";
            }
        } else {
            // The run itself failed (a timeout, a limit): its message is the error.
            err = output;
        }
        bytes memory payload =
            abi.encodeCall(IFunctionsClientCallback.handleOracleFulfillment, (bytes32(id), response, err));
        // Exactly the client's callback gas, as Chainlink's router gives it: the router gave this
        // callback the client's limit plus the overhead, so it is there.
        (bool success,) = pending.client.call{gas: pending.callbackGasLimit}(payload);
        emit RequestProcessed(
            bytes32(id), pending.subscriptionId, pending.fee, tx.origin, success ? 0 : 1, response, err, ""
        );
    }

    /// @notice abi.decode of the runtime's answer, external so that a malformed one can be caught.
    function decodeAnswer(bytes calldata output) external pure returns (bytes memory response, bytes memory err) {
        return abi.decode(output, (bytes, bytes));
    }

    // -- helpers -------------------------------------------------------------------------------

    /// @dev The runtime agent's price, taken from the subscription of a consumer of it.
    function _charge(uint64 subscriptionId) private returns (uint96 fee, address owner) {
        Subscription storage sub = _subscription(subscriptionId);
        owner = sub.owner;
        if (!s_isConsumer[subscriptionId][msg.sender]) revert InvalidConsumer(subscriptionId, msg.sender);
        fee = IAgentRegistry(address(ROUTER)).getAgent(FUNCTIONS_AGENT_ID).price;
        uint96 balance = sub.balance;
        if (balance < fee) revert InsufficientBalance(balance, fee);
        sub.balance = balance - fee;
    }

    function _emitStart(
        bytes32 requestId,
        bytes32 donId,
        uint64 subscriptionId,
        address owner,
        bytes calldata data,
        uint32 callbackGasLimit,
        uint96 fee
    ) private {
        emit RequestStart(
            requestId,
            donId,
            subscriptionId,
            owner,
            msg.sender,
            tx.origin,
            data,
            REQUEST_DATA_VERSION,
            callbackGasLimit,
            fee
        );
    }

    function _subscription(uint64 subscriptionId) private view returns (Subscription storage sub) {
        sub = s_subscriptions[subscriptionId];
        if (sub.owner == address(0)) revert InvalidSubscription();
    }

    function _onlyOwner(uint64 subscriptionId) private view returns (Subscription storage sub) {
        sub = _subscription(subscriptionId);
        if (msg.sender != sub.owner) revert MustBeSubscriptionOwner();
    }

    function _addConsumer(uint64 subscriptionId, address consumer) private {
        if (s_isConsumer[subscriptionId][consumer]) return;
        s_isConsumer[subscriptionId][consumer] = true;
        s_subscriptions[subscriptionId].consumers.push(consumer);
        emit SubscriptionConsumerAdded(subscriptionId, consumer);
    }
}
