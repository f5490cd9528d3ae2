// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {AgentRouter} from "../src/AgentRouter.sol";
import {IAgentSubscriptions} from "../src/interfaces/IAgentSubscriptions.sol";
import {
    AgentResult,
    AgentStatus,
    Currency,
    RequestCommitment,
    SignedAgentResult
} from "../src/libraries/AgentTypes.sol";
import {EchoConsumer} from "../src/examples/EchoConsumer.sol";
import {EnclaveToken} from "../src/token/EnclaveToken.sol";
import {GasBurningConsumer, RevertingConsumer} from "./mocks/HostileConsumers.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice Drives the router with requests (paid with their value, with tokens, or by a
///         subscription in wei or in tokens, at varying gas prices), honest and forged results,
///         cancellations, funding and withdrawals, keeping ghost totals of what it should hold.
contract RouterHandler is CommonBase, StdCheats, StdUtils {
    AgentRouter internal immutable router;
    uint256 internal immutable agentId;
    uint256 internal immutable clusterKey;
    bytes32 internal immutable codeHash;
    address internal immutable agentOwner;
    EnclaveToken internal immutable token;
    address internal immutable tokenMinter;
    uint64 internal immutable subscriptionId;
    uint64 internal immutable tokenSubscriptionId;
    address[] internal consumers;
    address[] internal transmitters;

    uint256[] internal openIds;
    mapping(uint256 => RequestCommitment) internal commitments;

    uint256 public ghostEscrowed; // fees of open requests paid with their value
    uint256 public ghostHeld; // fees of open requests paid by the subscription
    uint256 public ghostTokenEscrowed; // fees of open requests paid with tokens
    uint256 public ghostTokenHeld; // fees of open requests paid by the token subscription
    uint256 public ghostRequests;
    uint256 public ghostFulfilled;
    uint256 public ghostCancelled;
    uint256 public ghostWithdrawals;

    constructor(
        AgentRouter router_,
        uint256 agentId_,
        uint256 clusterKey_,
        bytes32 codeHash_,
        address agentOwner_,
        address tokenMinter_
    ) {
        router = router_;
        token = EnclaveToken(address(router_.FEE_TOKEN()));
        tokenMinter = tokenMinter_;
        agentId = agentId_;
        clusterKey = clusterKey_;
        codeHash = codeHash_;
        agentOwner = agentOwner_;
        consumers.push(address(new EchoConsumer(address(router_))));
        consumers.push(address(new RevertingConsumer()));
        consumers.push(address(new GasBurningConsumer()));
        subscriptionId = router_.createSubscription();
        tokenSubscriptionId = router_.createTokenSubscription();
        for (uint256 i; i < consumers.length; ++i) {
            router_.addConsumer(subscriptionId, consumers[i]);
            router_.addConsumer(tokenSubscriptionId, consumers[i]);
        }
        transmitters.push(address(0x7A45));
        transmitters.push(address(0x7A46));
    }

    function request(uint256 consumerSeed, uint96 fee, bytes calldata input, uint32 gasLimit, uint64 gasPrice)
        external
    {
        address consumer = consumers[consumerSeed % consumers.length];
        gasLimit = uint32(bound(gasLimit, 0, 300_000));
        vm.txGasPrice(bound(gasPrice, 0, 100 gwei));
        uint256 cost = router.estimateCost(agentId, gasLimit, tx.gasprice);
        fee = uint96(bound(fee, cost, cost + 1 ether));
        if (input.length > 1024) return;
        vm.deal(consumer, fee);
        vm.prank(consumer);
        uint256 requestId = router.request{value: fee}(agentId, input, gasLimit);
        _remember(requestId, consumer, fee, gasLimit, input, 0, Currency.ETH);
        ghostEscrowed += fee;
    }

    function requestWithToken(uint256 consumerSeed, bytes calldata input, uint32 gasLimit, uint64 gasPrice) external {
        address consumer = consumers[consumerSeed % consumers.length];
        gasLimit = uint32(bound(gasLimit, 0, 300_000));
        vm.txGasPrice(bound(gasPrice, 0, 100 gwei));
        uint256 cost = router.estimateTokenCost(agentId, gasLimit, tx.gasprice);
        if (input.length > 1024) return;
        vm.prank(tokenMinter);
        token.mint(consumer, cost);
        vm.startPrank(consumer);
        token.approve(address(router), cost);
        uint256 requestId = router.requestWithToken(agentId, input, gasLimit);
        vm.stopPrank();
        _remember(requestId, consumer, uint96(cost), gasLimit, input, 0, Currency.TOKEN);
        ghostTokenEscrowed += cost;
    }

    function requestWithSubscription(
        uint256 consumerSeed,
        bool inTokens,
        bytes calldata input,
        uint32 gasLimit,
        uint64 gasPrice
    ) external {
        address consumer = consumers[consumerSeed % consumers.length];
        gasLimit = uint32(bound(gasLimit, 0, 300_000));
        vm.txGasPrice(bound(gasPrice, 0, 100 gwei));
        uint256 cost = inTokens
            ? router.estimateTokenCost(agentId, gasLimit, tx.gasprice)
            : router.estimateCost(agentId, gasLimit, tx.gasprice);
        if (input.length > 1024) return;
        uint64 paidBy = inTokens ? tokenSubscriptionId : subscriptionId;
        IAgentSubscriptions.SubscriptionInfo memory info = router.getSubscription(paidBy);
        if (info.balance - info.held < cost) return; // refused, as the unit tests show
        vm.prank(consumer);
        uint256 requestId = router.requestWithSubscription(paidBy, agentId, input, gasLimit);
        _remember(requestId, consumer, uint96(cost), gasLimit, input, paidBy, info.currency);
        if (inTokens) ghostTokenHeld += cost;
        else ghostHeld += cost;
    }

    function fundSubscription(uint96 amount) external {
        amount = uint96(bound(amount, 1, 5 ether));
        vm.deal(address(this), amount);
        router.fundSubscription{value: amount}(subscriptionId);
    }

    function fundTokenSubscription(uint96 amount) external {
        amount = uint96(bound(amount, 1, 5_000 ether));
        vm.prank(tokenMinter);
        token.mint(address(this), amount);
        token.approve(address(router), amount);
        router.fundSubscriptionWithToken(tokenSubscriptionId, amount);
    }

    function withdrawFromSubscription(bool inTokens, uint96 amount) external {
        uint64 from = inTokens ? tokenSubscriptionId : subscriptionId;
        IAgentSubscriptions.SubscriptionInfo memory info = router.getSubscription(from);
        amount = uint96(bound(amount, 0, info.balance - info.held));
        router.withdrawFromSubscription(from, payable(address(0xD00D)), amount);
    }

    function _remember(
        uint256 requestId,
        address consumer,
        uint96 fee,
        uint32 gasLimit,
        bytes calldata input,
        uint64 paidBy,
        Currency currency
    ) internal {
        uint256 rate = currency == Currency.TOKEN ? router.tokensPerEth() : 1 ether;
        RequestCommitment memory commitment = RequestCommitment({
            agentId: agentId,
            codeHash: codeHash,
            inputHash: keccak256(input),
            consumer: consumer,
            fee: fee,
            callbackGasLimit: gasLimit,
            createdAt: uint48(block.number),
            deadline: uint48(block.timestamp + router.getConfig().requestTimeout),
            nonce: 0,
            price: uint96(uint256(router.getAgent(agentId).price) * rate / 1 ether),
            operatorFee: uint96(uint256(router.getConfig().operatorFee) * rate / 1 ether),
            subscriptionId: paidBy,
            assignee: address(0),
            assignedUntil: 0,
            currency: currency
        });
        while (router.requestIdOf(commitment) != requestId) {
            require(commitment.nonce < 4096, "no nonce gives the request's id");
            ++commitment.nonce;
        }
        commitments[requestId] = commitment;
        openIds.push(requestId);
        ++ghostRequests;
    }

    function fulfill(uint256 seed, uint8 count, uint256 transmitterSeed, uint64 gasPrice) external {
        if (openIds.length == 0) return;
        vm.txGasPrice(bound(gasPrice, 0, 200 gwei));
        count = uint8(bound(count, 1, 8));
        SignedAgentResult[] memory batch = new SignedAgentResult[](count);
        for (uint256 i; i < count; ++i) {
            uint256 requestId = openIds[uint256(keccak256(abi.encode(seed, i))) % openIds.length];
            bool forged = uint256(keccak256(abi.encode(seed, i, "forge"))) % 4 == 0;
            batch[i] = _sign(forged ? 0xBAD : clusterKey, requestId, commitments[requestId]);
        }
        uint256 balanceBefore = address(router).balance;
        uint256 tokensBefore = token.balanceOf(address(router));
        vm.prank(transmitters[transmitterSeed % transmitters.length]);
        ghostFulfilled += router.fulfill{gas: 15_000_000}(batch);
        _forgetClosed();
        assert(address(router).balance == balanceBefore);
        assert(token.balanceOf(address(router)) == tokensBefore);
    }

    function cancel(uint256 seed) external {
        if (openIds.length == 0) return;
        uint256 requestId = openIds[seed % openIds.length];
        RequestCommitment memory commitment = commitments[requestId];
        if (block.timestamp <= commitment.deadline) vm.warp(commitment.deadline + 1);
        router.cancel(commitment);
        ++ghostCancelled;
        _forgetClosed();
    }

    function withdraw(uint256 seed, bool inTokens) external {
        address[] memory accounts = allAccounts();
        address account = accounts[seed % accounts.length];
        if ((inTokens ? router.tokenBalanceOf(account) : router.balanceOf(account)) == 0) return;
        vm.prank(account);
        if (inTokens) router.withdrawToken(address(0xD00D));
        else router.withdraw(payable(address(0xD00D)));
        ++ghostWithdrawals;
    }

    function openCount() external view returns (uint256) {
        return openIds.length;
    }

    function allAccounts() public view returns (address[] memory accounts) {
        accounts = new address[](consumers.length + transmitters.length + 1);
        for (uint256 i; i < consumers.length; ++i) {
            accounts[i] = consumers[i];
        }
        for (uint256 i; i < transmitters.length; ++i) {
            accounts[consumers.length + i] = transmitters[i];
        }
        accounts[accounts.length - 1] = agentOwner;
    }

    function subscription() external view returns (IAgentSubscriptions.SubscriptionInfo memory) {
        return router.getSubscription(subscriptionId);
    }

    function tokenSubscription() external view returns (IAgentSubscriptions.SubscriptionInfo memory) {
        return router.getSubscription(tokenSubscriptionId);
    }

    /// @dev Drops the requests the router closed and takes their fees out of the escrow total.
    function _forgetClosed() internal {
        for (uint256 i = openIds.length; i > 0; --i) {
            uint256 requestId = openIds[i - 1];
            if (router.isOpen(requestId)) continue;
            RequestCommitment memory closed = commitments[requestId];
            bool inTokens = closed.currency == Currency.TOKEN;
            if (closed.subscriptionId == 0) {
                if (inTokens) ghostTokenEscrowed -= closed.fee;
                else ghostEscrowed -= closed.fee;
            } else {
                if (inTokens) ghostTokenHeld -= closed.fee;
                else ghostHeld -= closed.fee;
            }
            openIds[i - 1] = openIds[openIds.length - 1];
            openIds.pop();
        }
    }

    function _sign(uint256 key, uint256 requestId, RequestCommitment memory commitment)
        internal
        view
        returns (SignedAgentResult memory result)
    {
        AgentResult memory unsigned = AgentResult(commitment, AgentStatus.OK, abi.encode(requestId));
        (bytes32 r, bytes32 vs) = vm.signCompact(key, router.resultDigest(unsigned, 1));
        result = SignedAgentResult(unsigned, 1, r, vs);
    }
}

