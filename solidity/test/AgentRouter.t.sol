// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentRouter} from "../src/AgentRouter.sol";
import {IAgentRegistry} from "../src/interfaces/IAgentRegistry.sol";
import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {
    AgentResult,
    AgentStatus,
    Currency,
    NotProcessedReason,
    RequestCommitment,
    SignedAgentResult
} from "../src/libraries/AgentTypes.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {
    GasBurningConsumer,
    GasMeteringConsumer,
    ReentrantConsumer,
    ReturnBombConsumer,
    RevertingConsumer
} from "./mocks/HostileConsumers.sol";
import {OutputHashConsumer} from "./mocks/BenchConsumers.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

contract AgentRouter_Request is RouterSetup {
    function test_Request_IdIsTheHashOfItsFieldsAndTheEventCarriesThemAll() public {
        bytes memory input = "hello";
        uint48 deadline = uint48(block.timestamp + 15 minutes);
        RequestCommitment memory expected = RequestCommitment({
            agentId: agentId,
            codeHash: keccak256(AGENT_CODE),
            inputHash: keccak256(input),
            consumer: address(consumer),
            fee: PRICE,
            callbackGasLimit: CALLBACK_GAS,
            createdAt: uint48(block.number),
            deadline: deadline,
            nonce: 0,
            price: PRICE,
            operatorFee: 0,
            subscriptionId: 0,
            assignee: address(0),
            assignedUntil: 0,
            currency: Currency.ETH
        });
        uint256 expectedId = uint256(keccak256(abi.encode(expected)));
        vm.expectEmit(address(router));
        emit IAgentRouter.AgentRequested({
            requestId: expectedId,
            agentId: agentId,
            consumer: address(consumer),
            codeHash: keccak256(AGENT_CODE),
            input: input,
            callbackGasLimit: CALLBACK_GAS,
            deadline: deadline,
            nonce: 0,
            assignee: address(0),
            assignedUntil: 0,
            charge: IAgentRouter.Charge({
                fee: PRICE, price: PRICE, operatorFee: 0, subscriptionId: 0, currency: Currency.ETH
            })
        });
        (uint256 requestId,) = _request(input);

        assertEq(requestId, expectedId);
        assertTrue(router.isOpen(requestId));
        expected.inputHash = keccak256("another input");
        assertFalse(router.isOpen(router.requestIdOf(expected)), "the same request with another input is not open");
        assertEq(address(router).balance, PRICE);
    }

    function test_Request_IdsAreUniqueWithinABlock() public {
        // Each _request is its own call, so the transaction counter restarts: the probe is what
        // keeps these apart.
        (uint256 first,) = _request("a");
        (uint256 second,) = _request("a");
        (uint256 third,) = _request("a");
        assertTrue(first != second && second != third && first != third);
        assertTrue(router.isOpen(third));
    }

    function test_Request_IdsDifferAcrossBlocksAndConsumers() public {
        (uint256 first,) = _request("a");
        vm.roll(block.number + 1);
        (uint256 second,) = _request("a");
        (uint256 other,) = _requestFrom(address(0xC0FFEE), "a", CALLBACK_GAS);
        assertTrue(first != second && second != other);
    }

    function test_Request_EscrowsOverpayment() public {
        vm.deal(address(consumer), 1 ether);
        vm.prank(address(consumer));
        router.request{value: 1 ether}(agentId, "x", CALLBACK_GAS);
        assertEq(address(router).balance, 1 ether);
    }

    function test_Request_RevertWhen_AgentUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentNotFound.selector, 99));
        router.request{value: PRICE}(99, "x", CALLBACK_GAS);
    }

    function test_Request_RevertWhen_AgentPaused() public {
        vm.prank(AGENT_OWNER);
        router.pauseAgent(agentId);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.AgentIsPaused.selector, agentId));
        router.request{value: PRICE}(agentId, "x", CALLBACK_GAS);
    }

    function test_Request_RevertWhen_ConsumerNotAllowed() public {
        vm.prank(AGENT_OWNER);
        router.setRestricted(agentId, true);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.ConsumerNotAllowed.selector, agentId, address(this)));
        router.request{value: PRICE}(agentId, "x", CALLBACK_GAS);
    }

    function test_Request_Succeeds_WhenRestrictedAndAllowListed() public {
        vm.startPrank(AGENT_OWNER);
        router.setRestricted(agentId, true);
        router.setConsumerAllowed(agentId, address(this), true);
        vm.stopPrank();
        uint256 requestId = router.request{value: PRICE}(agentId, "x", CALLBACK_GAS);
        assertTrue(router.isOpen(requestId));
    }

    function test_Request_RevertWhen_FeeBelowPrice() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InsufficientFee.selector, PRICE - 1, PRICE));
        router.request{value: PRICE - 1}(agentId, "x", CALLBACK_GAS);
    }

    function test_Request_RevertWhen_FeeAbove96Bits() public {
        uint256 fee = uint256(type(uint96).max) + 1;
        vm.deal(address(this), fee);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.FeeTooLarge.selector, fee));
        router.request{value: fee}(agentId, "x", CALLBACK_GAS);
    }

    function test_Request_RevertWhen_CallbackGasAboveMax() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.CallbackGasTooHigh.selector, 2_500_001, 2_500_000));
        router.request{value: PRICE}(agentId, "x", 2_500_001);
    }

    function test_Request_RevertWhen_InputAboveMax() public {
        bytes memory input = new bytes(32 * 1024 + 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InputTooLarge.selector, input.length, 32 * 1024));
        router.request{value: PRICE}(agentId, input, CALLBACK_GAS);
    }

    function testFuzz_Request_AcceptsEveryInputAndGasLimitWithinBounds(bytes calldata input, uint32 gasLimit) public {
        vm.assume(input.length <= 32 * 1024);
        gasLimit = uint32(bound(gasLimit, 0, 2_500_000));
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(consumer), input, gasLimit);
        assertTrue(router.isOpen(requestId));
        assertEq(commitment.inputHash, keccak256(input));
    }
}

