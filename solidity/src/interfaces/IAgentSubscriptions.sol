// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Currency} from "../libraries/AgentTypes.sol";

/// @title IAgentSubscriptions
/// @notice Prepaid balances that pay for the requests of the consumers their owner adds, as
///         Chainlink Functions users know them: create one, fund it, add consumers; each request
///         holds its most possible cost (`estimateCost`) until it is fulfilled or cancelled, then
///         pays what it cost and releases the rest. A subscription holds one currency, chosen
///         when it is created: wei, or the router's fee token (funded by transfer, or with an
///         EIP-2612 permit in the same transaction); its requests are charged in it.
interface IAgentSubscriptions {
    /// @notice A subscription's state.
    /// @param owner Who adds consumers and withdraws.
    /// @param balance What it holds in its currency, open requests' holds included.
    /// @param held What is held for open requests: the most they can still cost.
    /// @param proposedOwner Who may accept the subscription, when its owner offered it.
    /// @param currency What it holds and pays in.
    struct SubscriptionInfo {
        address owner;
        uint96 balance;
        uint96 held;
        address proposedOwner;
        Currency currency;
    }

    /// @notice No subscription has this id.
    error SubscriptionNotFound(uint64 subscriptionId);
    /// @notice Only the subscription's owner may do this.
    error NotSubscriptionOwner(uint64 subscriptionId, address caller);
    /// @notice Only the proposed owner may accept the subscription.
    error NotProposedOwner(uint64 subscriptionId, address caller);
    /// @notice The caller is not a consumer of the subscription.
    error NotSubscriptionConsumer(uint64 subscriptionId, address consumer);
    /// @notice The subscription cannot hold a request's most possible cost besides its other holds.
    error InsufficientSubscriptionBalance(uint64 subscriptionId, uint256 available, uint256 required);
    /// @notice More than the subscription holds free of open requests.
    error AmountNotAvailable(uint64 subscriptionId, uint256 available, uint256 requested);
    /// @notice The subscription still holds wei for open requests.
    error SubscriptionHasOpenRequests(uint64 subscriptionId, uint256 held);
    /// @notice A subscription's balance must fit 96 bits.
    error SubscriptionBalanceTooLarge(uint256 balance);
    /// @notice A payment in wei failed to send.
    error PaymentFailed(address to, uint256 amount);
    /// @notice The subscription holds another currency than this funding brings.
    error WrongCurrency(uint64 subscriptionId, Currency currency);
    /// @notice The router takes no token: it was deployed without a fee token.
    error NoFeeToken();

    // The events a Chainlink Functions subscription emits keep Chainlink's shapes, so that tools
    // written for those (`@chainlink/functions-toolkit`'s SubscriptionManager) read these too.

    /// @notice Emitted when a subscription is created.
    event SubscriptionCreated(uint64 indexed subscriptionId, address owner);
    /// @notice Emitted when wei is added to a subscription.
    event SubscriptionFunded(uint64 indexed subscriptionId, uint256 oldBalance, uint256 newBalance);
    /// @notice Emitted when a consumer may charge requests to a subscription.
    event SubscriptionConsumerAdded(uint64 indexed subscriptionId, address consumer);
    /// @notice Emitted when a consumer may no longer charge requests to a subscription.
    event SubscriptionConsumerRemoved(uint64 indexed subscriptionId, address consumer);
    /// @notice Emitted when the owner takes wei out of a subscription.
    event SubscriptionWithdrawn(uint64 indexed subscriptionId, address indexed to, uint256 amount);
    /// @notice Emitted when a subscription's owner offers it to another.
    event SubscriptionOwnerTransferRequested(uint64 indexed subscriptionId, address from, address to);
    /// @notice Emitted when the proposed owner accepts a subscription.
    event SubscriptionOwnerTransferred(uint64 indexed subscriptionId, address from, address to);
    /// @notice Emitted when a subscription is cancelled and its balance paid out.
    event SubscriptionCanceled(uint64 indexed subscriptionId, address fundsRecipient, uint256 fundsAmount);

    /// @notice Creates a subscription owned by the caller.
    /// @return subscriptionId Its id, counting from 1.
    function createSubscription() external returns (uint64 subscriptionId);

    /// @notice Creates a subscription owned by the caller that holds and pays in the fee token.
    /// @return subscriptionId Its id, counting from 1.
    function createTokenSubscription() external returns (uint64 subscriptionId);

    /// @notice Adds the wei sent to a subscription in wei (anyone may fund any subscription).
    function fundSubscription(uint64 subscriptionId) external payable;

    /// @notice Moves `amount` of the fee token from the caller to a subscription in the token; the
    ///         caller approved the router for it.
    function fundSubscriptionWithToken(uint64 subscriptionId, uint256 amount) external;

    /// @notice As `fundSubscriptionWithToken`, approving the router with the caller's EIP-2612
    ///         permit in the same transaction (a permit already used, by someone who saw it
    ///         first, is fine while the allowance covers `amount`).
    function fundSubscriptionWithPermit(
        uint64 subscriptionId,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Lets `consumer` charge requests to the subscription. Owner only.
    function addConsumer(uint64 subscriptionId, address consumer) external;

    /// @notice Stops `consumer` from charging requests to the subscription. Owner only; its open
    ///         requests stay held and settle as usual.
    function removeConsumer(uint64 subscriptionId, address consumer) external;

    /// @notice Sends `amount` of what no open request holds to `to`, in the subscription's
    ///         currency. Owner only.
    function withdrawFromSubscription(uint64 subscriptionId, address payable to, uint256 amount) external;

    /// @notice Offers the subscription to `newOwner`, who becomes its owner on accepting. Owner only.
    function proposeSubscriptionOwnerTransfer(uint64 subscriptionId, address newOwner) external;

    /// @notice Takes over a subscription offered to the caller.
    function acceptSubscriptionOwnerTransfer(uint64 subscriptionId) external;

    /// @notice Pays the whole balance to `to` and deletes the subscription; refused while open
    ///         requests hold part of it. Owner only.
    function cancelSubscription(uint64 subscriptionId, address payable to) external;

    /// @notice A subscription's owner, balance, holds, proposed owner and currency.
    function getSubscription(uint64 subscriptionId) external view returns (SubscriptionInfo memory info);

    /// @notice Whether `consumer` may charge requests to the subscription.
    function isSubscriptionConsumer(uint64 subscriptionId, address consumer) external view returns (bool);
}