contract AgentRouter_Invariants is RouterSetup {
    RouterHandler internal handler;

    function setUp() public override {
        super.setUp();
        // Every part of a charge is in play: a price, an operator's fee, gas at varying prices.
        _chargeAnOperatorFee();
        handler = new RouterHandler(router, agentId, CLUSTER_KEY_1, keccak256(AGENT_CODE), AGENT_OWNER, OWNER);
        targetContract(address(handler));
        // The fuzzer's senders pay gas at the handlers' gas prices: the router must not be one.
        excludeSender(address(router));
    }

    /// @notice Wei is conserved: the router holds exactly the open requests' escrow, what
    ///         accounts (consumers, transmitters, the agent's owner) may withdraw, and the
    ///         subscription's balance.
    function invariant_BalanceEqualsEscrowPlusWithdrawablePlusSubscriptions() public view {
        address[] memory accounts = handler.allAccounts();
        uint256 withdrawable;
        for (uint256 i; i < accounts.length; ++i) {
            withdrawable += router.balanceOf(accounts[i]);
        }
        assertEq(address(router).balance, handler.ghostEscrowed() + withdrawable + handler.subscription().balance);
    }

    /// @notice Tokens are conserved as wei is: the router holds exactly the open token requests'
    ///         escrow, the accounts' token balances, and the token subscription's balance.
    function invariant_TokensEqualEscrowPlusWithdrawablePlusSubscriptions() public view {
        address[] memory accounts = handler.allAccounts();
        uint256 withdrawable;
        for (uint256 i; i < accounts.length; ++i) {
            withdrawable += router.tokenBalanceOf(accounts[i]);
        }
        assertEq(
            feeToken.balanceOf(address(router)),
            handler.ghostTokenEscrowed() + withdrawable + handler.tokenSubscription().balance
        );
    }

    /// @notice A subscription holds exactly its open requests' fees, and never more than it has.
    function invariant_SubscriptionHoldsItsOpenRequestsAndNoMore() public view {
        IAgentSubscriptions.SubscriptionInfo memory info = handler.subscription();
        assertEq(info.held, handler.ghostHeld());
        assertLe(info.held, info.balance);
        IAgentSubscriptions.SubscriptionInfo memory inTokens = handler.tokenSubscription();
        assertEq(inTokens.held, handler.ghostTokenHeld());
        assertLe(inTokens.held, inTokens.balance);
    }

    /// @notice Every request made is open, fulfilled once or cancelled once: none lost, none twice.
    function invariant_EveryRequestIsOpenFulfilledOrCancelled() public view {
        assertEq(handler.openCount() + handler.ghostFulfilled() + handler.ghostCancelled(), handler.ghostRequests());
    }

    /// @notice The run did drive the router: handlers that always returned early (or reverted,
    ///         which `fail_on_revert` turns into a failure) would prove nothing.
    function afterInvariant() external view {
        assertGt(handler.ghostRequests(), 0, "no request was made");
        assertGt(handler.ghostFulfilled() + handler.ghostCancelled(), 0, "no request was closed");
    }
}
