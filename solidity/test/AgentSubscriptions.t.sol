// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentSubscriptions} from "../src/interfaces/IAgentSubscriptions.sol";
import {AgentStatus, RequestCommitment} from "../src/libraries/AgentTypes.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice Subscriptions: a balance that pays for its consumers' requests, each holding its most
///         possible cost until it settles; its owner withdraws only what no open request holds.
contract AgentSubscriptions_Test is RouterSetup {
    address internal constant SUB_OWNER = address(0x5B0B);
    uint64 internal subscriptionId;

    function setUp() public override {
        super.setUp();
        _chargeAnOperatorFee();
        vm.startPrank(SUB_OWNER);
        subscriptionId = router.createSubscription();
        router.addConsumer(subscriptionId, address(consumer));
        vm.stopPrank();
        router.fundSubscription{value: 1 ether}(subscriptionId);
    }

    /// @dev A request of the EchoConsumer charged to the subscription, sent at `gasPrice`.
    function _requestCharged(uint256 gasPrice) internal returns (uint256 requestId, RequestCommitment memory c) {
        vm.txGasPrice(gasPrice);
        vm.prank(address(consumer));
        requestId = router.requestWithSubscription(subscriptionId, agentId, "x", CALLBACK_GAS);
        uint256 fee = router.estimateCost(agentId, CALLBACK_GAS, gasPrice);
        c = _commitmentOf(
            requestId, agentId, keccak256(AGENT_CODE), address(consumer), "x", CALLBACK_GAS, fee, subscriptionId
        );
    }

    function _info() internal view returns (IAgentSubscriptions.SubscriptionInfo memory) {
        return router.getSubscription(subscriptionId);
    }

    function test_ARequestHoldsItsMostPossibleCostAndPaysWhatItCost() public {
        (, RequestCommitment memory c) = _requestCharged(2 gwei);
        assertEq(_info().held, c.fee, "held: price, operator's fee and gas at the request's price");
        assertEq(_info().balance, 1 ether, "nothing paid yet");

        vm.txGasPrice(2 gwei);
        _fulfill(_one(_ok(c, "pong")));
        IAgentSubscriptions.SubscriptionInfo memory info = _info();
        assertEq(info.held, 0, "the hold is released");
        uint256 charged = 1 ether - info.balance;
        assertLt(charged, c.fee, "the callback used less than its limit: less was charged than held");
        assertEq(charged, router.balanceOf(AGENT_OWNER) + router.balanceOf(TRANSMITTER), "to owner and transmitter");
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
        assertEq(router.balanceOf(address(consumer)), 0, "a subscription's request refunds the subscription");
    }

    function test_OnlyConsumersMayChargeIt() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.NotSubscriptionConsumer.selector, subscriptionId, address(0xBAD))
        );
        router.requestWithSubscription(subscriptionId, agentId, "x", CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(IAgentSubscriptions.SubscriptionNotFound.selector, uint64(99)));
        router.requestWithSubscription(99, agentId, "x", CALLBACK_GAS);
    }

    function test_ARequestItCannotHoldIsRefused() public {
        vm.startPrank(SUB_OWNER);
        uint64 poor = router.createSubscription();
        router.addConsumer(poor, address(consumer));
        vm.stopPrank();
        uint256 cost = router.estimateCost(agentId, CALLBACK_GAS, 0);
        router.fundSubscription{value: cost - 1}(poor);
        vm.prank(address(consumer));
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.InsufficientSubscriptionBalance.selector, poor, cost - 1, cost)
        );
        router.requestWithSubscription(poor, agentId, "x", CALLBACK_GAS);
    }

    function test_TheOwnerWithdrawsOnlyWhatNoRequestHolds() public {
        (, RequestCommitment memory c) = _requestCharged(1 gwei);
        uint256 free = 1 ether - c.fee;
        vm.prank(SUB_OWNER);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.AmountNotAvailable.selector, subscriptionId, free, free + 1)
        );
        router.withdrawFromSubscription(subscriptionId, payable(address(0xCAFE)), free + 1);
        vm.prank(SUB_OWNER);
        router.withdrawFromSubscription(subscriptionId, payable(address(0xCAFE)), free);
        assertEq(address(0xCAFE).balance, free);
        assertEq(_info().balance, c.fee, "what the request holds stays");
    }

    function test_CancellingWaitsForOpenRequestsAndPaysEverything() public {
        (, RequestCommitment memory c) = _requestCharged(1 gwei);
        vm.prank(SUB_OWNER);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.SubscriptionHasOpenRequests.selector, subscriptionId, c.fee)
        );
        router.cancelSubscription(subscriptionId, payable(address(0xCAFE)));

        // Unanswered past its deadline, the request is cancelled and its hold released.
        vm.warp(c.deadline + 1);
        router.cancel(c);
        assertEq(_info().held, 0);
        vm.prank(SUB_OWNER);
        router.cancelSubscription(subscriptionId, payable(address(0xCAFE)));
        assertEq(address(0xCAFE).balance, 1 ether, "every wei: an unanswered request costs nothing");
        vm.expectRevert(abi.encodeWithSelector(IAgentSubscriptions.SubscriptionNotFound.selector, subscriptionId));
        router.getSubscription(subscriptionId);
    }

    function test_OnlyTheOwnerManagesIt() public {
        vm.startPrank(address(0xBAD));
        bytes memory notOwner =
            abi.encodeWithSelector(IAgentSubscriptions.NotSubscriptionOwner.selector, subscriptionId, address(0xBAD));
        vm.expectRevert(notOwner);
        router.addConsumer(subscriptionId, address(0xBAD));
        vm.expectRevert(notOwner);
        router.removeConsumer(subscriptionId, address(consumer));
        vm.expectRevert(notOwner);
        router.withdrawFromSubscription(subscriptionId, payable(address(0xBAD)), 1);
        vm.expectRevert(notOwner);
        router.cancelSubscription(subscriptionId, payable(address(0xBAD)));
        vm.expectRevert(notOwner);
        router.proposeSubscriptionOwnerTransfer(subscriptionId, address(0xBAD));
        vm.stopPrank();
    }

    function test_OwnershipMovesInTwoSteps() public {
        vm.prank(SUB_OWNER);
        router.proposeSubscriptionOwnerTransfer(subscriptionId, address(0xB0B));
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.NotProposedOwner.selector, subscriptionId, address(this))
        );
        router.acceptSubscriptionOwnerTransfer(subscriptionId);
        vm.prank(address(0xB0B));
        router.acceptSubscriptionOwnerTransfer(subscriptionId);
        assertEq(_info().owner, address(0xB0B));
        assertEq(_info().proposedOwner, address(0));
    }

    function test_ARemovedConsumersOpenRequestsStillSettle() public {
        (, RequestCommitment memory c) = _requestCharged(1 gwei);
        vm.prank(SUB_OWNER);
        router.removeConsumer(subscriptionId, address(consumer));
        assertFalse(router.isSubscriptionConsumer(subscriptionId, address(consumer)));
        vm.txGasPrice(1 gwei);
        assertEq(_fulfill(_one(_ok(c, "pong"))), 1);
        assertEq(_info().held, 0);
    }

    /// @notice Whatever mix of requests, deliveries and cancellations, at whatever gas prices:
    ///         the holds equal the open requests' fees, and never exceed the balance.
    function testFuzz_HoldsNeverExceedTheBalance(uint8 requests, uint256 seed) public {
        requests = uint8(bound(requests, 1, 12));
        RequestCommitment[] memory open = new RequestCommitment[](requests);
        uint256 held;
        for (uint256 i; i < requests; ++i) {
            (, open[i]) = _requestCharged(bound(uint256(keccak256(abi.encode(seed, i))), 0, 100 gwei));
            held += open[i].fee;
            assertEq(_info().held, held);
            assertLe(_info().held, _info().balance);
        }
        vm.warp(block.timestamp + 16 minutes);
        for (uint256 i; i < requests; ++i) {
            router.cancel(open[i]);
            held -= open[i].fee;
            assertEq(_info().held, held);
        }
        assertEq(_info().balance, 1 ether, "cancelled requests cost nothing");
    }
}
