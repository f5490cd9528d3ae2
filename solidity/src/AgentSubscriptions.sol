// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IAgentSubscriptions} from "./interfaces/IAgentSubscriptions.sol";
import {Currency} from "./libraries/AgentTypes.sol";

/// @title AgentSubscriptions
/// @notice Prepaid balances, in wei or in the fee token, that pay for their consumers' requests.
/// @dev The router inherits this contract (as it inherits the registry), so that a request holds
///      and a fulfilment settles with no external call. What requests touch, the balance and the
///      holds, shares one slot; the owners live in another, which requests never read.
abstract contract AgentSubscriptions is IAgentSubscriptions, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @dev Invariant: held <= balance.
    struct Account {
        uint96 balance;
        uint96 held;
        Currency currency;
    }

    struct Owners {
        address owner;
        address proposedOwner;
    }

    uint64 private s_subscriptionCount;
    mapping(uint64 subscriptionId => Account) private s_accounts;
    mapping(uint64 subscriptionId => Owners) private s_owners;
    mapping(uint64 subscriptionId => mapping(address consumer => bool)) private s_consumers;

    /// @dev A modifier's body is copied into every function that uses it; a function is not,
    ///      which keeps the router under the code size limit.
    modifier onlySubscriptionOwner(uint64 subscriptionId) {
        _checkSubscriptionOwner(subscriptionId);
        _;
    }

    function _checkSubscriptionOwner(uint64 subscriptionId) private view {
        address owner = s_owners[subscriptionId].owner;
        if (owner == address(0)) revert SubscriptionNotFound(subscriptionId);
        if (owner != msg.sender) revert NotSubscriptionOwner(subscriptionId, msg.sender);
    }

    /// @dev The router's fee token, or zero when it takes none.
    function _feeToken() internal view virtual returns (IERC20);

    /// @inheritdoc IAgentSubscriptions
    function createSubscription() external returns (uint64 subscriptionId) {
        return _createSubscription(Currency.ETH);
    }

    /// @inheritdoc IAgentSubscriptions
    function createTokenSubscription() external returns (uint64 subscriptionId) {
        if (address(_feeToken()) == address(0)) revert NoFeeToken();
        return _createSubscription(Currency.TOKEN);
    }

    /// @inheritdoc IAgentSubscriptions
    function fundSubscription(uint64 subscriptionId) external payable {
        _credit(subscriptionId, Currency.ETH, msg.value);
    }

    /// @inheritdoc IAgentSubscriptions
    function fundSubscriptionWithToken(uint64 subscriptionId, uint256 amount) external {
        _fundWithToken(subscriptionId, amount);
    }

    /// @inheritdoc IAgentSubscriptions
    function fundSubscriptionWithPermit(
        uint64 subscriptionId,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        // Anyone who saw the permit in the mempool may have used it first: that only approved
        // the router, so a failed permit is fine while the allowance covers the amount (and
        // `transferFrom` says so when it does not).
        try IERC20Permit(address(_feeToken())).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _fundWithToken(subscriptionId, amount);
    }

    /// @inheritdoc IAgentSubscriptions
    function addConsumer(uint64 subscriptionId, address consumer) external onlySubscriptionOwner(subscriptionId) {
        if (s_consumers[subscriptionId][consumer]) return;
        s_consumers[subscriptionId][consumer] = true;
        emit SubscriptionConsumerAdded(subscriptionId, consumer);
    }

    /// @inheritdoc IAgentSubscriptions
    function removeConsumer(uint64 subscriptionId, address consumer) external onlySubscriptionOwner(subscriptionId) {
        if (!s_consumers[subscriptionId][consumer]) revert NotSubscriptionConsumer(subscriptionId, consumer);
        delete s_consumers[subscriptionId][consumer];
        emit SubscriptionConsumerRemoved(subscriptionId, consumer);
    }

    /// @inheritdoc IAgentSubscriptions
    function withdrawFromSubscription(uint64 subscriptionId, address payable to, uint256 amount)
        external
        nonReentrant
        onlySubscriptionOwner(subscriptionId)
    {
        Account storage account = s_accounts[subscriptionId];
        uint256 available = account.balance - account.held;
        if (amount > available) revert AmountNotAvailable(subscriptionId, available, amount);
        account.balance -= uint96(amount);
        emit SubscriptionWithdrawn(subscriptionId, to, amount);
        _payOut(account.currency, to, amount);
    }

    /// @inheritdoc IAgentSubscriptions
    function proposeSubscriptionOwnerTransfer(uint64 subscriptionId, address newOwner)
        external
        onlySubscriptionOwner(subscriptionId)
    {
        s_owners[subscriptionId].proposedOwner = newOwner;
        emit SubscriptionOwnerTransferRequested(subscriptionId, msg.sender, newOwner);
    }

    /// @inheritdoc IAgentSubscriptions
    function acceptSubscriptionOwnerTransfer(uint64 subscriptionId) external {
        Owners storage owners = s_owners[subscriptionId];
        if (owners.owner == address(0)) revert SubscriptionNotFound(subscriptionId);
        if (owners.proposedOwner != msg.sender) revert NotProposedOwner(subscriptionId, msg.sender);
        address previous = owners.owner;
        owners.owner = msg.sender;
        owners.proposedOwner = address(0);
        emit SubscriptionOwnerTransferred(subscriptionId, previous, msg.sender);
    }

    /// @inheritdoc IAgentSubscriptions
    function cancelSubscription(uint64 subscriptionId, address payable to)
        external
        nonReentrant
        onlySubscriptionOwner(subscriptionId)
    {
        Account memory account = s_accounts[subscriptionId];
        if (account.held != 0) revert SubscriptionHasOpenRequests(subscriptionId, account.held);
        delete s_accounts[subscriptionId];
        delete s_owners[subscriptionId];
        // Consumers stay in the mapping, harmless: nothing charges a subscription without owner.
        emit SubscriptionCanceled(subscriptionId, to, account.balance);
        _payOut(account.currency, to, account.balance);
    }

    /// @inheritdoc IAgentSubscriptions
    function getSubscription(uint64 subscriptionId) external view returns (SubscriptionInfo memory info) {
        Owners memory owners = s_owners[subscriptionId];
        if (owners.owner == address(0)) revert SubscriptionNotFound(subscriptionId);
        Account memory account = s_accounts[subscriptionId];
        return SubscriptionInfo({
            owner: owners.owner,
            balance: account.balance,
            held: account.held,
            proposedOwner: owners.proposedOwner,
            currency: account.currency
        });
    }

    /// @inheritdoc IAgentSubscriptions
    function isSubscriptionConsumer(uint64 subscriptionId, address consumer) external view returns (bool) {
        return s_owners[subscriptionId].owner != address(0) && s_consumers[subscriptionId][consumer];
    }

    /// @dev What a subscription holds and pays in (wei for an id that names none: `_hold` refuses it).
    function _currencyOf(uint64 subscriptionId) internal view returns (Currency) {
        return s_accounts[subscriptionId].currency;
    }

    /// @dev Holds `amount` of the subscription for a request of `consumer`.
    function _hold(uint64 subscriptionId, address consumer, uint256 amount) internal {
        if (s_owners[subscriptionId].owner == address(0)) revert SubscriptionNotFound(subscriptionId);
        if (!s_consumers[subscriptionId][consumer]) revert NotSubscriptionConsumer(subscriptionId, consumer);
        Account storage account = s_accounts[subscriptionId];
        (uint96 balance, uint96 held) = (account.balance, account.held);
        uint256 available = balance - held;
        if (amount > available) revert InsufficientSubscriptionBalance(subscriptionId, available, amount);
        account.held = held + uint96(amount);
    }

    /// @dev Releases a request's hold and takes what it cost (`charged` <= `hold`).
    function _settleHold(uint64 subscriptionId, uint96 hold, uint96 charged) internal {
        Account storage account = s_accounts[subscriptionId];
        (uint96 balance, uint96 held) = (account.balance, account.held);
        account.held = held - hold;
        account.balance = balance - charged;
    }

    function _createSubscription(Currency currency) private returns (uint64 subscriptionId) {
        subscriptionId = ++s_subscriptionCount;
        s_owners[subscriptionId].owner = msg.sender;
        s_accounts[subscriptionId].currency = currency;
        emit SubscriptionCreated(subscriptionId, msg.sender);
    }

    /// @dev Takes `amount` of the fee token from the caller into a token subscription.
    function _fundWithToken(uint64 subscriptionId, uint256 amount) private {
        // Credited first, so a subscription in wei is refused before any token moves; the
        // transfer's failure reverts the credit. Not guarded against reentrancy: a consumer's
        // callback may fund its subscription, and the credit is written before the call out.
        _credit(subscriptionId, Currency.TOKEN, amount);
        _feeToken().safeTransferFrom(msg.sender, address(this), amount);
    }

    function _credit(uint64 subscriptionId, Currency currency, uint256 amount) private {
        if (s_owners[subscriptionId].owner == address(0)) revert SubscriptionNotFound(subscriptionId);
        Account storage account = s_accounts[subscriptionId];
        if (account.currency != currency) revert WrongCurrency(subscriptionId, account.currency);
        uint256 old = account.balance;
        uint256 balance = old + amount;
        if (balance > type(uint96).max) revert SubscriptionBalanceTooLarge(balance);
        account.balance = uint96(balance);
        emit SubscriptionFunded(subscriptionId, old, balance);
    }

    /// @dev Sends `amount` of `currency` out: wei by a call, the token by a transfer.
    function _payOut(Currency currency, address payable to, uint256 amount) internal {
        if (amount == 0) return;
        if (currency == Currency.TOKEN) {
            _feeToken().safeTransfer(to, amount);
            return;
        }
        (bool sent,) = to.call{value: amount}("");
        if (!sent) revert PaymentFailed(to, amount);
    }
}