contract AgentRouter_Fulfill is RouterSetup {
    function test_Fulfill_DeliversOutputToConsumerAndPaysTheAgentsOwner() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestFulfilled(requestId, AgentStatus.OK, true, 0, 0);
        uint256 fulfilled = _fulfill(_one(_ok(commitment, "pong")));

        assertEq(fulfilled, 1);
        assertEq(consumer.lastRequestId(), requestId);
        assertEq(uint8(consumer.lastStatus()), uint8(AgentStatus.OK));
        assertEq(consumer.lastOutput(), "pong");
        assertFalse(router.isOpen(requestId));
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
    }

    function test_Fulfill_DeliversErrorStatus() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        _fulfill(_one(_signed(CLUSTER_KEY_1, 1, commitment, AgentStatus.TIMEOUT, "wall time exceeded")));
        assertEq(uint8(consumer.lastStatus()), uint8(AgentStatus.TIMEOUT));
        assertEq(consumer.lastOutput(), "wall time exceeded");
    }

    function test_Fulfill_ReportsAConsumerWithoutCode() public {
        address eoa = address(0xE0A);
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(eoa, "ping", CALLBACK_GAS);
        vm.expectEmit(address(router));
        emit IAgentRouter.ConsumerHasNoCode(requestId, eoa);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestFulfilled(requestId, AgentStatus.OK, false, 0, 0);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        assertFalse(router.isOpen(requestId));
        assertEq(router.balanceOf(AGENT_OWNER), PRICE, "the agent ran and its owner is paid");
    }

    function test_Fulfill_RevertWhen_BatchEmpty() public {
        vm.expectRevert(IAgentRouter.EmptyBatch.selector);
        router.fulfill(new SignedAgentResult[](0));
    }

    function test_Fulfill_SkipsUnknownRequest() public {
        (, RequestCommitment memory commitment) = _request("ping");
        commitment.nonce += 5; // a request that was never made
        _expectNotProcessed(router.requestIdOf(commitment), NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 0);
    }

    function test_Fulfill_SkipsDuplicate() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        SignedAgentResult[] memory batch = _one(_ok(commitment, "pong"));
        _fulfill(batch);
        _expectNotProcessed(requestId, NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(batch), 0);
        assertEq(consumer.resultCount(), 1);
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
    }

    function test_Fulfill_SkipsTamperedCommitmentFields() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        commitment.callbackGasLimit += 1; // a transmitter asking for more callback gas than was paid for
        _expectNotProcessed(router.requestIdOf(commitment), NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 0);
        assertTrue(router.isOpen(requestId));
    }

    function test_Fulfill_SkipsAResultComputedOnAnotherInput() public {
        // A bridge that hands a worker its own input gets a result signed for that input's hash:
        // it names a request that was never made, and the real one stays open.
        (uint256 requestId, RequestCommitment memory commitment) = _request("honest");
        commitment.inputHash = keccak256("TAMPERED BY BRIDGE");
        _expectNotProcessed(router.requestIdOf(commitment), NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(_one(_ok(commitment, "echo:TAMPERED BY BRIDGE"))), 0);
        assertEq(consumer.resultCount(), 0);
        assertTrue(router.isOpen(requestId));
    }

    function test_Fulfill_SkipsForgedSignature() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        SignedAgentResult memory forged = _signed(0xBAD, 1, commitment, AgentStatus.OK, "pong");
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(forged)), 0);
        assertTrue(router.isOpen(requestId), "request stays open");
    }

    function test_Fulfill_SkipsTamperedOutputAndStatus() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        SignedAgentResult memory result = _ok(commitment, "pong");
        result.result.output = "pwned";
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        _fulfill(_one(result));

        result = _ok(commitment, "pong");
        result.result.status = AgentStatus.AGENT_ERROR;
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Fulfill_SkipsMalformedSignature() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        SignedAgentResult memory result = _ok(commitment, "pong");
        result.r = bytes32(0);
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Fulfill_SkipsUnknownEpoch() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        SignedAgentResult memory result = _signed(CLUSTER_KEY_1, 2, commitment, AgentStatus.OK, "pong");
        _expectNotProcessed(requestId, NotProcessedReason.STALE_EPOCH);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Fulfill_SkipsExpiredRequest() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        vm.warp(commitment.deadline + 1);
        _expectNotProcessed(requestId, NotProcessedReason.REQUEST_EXPIRED);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 0);
    }

    function test_Fulfill_Succeeds_AtDeadline() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        vm.warp(commitment.deadline);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
    }

    function test_Fulfill_SkipsOutputAboveCap() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("ping");
        _expectNotProcessed(requestId, NotProcessedReason.OUTPUT_TOO_LARGE);
        assertEq(_fulfill(_one(_ok(commitment, new bytes(4097)))), 0);
        assertEq(_fulfill(_one(_ok(commitment, new bytes(4096)))), 1);
    }

    function test_Fulfill_SkipsWhenGasCannotCoverCallback() public {
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(consumer), "x", 2_000_000);
        SignedAgentResult[] memory batch = _one(_ok(commitment, "pong"));
        _expectNotProcessed(requestId, NotProcessedReason.INSUFFICIENT_GAS);
        vm.prank(TRANSMITTER);
        assertEq(router.fulfill{gas: 1_000_000}(batch), 0);
        assertTrue(router.isOpen(requestId), "request stays open for a retry");
        assertEq(_fulfill(batch), 1);
    }

    function test_Fulfill_GivesCallbackExactlyItsGasLimit() public {
        GasMeteringConsumer meter = new GasMeteringConsumer();
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(meter), "x", 100_000);
        _fulfill(_one(_ok(commitment, "")));
        // gasleft() at the callback's first line: the limit less the dispatch and calldata decoding.
        assertLe(meter.gasSeen(), 100_000);
        assertGe(meter.gasSeen(), 100_000 - 1_000);
    }

    function test_Fulfill_PaysFee_WhenCallbackReverts() public {
        RevertingConsumer hostile = new RevertingConsumer();
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", CALLBACK_GAS);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestFulfilled(requestId, AgentStatus.OK, false, 0, 0);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
        assertFalse(router.isOpen(requestId));
    }

    function test_Fulfill_PaysFee_WhenCallbackBurnsAllGas() public {
        GasBurningConsumer hostile = new GasBurningConsumer();
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", 1_000_000);
        (uint256 other, RequestCommitment memory otherCommitment) = _request("y");
        SignedAgentResult[] memory batch = new SignedAgentResult[](2);
        batch[0] = _ok(commitment, "pong");
        batch[1] = _ok(otherCommitment, "pong");
        assertEq(_fulfill(batch), 2);
        assertEq(router.balanceOf(AGENT_OWNER), 2 * PRICE);
        assertEq(consumer.lastRequestId(), other, "the batch goes on after the gas burner");
    }

    function test_Fulfill_IgnoresReturnBomb() public {
        ReturnBombConsumer hostile = new ReturnBombConsumer();
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", 2_000_000);
        SignedAgentResult[] memory batch = _one(_ok(commitment, "pong"));
        vm.prank(TRANSMITTER);
        uint256 gasBefore = gasleft();
        router.fulfill{gas: 5_000_000}(batch);
        assertLt(gasBefore - gasleft(), 2_300_000, "the router copied no return data");
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
    }

    function test_Fulfill_ReentrantFulfillIsBlocked() public {
        ReentrantConsumer hostile = new ReentrantConsumer(router);
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", 500_000);
        (uint256 other, RequestCommitment memory otherCommitment) = _request("y");
        hostile.arm(ReentrantConsumer.Target.FULFILL, _ok(otherCommitment, "stolen"), agentId);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        assertFalse(hostile.reentrySucceeded());
        assertTrue(router.isOpen(other), "the other request is untouched");
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
        assertEq(router.balanceOf(address(hostile)), 0);
    }

    function test_Fulfill_ReentrantCancelIsBlocked() public {
        ReentrantConsumer hostile = new ReentrantConsumer(router);
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", 500_000);
        (uint256 other, RequestCommitment memory otherCommitment) = _requestFrom(address(hostile), "y", 500_000);
        vm.warp(block.timestamp + 10 minutes);
        hostile.arm(ReentrantConsumer.Target.CANCEL, _ok(otherCommitment, ""), agentId);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        assertFalse(hostile.reentrySucceeded());
        assertTrue(router.isOpen(other));
    }

    function test_Fulfill_ReentrantRequestOpensANewRequest() public {
        ReentrantConsumer hostile = new ReentrantConsumer(router);
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(hostile), "x", 500_000);
        vm.deal(address(hostile), PRICE);
        hostile.arm(ReentrantConsumer.Target.REQUEST, _ok(commitment, ""), agentId);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        assertTrue(hostile.reentrySucceeded(), "chaining a request from a callback is a feature");
        assertTrue(router.isOpen(hostile.chainedRequestId()));
        assertEq(address(router).balance, router.balanceOf(AGENT_OWNER) + PRICE);
    }

    function test_Fulfill_MixedBatchDeliversExactlyTheValidResults() public {
        (uint256 valid1, RequestCommitment memory c1) = _request("1");
        (uint256 stale, RequestCommitment memory c2) = _request("2");
        (uint256 forged, RequestCommitment memory c3) = _request("3");
        (uint256 valid2, RequestCommitment memory c4) = _request("4");
        (uint256 done, RequestCommitment memory c5) = _request("5");
        _fulfill(_one(_ok(c5, "first")));

        SignedAgentResult[] memory batch = new SignedAgentResult[](5);
        batch[0] = _ok(c1, "one");
        batch[1] = _signed(CLUSTER_KEY_1, 7, c2, AgentStatus.OK, "two");
        batch[2] = _signed(0xBAD, 1, c3, AgentStatus.OK, "three");
        batch[3] = _ok(c5, "again");
        batch[4] = _ok(c4, "four");

        _expectNotProcessed(stale, NotProcessedReason.STALE_EPOCH);
        _expectNotProcessed(forged, NotProcessedReason.INVALID_SIGNATURE);
        _expectNotProcessed(done, NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(batch), 2);
        assertFalse(router.isOpen(valid1));
        assertFalse(router.isOpen(valid2));
        assertTrue(router.isOpen(stale));
        assertTrue(router.isOpen(forged));
        assertEq(consumer.resultCount(), 3);
        assertEq(router.balanceOf(AGENT_OWNER), 3 * PRICE);
    }

    function testFuzz_Fulfill_BatchComposition(uint256 seed, uint8 size) public {
        size = uint8(bound(size, 1, 24));
        SignedAgentResult[] memory batch = new SignedAgentResult[](size);
        bool[] memory expectValid = new bool[](size);
        uint256 validCount;
        for (uint256 i; i < size; ++i) {
            (uint256 requestId, RequestCommitment memory commitment) = _request(abi.encode(i));
            uint256 kind = uint256(keccak256(abi.encode(seed, i))) % 4;
            if (kind == 0) batch[i] = _signed(0xBAD, 1, commitment, AgentStatus.OK, "forged");
            else if (kind == 1) batch[i] = _signed(CLUSTER_KEY_1, 9, commitment, AgentStatus.OK, "stale");
            else batch[i] = _ok(commitment, abi.encode(i));
            expectValid[i] = kind >= 2;
            if (kind >= 2) ++validCount;
        }
        assertEq(_fulfill(batch), validCount);
        for (uint256 i; i < size; ++i) {
            assertEq(!router.isOpen(router.requestIdOf(batch[i].result.commitment)), expectValid[i]);
        }
        assertEq(router.balanceOf(AGENT_OWNER), validCount * PRICE);
    }

    function testFuzz_Fulfill_DeliversAnyOutputUpToTheCap(bytes calldata output, uint8 status) public {
        vm.assume(output.length <= 4096);
        AgentStatus agentStatus = AgentStatus(bound(status, 0, 4));
        OutputHashConsumer receiver = new OutputHashConsumer();
        (uint256 requestId, RequestCommitment memory commitment) = _requestFrom(address(receiver), "x", CALLBACK_GAS);
        _fulfill(_one(_signed(CLUSTER_KEY_1, 1, commitment, agentStatus, output)));
        assertEq(receiver.outputHash(), keccak256(output));
        assertEq(uint8(receiver.status()), uint8(agentStatus));
    }

    function _expectNotProcessed(uint256 requestId, NotProcessedReason reason) internal {
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(requestId, reason);
    }
}

