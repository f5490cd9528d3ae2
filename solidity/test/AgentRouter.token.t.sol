// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {AgentRouter} from "../src/AgentRouter.sol";
import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {IAgentSubscriptions} from "../src/interfaces/IAgentSubscriptions.sol";
import {
    AgentResult,
    BatchSignature,
    Currency,
    RequestCommitment,
    SignedAgentResult
} from "../src/libraries/AgentTypes.sol";
import {TokenRouterSetup} from "./utils/TokenRouterSetup.sol";

/// @notice Fees in the router's token: a request pays the agent's price, the operator's fee and
///         its gas, each set in wei, in tokens at the owner's rate; what it does not cost comes
///         back in tokens; subscriptions in the token are funded by transfer or permit.
contract AgentRouter_Token is TokenRouterSetup {
    function setUp() public override {
        super.setUp();
        _mint(subscriber, 1_000 ether);
    }

    /// @dev A request from the EchoConsumer paying the most it can cost in wei.
    function _requestInWei(bytes memory input) internal returns (RequestCommitment memory) {
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, tx.gasprice);
        vm.deal(address(consumer), value);
        vm.prank(address(consumer));
        uint256 requestId = router.request{value: value}(agentId, input, CALLBACK_GAS);
        return
            _commitmentOf(requestId, agentId, keccak256(AGENT_CODE), address(consumer), input, CALLBACK_GAS, value, 0);
    }

    function test_EstimateTokenCost_IsTheWeiCostAtTheRate() public view {
        uint256 inWei = router.estimateCost(agentId, CALLBACK_GAS, 3 gwei);
        assertEq(router.estimateTokenCost(agentId, CALLBACK_GAS, 3 gwei), _inTokens(inWei));
    }

    function test_RequestWithToken_TakesExactlyTheMostItCanCost() public {
        vm.txGasPrice(2 gwei);
        uint256 cost = router.estimateTokenCost(agentId, CALLBACK_GAS, 2 gwei);
        (, RequestCommitment memory commitment) = _requestWithToken(address(consumer), "x");
        assertEq(commitment.fee, cost);
        assertEq(feeToken.balanceOf(address(router)), cost);
        assertEq(feeToken.balanceOf(address(consumer)), 0);
        assertEq(commitment.price, _inTokens(PRICE), "the price, in tokens at the rate");
        assertEq(commitment.operatorFee, _inTokens(OPERATOR_FEE));
    }

    function test_RequestWithToken_RevertWhen_NotApproved() public {
        _mint(address(consumer), 1_000 ether);
        uint256 cost = router.estimateTokenCost(agentId, CALLBACK_GAS, tx.gasprice);
        vm.prank(address(consumer));
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(router), 0, cost)
        );
        router.requestWithToken(agentId, "x", CALLBACK_GAS);
    }

    function test_Fulfil_PaysEachPartInTokensAndTheRestBack() public {
        vm.txGasPrice(10 gwei);
        (, RequestCommitment memory commitment) = _requestWithToken(address(consumer), "x");
        (uint96 gasReimbursed, uint96 refunded) = _fulfilFirstAt(_one(_ok(commitment, "pong")), 5 gwei);

        assertEq(router.tokenBalanceOf(AGENT_OWNER), _inTokens(PRICE), "the agent's owner earns its price");
        assertEq(router.tokenBalanceOf(TRANSMITTER), _inTokens(OPERATOR_FEE) + gasReimbursed, "fee and gas");
        assertEq(router.tokenBalanceOf(address(consumer)), refunded, "the consumer gets the rest back");
        assertEq(commitment.price + commitment.operatorFee + uint256(gasReimbursed) + refunded, commitment.fee);
        // The gas part is the callback's gas and the overhead at 5 gwei, in tokens at the rate.
        assertGt(gasReimbursed, _inTokens(uint256(OVERHEAD) * 5 gwei));
        assertLt(gasReimbursed, _inTokens((uint256(CALLBACK_GAS) + OVERHEAD) * 5 gwei));
        assertEq(router.balanceOf(AGENT_OWNER) + router.balanceOf(TRANSMITTER), 0, "no wei moved");
    }

    function test_Fulfil_ReimbursesGasOnlyUpToTheEscrow() public {
        vm.txGasPrice(1 gwei);
        (, RequestCommitment memory commitment) = _requestWithToken(address(consumer), "x");
        (uint96 gasReimbursed, uint96 refunded) = _fulfilFirstAt(_one(_ok(commitment, "pong")), 1000 gwei);
        assertEq(gasReimbursed, commitment.fee - commitment.price - commitment.operatorFee);
        assertEq(refunded, 0);
    }

    function test_ABatchMixingCurrenciesCreditsEachInItsOwn() public {
        vm.txGasPrice(1 gwei);
        RequestCommitment memory inWei = _requestInWei("wei");
        (, RequestCommitment memory inTokens) = _requestWithToken(address(consumer), "tokens");
        RequestCommitment memory inWeiAgain = _requestInWei("wei again");
        SignedAgentResult[] memory batch = new SignedAgentResult[](3);
        (batch[0], batch[1], batch[2]) = (_ok(inWei, "a"), _ok(inTokens, "b"), _ok(inWeiAgain, "c"));
        uint256 routerWei = address(router).balance;
        uint256 routerTokens = feeToken.balanceOf(address(router));
        _fulfilFirstAt(batch, 0);

        assertEq(router.balanceOf(AGENT_OWNER), 2 * uint256(PRICE), "two prices in wei");
        assertEq(router.tokenBalanceOf(AGENT_OWNER), _inTokens(PRICE), "one in tokens");
        assertEq(router.balanceOf(TRANSMITTER), 2 * uint256(OPERATOR_FEE));
        assertEq(router.tokenBalanceOf(TRANSMITTER), _inTokens(OPERATOR_FEE));
        assertEq(router.tokenBalanceOf(address(consumer)), inTokens.fee - inTokens.price - inTokens.operatorFee);
        // Nothing left the router, and each currency's balances add up to what it holds of it.
        assertEq(address(router).balance, routerWei);
        assertEq(feeToken.balanceOf(address(router)), routerTokens);
        assertEq(
            router.balanceOf(AGENT_OWNER) + router.balanceOf(TRANSMITTER) + router.balanceOf(address(consumer)),
            routerWei
        );
        assertEq(
            router.tokenBalanceOf(AGENT_OWNER) + router.tokenBalanceOf(TRANSMITTER)
                + router.tokenBalanceOf(address(consumer)),
            routerTokens
        );
    }

    function test_Cancel_ReturnsTheWholeFeeInTokens() public {
        (uint256 requestId, RequestCommitment memory commitment) = _requestWithToken(address(consumer), "x");
        vm.warp(commitment.deadline + 1);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestCancelled(requestId, address(consumer), commitment.fee, 0);
        router.cancel(commitment);
        assertEq(router.tokenBalanceOf(address(consumer)), commitment.fee);
        assertEq(router.balanceOf(address(consumer)), 0);
    }

    function test_WithdrawToken_SendsTheWholeTokenBalance() public {
        (, RequestCommitment memory commitment) = _requestWithToken(address(consumer), "x");
        _fulfilFirstAt(_one(_ok(commitment, "pong")), 0);
        uint256 earned = router.tokenBalanceOf(AGENT_OWNER);
        vm.expectEmit(address(router));
        emit IAgentRouter.TokenBalanceWithdrawn(AGENT_OWNER, address(0xBEEF), earned);
        vm.prank(AGENT_OWNER);
        router.withdrawToken(address(0xBEEF));
        assertEq(feeToken.balanceOf(address(0xBEEF)), earned);
        assertEq(router.tokenBalanceOf(AGENT_OWNER), 0);
        vm.prank(AGENT_OWNER);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.NothingToWithdraw.selector, AGENT_OWNER));
        router.withdrawToken(address(0xBEEF));
    }

    function test_ARequestFromATokenSubscriptionHoldsAndPaysTokens() public {
        uint64 subscriptionId = _tokenSubscription(subscriber, address(consumer), 10 ether);
        vm.txGasPrice(1 gwei);
        uint256 held = router.estimateTokenCost(agentId, CALLBACK_GAS, 1 gwei);
        vm.prank(address(consumer));
        uint256 requestId = router.requestWithSubscription(subscriptionId, agentId, "x", CALLBACK_GAS);
        assertEq(router.getSubscription(subscriptionId).held, held);
        RequestCommitment memory commitment = _commitmentOf(
            requestId,
            agentId,
            keccak256(AGENT_CODE),
            address(consumer),
            "x",
            CALLBACK_GAS,
            held,
            subscriptionId,
            Currency.TOKEN
        );
        (uint96 gasReimbursed,) = _fulfilFirstAt(_one(_ok(commitment, "pong")), 1 gwei);

        IAgentSubscriptions.SubscriptionInfo memory info = router.getSubscription(subscriptionId);
        assertEq(info.held, 0);
        assertEq(info.balance, 10 ether - commitment.price - commitment.operatorFee - gasReimbursed);
        assertEq(router.tokenBalanceOf(AGENT_OWNER), commitment.price);
        assertEq(uint8(info.currency), uint8(Currency.TOKEN));
    }

    function test_AWeiSubscriptionTakesNoTokensAndATokenOneNoWei() public {
        uint64 tokenSubscription = _tokenSubscription(subscriber, address(consumer), 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.WrongCurrency.selector, tokenSubscription, Currency.TOKEN)
        );
        router.fundSubscription{value: 1 ether}(tokenSubscription);

        vm.prank(subscriber);
        uint64 weiSubscription = router.createSubscription();
        vm.prank(subscriber);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.WrongCurrency.selector, weiSubscription, Currency.ETH)
        );
        router.fundSubscriptionWithToken(weiSubscription, 1 ether);
    }

    function test_FundSubscriptionWithPermit_NeedsNoApproveFirst() public {
        vm.prank(subscriber);
        uint64 subscriptionId = router.createTokenSubscription();
        uint256 deadline = block.timestamp + 600;
        (uint8 v, bytes32 r, bytes32 s) = _permit(SUBSCRIBER_KEY, 5 ether, deadline);
        vm.prank(subscriber);
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
        assertEq(router.getSubscription(subscriptionId).balance, 5 ether);
        assertEq(feeToken.balanceOf(subscriber), 995 ether);
        assertEq(feeToken.allowance(subscriber, address(router)), 0);
    }

    function test_FundSubscriptionWithPermit_AFrontRunPermitStillFunds() public {
        vm.prank(subscriber);
        uint64 subscriptionId = router.createTokenSubscription();
        uint256 deadline = block.timestamp + 600;
        (uint8 v, bytes32 r, bytes32 s) = _permit(SUBSCRIBER_KEY, 5 ether, deadline);
        // Someone saw the permit in the mempool and used it first: it only approved the router.
        feeToken.permit(subscriber, address(router), 5 ether, deadline, v, r, s);
        vm.prank(subscriber);
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
        assertEq(router.getSubscription(subscriptionId).balance, 5 ether);
    }

    function test_FundSubscriptionWithPermit_AnotherHoldersPermitMovesNothing() public {
        vm.prank(subscriber);
        uint64 subscriptionId = router.createTokenSubscription();
        uint256 deadline = block.timestamp + 600;
        (uint8 v, bytes32 r, bytes32 s) = _permit(SUBSCRIBER_KEY, 5 ether, deadline);
        // The permit is the subscriber's: sent by anyone else it approves nobody for them.
        vm.prank(address(0xBAD));
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(router), 0, 5 ether)
        );
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
    }

    function test_CancellingATokenSubscriptionPaysTokens() public {
        uint64 subscriptionId = _tokenSubscription(subscriber, address(consumer), 3 ether);
        vm.prank(subscriber);
        router.cancelSubscription(subscriptionId, payable(address(0xCAFE)));
        assertEq(feeToken.balanceOf(address(0xCAFE)), 3 ether);
        assertEq(address(0xCAFE).balance, 0);
    }

    function test_SetTokenRate_OwnerOnlyAndNotZero() public {
        vm.expectRevert();
        router.setTokenRate(1);
        vm.prank(OWNER);
        vm.expectRevert(IAgentRouter.InvalidConfig.selector);
        router.setTokenRate(0);
        vm.prank(OWNER);
        vm.expectEmit(address(router));
        emit IAgentRouter.TokenRateSet(7);
        router.setTokenRate(7);
        assertEq(router.tokensPerEth(), 7);
    }

    function test_ARouterWithoutATokenRefusesTokenPayments() public {
        AgentRouter plain = new AgentRouter(OWNER, tee, IAgentStaking(address(0)), IERC20(address(0)));
        vm.prank(AGENT_OWNER);
        uint256 id = plain.registerAgent(AGENT_CODE, PRICE, false);
        vm.expectRevert(IAgentSubscriptions.NoFeeToken.selector);
        plain.requestWithToken(id, "x", CALLBACK_GAS);
        vm.expectRevert(IAgentSubscriptions.NoFeeToken.selector);
        plain.createTokenSubscription();
        vm.expectRevert(IAgentSubscriptions.NoFeeToken.selector);
        plain.estimateTokenCost(id, CALLBACK_GAS, 1 gwei);
        vm.prank(OWNER);
        vm.expectRevert(IAgentSubscriptions.NoFeeToken.selector);
        plain.setTokenRate(1);
    }

    /// @notice Whatever the gas prices and the rate: the parts add up to the fee, in tokens, and
    ///         the transmitter's gas never exceeds the escrow.
    function testFuzz_ATokenChargeNeverExceedsTheFee(uint64 requestGasPrice, uint64 fulfilGasPrice, uint96 rate)
        public
    {
        vm.prank(OWNER);
        router.setTokenRate(bound(rate, 1, 1e30));
        vm.txGasPrice(bound(requestGasPrice, 0, 500 gwei));
        uint256 cost = router.estimateTokenCost(agentId, CALLBACK_GAS, tx.gasprice);
        _mint(address(consumer), cost);
        vm.startPrank(address(consumer));
        feeToken.approve(address(router), cost);
        uint256 requestId = router.requestWithToken(agentId, "x", CALLBACK_GAS);
        vm.stopPrank();
        RequestCommitment memory commitment = _commitmentOf(
            requestId, agentId, keccak256(AGENT_CODE), address(consumer), "x", CALLBACK_GAS, cost, 0, Currency.TOKEN
        );
        (uint96 gasReimbursed, uint96 refunded) =
            _fulfilFirstAt(_one(_ok(commitment, "pong")), bound(fulfilGasPrice, 0, 5000 gwei));
        assertEq(uint256(commitment.price) + commitment.operatorFee + gasReimbursed + refunded, cost);
        assertLe(gasReimbursed, cost - commitment.price - commitment.operatorFee);
        assertEq(feeToken.balanceOf(address(router)), cost, "a delivery moves no tokens, only balances");
    }
}
