// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {IAgentSubscriptions} from "../interfaces/IAgentSubscriptions.sol";
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
///         them, funded in ETH: each is a router subscription that this adapter owns and
///         consumes, so a request holds its most possible cost there and pays what it cost (the
///         runtime agent's price, the operator's fee, the delivery's gas), as any request does.
/// @dev The request's bytes (source, args, secrets reference) are the agent's input, after the
///      subscription owner's address, so the router's request id binds them exactly as it binds
///      any agent's input.
contract FunctionsRouterAdapter is AgentConsumer {
    /// @notice A subscription, shaped as Chainlink's `IFunctionsSubscriptions.Subscription`.
    struct Subscription {
        uint96 balance; // wei, open requests' holds included
        address owner;
        uint96 blockedBalance; // wei held for open requests: the most they can still cost
        address proposedOwner;
        address[] consumers;
        bytes32 flags;
    }

    struct Owners {
        address owner;
        address proposedOwner;
    }

    struct Pending {
        address client;
        uint32 callbackGasLimit;
        uint64 subscriptionId;
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
    /// @dev The router's subscriptions (the router itself).
    IAgentSubscriptions private immutable SUBSCRIPTIONS;

    uint64 private s_subscriptionCount;
    mapping(uint64 subscriptionId => Owners) private s_owners;
    mapping(uint64 subscriptionId => address[]) private s_consumers;
    mapping(uint64 subscriptionId => mapping(address consumer => bool)) private s_isConsumer;
    mapping(uint256 requestId => Pending) private s_pending;

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
    /// @notice Emitted for every request, as Chainlink's router emits it (costs in wei: the most
    ///         the request can cost, which its subscription holds).
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
    ///         `resultCode` 0 when the callback succeeded, 1 when it reverted. `totalCostJuels` is
    ///         0: the cost is settled after this callback returns, and the router's
    ///         `RequestFulfilled` in the same transaction carries each of its parts.
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

    /// @notice No subscription of this adapter has this id.
    error InvalidSubscription();
    /// @notice Only the subscription's owner may do this.
    error MustBeSubscriptionOwner();
    /// @notice Only the proposed owner may accept a subscription.
    error MustBeProposedOwner(address proposedOwner);
    /// @notice The caller is not a consumer of the subscription.
    error InvalidConsumer(uint64 subscriptionId, address consumer);
    /// @notice The subscription holds wei for requests that may yet be answered or cancelled.
    error CannotRemoveWithPendingRequests();
    /// @notice The request names a data version this adapter does not read.
    error UnsupportedRequestDataVersion(uint16 version);
    /// @notice The callback gas asked for is over the maximum.
    error GasLimitTooBig(uint32 limit);
    /// @notice A request without data.
    error EmptyRequestData();
    /// @notice No contract is registered under this id (this router has no allow list).
    error RouteNotFound(bytes32 id);

    /// @param router The AgentRouter.
    /// @param functionsAgentId The Functions runtime agent's id on that router.
    constructor(address router, uint256 functionsAgentId) AgentConsumer(router) {
        FUNCTIONS_AGENT_ID = functionsAgentId;
        SUBSCRIPTIONS = IAgentSubscriptions(router);
    }

    // -- subscriptions -------------------------------------------------------------------------

    /// @notice Creates a subscription owned by the caller (a router subscription that this adapter
    ///         holds for it; its id is the router's).
    function createSubscription() public returns (uint64 subscriptionId) {
        subscriptionId = SUBSCRIPTIONS.createSubscription();
        SUBSCRIPTIONS.addConsumer(subscriptionId, address(this));
        s_owners[subscriptionId].owner = msg.sender;
        ++s_subscriptionCount;
        emit SubscriptionCreated(subscriptionId, msg.sender);
    }

    /// @notice Creates a subscription owned by the caller, with one consumer.
    function createSubscriptionWithConsumer(address consumer) external returns (uint64 subscriptionId) {
        subscriptionId = createSubscription();
        _addConsumer(subscriptionId, consumer);
    }

    /// @notice Adds the wei sent to a subscription's balance (anyone may fund any subscription).
    function fundSubscription(uint64 subscriptionId) external payable {
        _owners(subscriptionId);
        uint256 old = SUBSCRIPTIONS.getSubscription(subscriptionId).balance;
        SUBSCRIPTIONS.fundSubscription{value: msg.value}(subscriptionId);
        emit SubscriptionFunded(subscriptionId, old, old + msg.value);
    }

    /// @notice Lets `consumer` send requests paid by the subscription.
    function addConsumer(uint64 subscriptionId, address consumer) external {
        _onlyOwner(subscriptionId);
        _addConsumer(subscriptionId, consumer);
    }

    /// @notice Stops `consumer` from sending requests paid by the subscription.
    function removeConsumer(uint64 subscriptionId, address consumer) external {
        _onlyOwner(subscriptionId);
        if (!s_isConsumer[subscriptionId][consumer]) revert InvalidConsumer(subscriptionId, consumer);
        s_isConsumer[subscriptionId][consumer] = false;
        address[] storage consumers = s_consumers[subscriptionId];
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
        _onlyOwner(subscriptionId).proposedOwner = newOwner;
        emit SubscriptionOwnerTransferRequested(subscriptionId, msg.sender, newOwner);
    }

    /// @notice The proposed owner takes the subscription over. Secrets sealed for the previous
    ///         owner stop opening for its requests (they are bound to the owner, as on Chainlink).
    function acceptSubscriptionOwnerTransfer(uint64 subscriptionId) external {
        Owners storage owners = _owners(subscriptionId);
        if (msg.sender != owners.proposedOwner) revert MustBeProposedOwner(owners.proposedOwner);
        address previous = owners.owner;
        owners.owner = msg.sender;
        owners.proposedOwner = address(0);
        emit SubscriptionOwnerTransferred(subscriptionId, previous, msg.sender);
    }

    /// @notice Cancels a subscription and pays its balance to `to`. Refused while requests hold
    ///         part of it (unanswered ones, until they are answered or cancelled on the router).
    function cancelSubscription(uint64 subscriptionId, address to) external {
        _onlyOwner(subscriptionId);
        IAgentSubscriptions.SubscriptionInfo memory info = SUBSCRIPTIONS.getSubscription(subscriptionId);
        if (info.held != 0) revert CannotRemoveWithPendingRequests();
        address[] memory consumers = s_consumers[subscriptionId];
        for (uint256 i; i < consumers.length; ++i) {
            s_isConsumer[subscriptionId][consumers[i]] = false;
        }
        delete s_consumers[subscriptionId];
        delete s_owners[subscriptionId];
        emit SubscriptionCanceled(subscriptionId, to, info.balance);
        SUBSCRIPTIONS.cancelSubscription(subscriptionId, payable(to));
    }

    /// @notice A subscription, as Chainlink's `getSubscription` returns it.
    function getSubscription(uint64 subscriptionId) external view returns (Subscription memory sub) {
        Owners memory owners = s_owners[subscriptionId];
        if (owners.owner == address(0)) return sub; // an unknown id reads as empty
        IAgentSubscriptions.SubscriptionInfo memory info = SUBSCRIPTIONS.getSubscription(subscriptionId);
        sub.balance = info.balance;
        sub.owner = owners.owner;
        sub.blockedBalance = info.held;
        sub.proposedOwner = owners.proposedOwner;
        sub.consumers = s_consumers[subscriptionId];
    }

    /// @notice How many subscriptions this adapter created.
    function getSubscriptionCount() external view returns (uint64) {
        return s_subscriptionCount;
    }

    /// @notice Chainlink's allow-list route: this router has none, so it is the zero id.
    function getAllowListId() external pure returns (bytes32) {
        return bytes32(0);
    }

    /// @notice Chainlink's contract registry: this router routes to no other contract.
    function getContractById(bytes32 id) external pure returns (address) {
        revert RouteNotFound(id);
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
        address owner = _owners(subscriptionId).owner;
        if (!s_isConsumer[subscriptionId][msg.sender]) revert InvalidConsumer(subscriptionId, msg.sender);
        uint32 gasForAdapter = callbackGasLimit + CALLBACK_OVERHEAD_GAS;
        // The owner goes first in the runtime's input: secrets sealed for this owner open for it.
        uint256 id = ROUTER.requestWithSubscription(
            subscriptionId, FUNCTIONS_AGENT_ID, abi.encodePacked(owner, data), gasForAdapter
        );
        s_pending[id] =
            Pending({client: msg.sender, callbackGasLimit: callbackGasLimit, subscriptionId: subscriptionId});
        requestId = bytes32(id);
        uint256 held = ROUTER.estimateCost(FUNCTIONS_AGENT_ID, gasForAdapter, tx.gasprice);
        _emitStart(requestId, donId, subscriptionId, owner, data, callbackGasLimit, uint96(held));
    }

    function _onAgentResult(uint256 id, AgentStatus status, bytes calldata output) internal override {
        Pending memory pending = s_pending[id];
        if (pending.client == address(0)) return; // not a request of this adapter's
        delete s_pending[id];
        bytes memory response;
        bytes memory err;
        if (status == AgentStatus.OK) {
            // The runtime answers abi.encode(bytes response, bytes err), one of them empty; an
            // answer of another shape is the client's error, never this callback's revert (which
            // would leave the client uncalled).
            try this.decodeAnswer(output) returns (bytes memory decodedResponse, bytes memory decodedErr) {
                (response, err) = (decodedResponse, decodedErr);
            } catch {
                err = "the Functions runtime answered in an unexpected shape";
            }
            // A response or an error, never both: held here, whatever code ran in the runtime.
            if (response.length != 0 && err.length != 0) {
                response = "";
                err = "the Functions runtime answered with both a response and an error";
            }
        } else {
            // The run itself failed (a timeout, a limit): its message is the error.
            err = output;
        }
        bytes memory payload =
            abi.encodeCall(IFunctionsClientCallback.handleOracleFulfillment, (bytes32(id), response, err));
        // Exactly the client's callback gas, as Chainlink's router gives it: the router gave this
        // callback the client's limit plus the overhead, so it is there. The return data is never
        // copied, so a client cannot make this callback run out of gas with a huge one.
        bool success;
        address client = pending.client;
        uint256 gasLimit = pending.callbackGasLimit;
        assembly ("memory-safe") {
            success := call(gasLimit, client, 0, add(payload, 0x20), mload(payload), 0, 0)
        }
        emit RequestProcessed(bytes32(id), pending.subscriptionId, 0, tx.origin, success ? 0 : 1, response, err, "");
    }

    /// @notice abi.decode of the runtime's answer, external so that a malformed one can be caught.
    function decodeAnswer(bytes calldata output) external pure returns (bytes memory response, bytes memory err) {
        return abi.decode(output, (bytes, bytes));
    }

    // -- helpers -------------------------------------------------------------------------------

    function _emitStart(
        bytes32 requestId,
        bytes32 donId,
        uint64 subscriptionId,
        address owner,
        bytes calldata data,
        uint32 callbackGasLimit,
        uint96 held
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
            held
        );
    }

    function _owners(uint64 subscriptionId) private view returns (Owners storage owners) {
        owners = s_owners[subscriptionId];
        if (owners.owner == address(0)) revert InvalidSubscription();
    }

    function _onlyOwner(uint64 subscriptionId) private view returns (Owners storage owners) {
        owners = _owners(subscriptionId);
        if (msg.sender != owners.owner) revert MustBeSubscriptionOwner();
    }

    function _addConsumer(uint64 subscriptionId, address consumer) private {
        if (s_isConsumer[subscriptionId][consumer]) return;
        s_isConsumer[subscriptionId][consumer] = true;
        s_consumers[subscriptionId].push(consumer);
        emit SubscriptionConsumerAdded(subscriptionId, consumer);
    }
}