contract AgentRouter_Cancel is RouterSetup {
    function test_Cancel_AfterDeadline_CreditsFeeToConsumer() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.warp(commitment.deadline + 1);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestCancelled(requestId, address(consumer), PRICE, 0);
        router.cancel(commitment);
        assertFalse(router.isOpen(requestId));
        assertEq(router.balanceOf(address(consumer)), PRICE);
    }

    function test_Cancel_RevertWhen_BeforeDeadline() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.warp(commitment.deadline);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.RequestNotExpired.selector, requestId, commitment.deadline));
        router.cancel(commitment);
    }

    function test_Cancel_RevertWhen_Unknown() public {
        (, RequestCommitment memory commitment) = _request("x");
        commitment.nonce += 1;
        vm.warp(commitment.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.UnknownRequest.selector, router.requestIdOf(commitment)));
        router.cancel(commitment);
    }

    function test_Cancel_RevertWhen_AlreadyFulfilled() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _fulfill(_one(_ok(commitment, "done")));
        vm.warp(commitment.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.UnknownRequest.selector, requestId));
        router.cancel(commitment);
    }

    function test_Cancel_RevertWhen_FieldsDoNotMatch() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.warp(commitment.deadline + 1);
        commitment.fee = 100 ether; // asking for more refund than was paid
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.UnknownRequest.selector, router.requestIdOf(commitment)));
        router.cancel(commitment);
        assertTrue(router.isOpen(requestId));
    }

    function test_Cancel_ThenFulfillIsSkipped() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.warp(commitment.deadline + 1);
        router.cancel(commitment);
        assertEq(_fulfill(_one(_ok(commitment, "late"))), 0);
        assertEq(router.balanceOf(AGENT_OWNER), 0);
    }
}

