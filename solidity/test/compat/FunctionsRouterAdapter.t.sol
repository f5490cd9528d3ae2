// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {FunctionsClientExample} from "chainlink/functions/v1_0_0/example/FunctionsClientExample.sol";
import {FunctionsClient} from "chainlink/functions/v1_0_0/FunctionsClient.sol";
import {FunctionsRequest} from "chainlink/functions/v1_0_0/libraries/FunctionsRequest.sol";

import {FunctionsRouterAdapter} from "../../src/compat/FunctionsRouterAdapter.sol";
import {IAgentSubscriptions} from "../../src/interfaces/IAgentSubscriptions.sol";
import {RequestCommitment} from "../../src/libraries/AgentTypes.sol";
import {EnclaveTest} from "../../src/testing/EnclaveTest.sol";

/// @notice A client that measures the gas its callback was given.
contract GasMeasuringClient is FunctionsClient {
    using FunctionsRequest for FunctionsRequest.Request;

    uint256 public gasAtCallback;

    constructor(address router) FunctionsClient(router) {}

    function ask(uint64 subscriptionId, uint32 callbackGasLimit) external {
        FunctionsRequest.Request memory req;
        req.initializeRequestForInlineJavaScript("return Functions.encodeUint256(1);");
        _sendRequest(req.encodeCBOR(), subscriptionId, callbackGasLimit, "don");
    }

    function fulfillRequest(bytes32, bytes memory, bytes memory) internal override {
        gasAtCallback = gasleft();
    }
}