contract AgentRouter_Withdraw is RouterSetup {
    function test_Withdraw_SendsWholeBalance() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _fulfill(_one(_ok(commitment, "done")));
        address payable to = payable(address(0xBEEF));
        vm.expectEmit(address(router));
        emit IAgentRouter.BalanceWithdrawn(AGENT_OWNER, to, PRICE);
        vm.prank(AGENT_OWNER);
        router.withdraw(to);
        assertEq(to.balance, PRICE);
        assertEq(router.balanceOf(AGENT_OWNER), 0);
        assertEq(address(router).balance, 0);
    }

    function test_Withdraw_RevertWhen_NothingToWithdraw() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.NothingToWithdraw.selector, address(this)));
        router.withdraw(payable(address(this)));
    }

    function test_Withdraw_RevertWhen_RecipientZero() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _fulfill(_one(_ok(commitment, "done")));
        vm.prank(AGENT_OWNER);
        vm.expectRevert(IAgentRegistry.ZeroAddress.selector);
        router.withdraw(payable(address(0)));
    }

    function test_Withdraw_RevertWhen_RecipientRejects() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _fulfill(_one(_ok(commitment, "done")));
        address payable rejecter = payable(address(new RevertingConsumer()));
        vm.prank(AGENT_OWNER);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.WithdrawalFailed.selector, rejecter, PRICE));
        router.withdraw(rejecter);
        assertEq(router.balanceOf(AGENT_OWNER), PRICE, "the balance is kept");
    }

    function test_Withdraw_ConsumerRefundAfterCancel() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.warp(commitment.deadline + 1);
        router.cancel(commitment);
        vm.prank(address(consumer));
        router.withdraw(payable(address(0xCAFE)));
        assertEq(address(0xCAFE).balance, PRICE);
    }
}

contract AgentRouter_SetConfig is RouterSetup {
    function test_SetConfig_ChangesLimits() public {
        IAgentRouter.Config memory config = IAgentRouter.Config(1_000_000, 256, 64, 60, 0, 60_000);
        vm.expectEmit(address(router));
        emit IAgentRouter.ConfigSet(config);
        vm.prank(OWNER);
        router.setConfig(config);
        assertEq(abi.encode(router.getConfig()), abi.encode(config));

        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InputTooLarge.selector, 65, 64));
        router.request{value: PRICE}(agentId, new bytes(65), 100);
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        assertEq(commitment.deadline, block.timestamp + 60);
        assertEq(_fulfill(_one(_ok(commitment, new bytes(257)))), 0);
    }

    function test_SetConfig_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        router.setConfig(IAgentRouter.Config(1, 1, 1, 1, 0, 0));
    }

    function test_SetConfig_RevertWhen_ZeroValue() public {
        vm.prank(OWNER);
        vm.expectRevert(IAgentRouter.InvalidConfig.selector);
        router.setConfig(IAgentRouter.Config(1, 0, 1, 1, 0, 0));
    }
}