/// @notice Chainlink's own FunctionsClientExample, not a line changed, pointed at the adapter:
///         its sources run in the Functions runtime agent (through vm.ffi, as a worker runs
///         them) and the answers reach it through handleOracleFulfillment.
contract FunctionsRouterAdapter_ChainlinkExample is EnclaveTest {
    uint96 internal constant PRICE = 0.0001 ether;
    bytes32 internal constant DON_ID = "fun-enclave-local-1";

    FunctionsRouterAdapter internal adapter;
    FunctionsClientExample internal example;
    uint64 internal subscriptionId;

    function setUp() public {
        deployEnclave();
        vm.setEnv("ENCLAVE_CLI", ".venv/bin/enclave");
        uint256 runtime = registerAgent("compat/chainlink-functions.js", PRICE);
        adapter = new FunctionsRouterAdapter(address(enclaveRouter), runtime);
        example = new FunctionsClientExample(address(adapter));
        subscriptionId = adapter.createSubscriptionWithConsumer(address(example));
        adapter.fundSubscription{value: 1 ether}(subscriptionId);
    }

    function _send(string memory source, string[] memory args) internal returns (bytes32 requestId) {
        vm.recordLogs();
        example.sendRequest(source, "", args, subscriptionId, DON_ID);
        requestId = example.s_lastRequestId();
        assertEq(answerRequests(), 1, "the router delivered the runtime's answer");
    }

    function test_APureCalculationAnswersWithItsBytes() public {
        string[] memory args = new string[](2);
        args[0] = "6";
        args[1] = "7";
        _send("return Functions.encodeUint256(Number(args[0]) * Number(args[1]));", args);
        assertEq(example.s_lastResponse(), bytes32(uint256(42)));
        assertEq(example.s_lastResponseLength(), 32);
        assertEq(example.s_lastErrorLength(), 0, "a response or an error, never both");
    }

    function test_AThrownErrorArrivesAsTheError() public {
        _send('throw new Error("the API is down");', new string[](0));
        assertEq(example.s_lastResponseLength(), 0);
        assertEq(example.s_lastError(), bytes32("the API is down"));
        assertEq(example.s_lastErrorLength(), 15);
    }

    function test_EncodeStringAndInt256() public {
        string[] memory args = new string[](1);
        args[0] = "Enclave";
        _send("return Functions.encodeString(`hello ${args[0]}`);", args);
        assertEq(example.s_lastResponse(), bytes32("hello Enclave"));
        _send("return Functions.encodeInt256(-2);", new string[](0));
        assertEq(example.s_lastResponse(), bytes32(uint256(type(uint256).max - 1)));
    }

    function test_TheSubscriptionPaysAndOnlyItsConsumersMaySend() public {
        uint96 before = adapter.getSubscription(subscriptionId).balance;
        _send("return Functions.encodeUint256(1);", new string[](0));
        assertEq(adapter.getSubscription(subscriptionId).balance, before - PRICE);

        vm.prank(address(0xBAD));
        vm.expectRevert(
            abi.encodeWithSelector(FunctionsRouterAdapter.InvalidConsumer.selector, subscriptionId, address(0xBAD))
        );
        adapter.sendRequest(subscriptionId, hex"01", 1, 100_000, DON_ID);

        adapter.removeConsumer(subscriptionId, address(example));
        vm.expectRevert(
            abi.encodeWithSelector(FunctionsRouterAdapter.InvalidConsumer.selector, subscriptionId, address(example))
        );
        example.sendRequest("return 1", "", new string[](0), subscriptionId, DON_ID);
    }

    function test_AnEmptySubscriptionCannotPay() public {
        uint64 empty = adapter.createSubscriptionWithConsumer(address(example));
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.InsufficientSubscriptionBalance.selector, empty, 0, PRICE)
        );
        example.sendRequest("return 1", "", new string[](0), empty, DON_ID);
    }

    function test_TheCallbackGetsExactlyItsGas() public {
        GasMeasuringClient client = new GasMeasuringClient(address(adapter));
        adapter.addConsumer(subscriptionId, address(client));
        for (uint32 limit = 50_000; limit <= 300_000; limit += 250_000) {
            vm.recordLogs();
            client.ask(subscriptionId, limit);
            assertEq(answerRequests(), 1);
            // What the callback found left: its limit, less the client's own dispatch before it.
            assertLe(client.gasAtCallback(), limit);
            assertGt(client.gasAtCallback(), limit - 3_000);
        }
    }

    function test_FundingPastAUint96IsRefused() public {
        uint256 tooMuch = uint256(type(uint96).max) + 1;
        vm.deal(address(this), tooMuch * 2);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.SubscriptionBalanceTooLarge.selector, tooMuch + 1 ether)
        );
        adapter.fundSubscription{value: tooMuch}(subscriptionId);
    }

    function test_AnAnswerOfAnotherShapeIsTheClientsError() public {
        (bytes memory response, bytes memory err) = adapter.decodeAnswer(abi.encode(bytes("r"), bytes("")));
        assertEq(response, "r");
        assertEq(err, "");
        vm.expectRevert();
        adapter.decodeAnswer(hex"deadbeef");
    }

    function test_ACancelledRequestsHoldGoesBackToItsSubscription() public {
        uint96 before = adapter.getSubscription(subscriptionId).balance;
        vm.recordLogs();
        example.sendRequest("return Functions.encodeUint256(1);", "", new string[](0), subscriptionId, DON_ID);
        (RequestCommitment[] memory made,) = requestsMade();
        assertEq(adapter.getSubscription(subscriptionId).blockedBalance, PRICE, "held while it may be answered");
        assertEq(adapter.getSubscription(subscriptionId).balance, before);

        // Nobody answered: past its deadline anyone cancels it, and the hold is released.
        vm.warp(made[0].deadline + 1);
        vm.prank(address(0xA11));
        enclaveRouter.cancel(made[0]);
        assertEq(adapter.getSubscription(subscriptionId).blockedBalance, 0);
        assertEq(adapter.getSubscription(subscriptionId).balance, before, "nothing was charged");
    }

    function test_AnAnsweredRequestPaysWhatItCost() public {
        uint96 before = adapter.getSubscription(subscriptionId).balance;
        _send("return Functions.encodeUint256(1);", new string[](0));
        assertEq(adapter.getSubscription(subscriptionId).blockedBalance, 0);
        assertEq(adapter.getSubscription(subscriptionId).balance, before - PRICE);
        assertEq(enclaveRouter.balanceOf(address(this)), PRICE, "the runtime agent's owner earned its price");
    }

    function test_CancellingPaysTheBalanceOut() public {
        address payable to = payable(address(0xCAFE));
        adapter.cancelSubscription(subscriptionId, to);
        assertEq(to.balance, 1 ether);
        assertEq(adapter.getSubscription(subscriptionId).owner, address(0));
        vm.expectRevert(FunctionsRouterAdapter.InvalidSubscription.selector);
        adapter.fundSubscription(subscriptionId);
    }

    function test_ASubscriptionWithOpenRequestsCannotBeCancelled() public {
        vm.recordLogs();
        example.sendRequest("return Functions.encodeUint256(1);", "", new string[](0), subscriptionId, DON_ID);
        (RequestCommitment[] memory made,) = requestsMade();
        vm.expectRevert(FunctionsRouterAdapter.CannotRemoveWithPendingRequests.selector);
        adapter.cancelSubscription(subscriptionId, payable(address(0xCAFE)));

        vm.warp(made[0].deadline + 1);
        enclaveRouter.cancel(made[0]);
        adapter.cancelSubscription(subscriptionId, payable(address(0xCAFE)));
        assertEq(address(0xCAFE).balance, 1 ether, "every wei, the released hold included");
    }

    function test_AnAnsweredRequestNoLongerHoldsTheSubscription() public {
        _send("return Functions.encodeUint256(1);", new string[](0));
        adapter.cancelSubscription(subscriptionId, payable(address(0xCAFE)));
        assertEq(address(0xCAFE).balance, 1 ether - PRICE);
    }

    function test_OwnershipMovesInTwoSteps() public {
        address next = address(0xB0B);
        vm.prank(next);
        vm.expectRevert(FunctionsRouterAdapter.MustBeSubscriptionOwner.selector);
        adapter.proposeSubscriptionOwnerTransfer(subscriptionId, next);

        adapter.proposeSubscriptionOwnerTransfer(subscriptionId, next);
        vm.expectRevert(abi.encodeWithSelector(FunctionsRouterAdapter.MustBeProposedOwner.selector, next));
        adapter.acceptSubscriptionOwnerTransfer(subscriptionId);
        assertEq(adapter.getSubscription(subscriptionId).owner, address(this), "not until the new owner accepts");

        vm.prank(next);
        adapter.acceptSubscriptionOwnerTransfer(subscriptionId);
        assertEq(adapter.getSubscription(subscriptionId).owner, next);
        assertEq(adapter.getSubscription(subscriptionId).proposedOwner, address(0));
        vm.expectRevert(FunctionsRouterAdapter.MustBeSubscriptionOwner.selector);
        adapter.addConsumer(subscriptionId, address(0xC0));
    }

    function test_TheRuntimeLearnsTheSubscriptionOwnerFromTheAdapter() public {
        vm.recordLogs();
        example.sendRequest("return Functions.encodeUint256(1);", "", new string[](0), subscriptionId, DON_ID);
        (, bytes[] memory inputs) = requestsMade();
        assertEq(address(bytes20(inputs[0])), address(this), "the owner's address comes first");
    }

    function test_ThereIsNoAllowList() public {
        assertEq(adapter.getAllowListId(), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(FunctionsRouterAdapter.RouteNotFound.selector, bytes32(0)));
        adapter.getContractById(bytes32(0));
    }
}
