// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {AgentStatus, RequestCommitment} from "../src/libraries/AgentTypes.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice What a delivered request pays, and to whom: the agent's price to its owner, the
///         operator's fee and the delivery's gas (capped by the escrow) to the transmitter, the
///         rest back to the consumer; never more than the request's fee.
contract AgentRouter_Fees is RouterSetup {
    function setUp() public override {
        super.setUp();
        _chargeAnOperatorFee();
    }

    /// @dev A request from the EchoConsumer paying `value`, sent at `gasPrice`.
    function _requestPaying(uint256 value, uint256 gasPrice)
        internal
        returns (uint256 requestId, RequestCommitment memory commitment)
    {
        vm.txGasPrice(gasPrice);
        vm.deal(address(consumer), value);
        vm.prank(address(consumer));
        requestId = router.request{value: value}(agentId, "x", CALLBACK_GAS);
        commitment =
            _commitmentOf(requestId, agentId, keccak256(AGENT_CODE), address(consumer), "x", CALLBACK_GAS, value, 0);
    }

    /// @dev Fulfils at `gasPrice`; returns the delivery's (gasReimbursed, refunded).
    function _fulfilAt(RequestCommitment memory commitment, uint256 gasPrice)
        internal
        returns (uint96 gasReimbursed, uint96 refunded)
    {
        vm.txGasPrice(gasPrice);
        vm.recordLogs();
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != IAgentRouter.RequestFulfilled.selector) continue;
            (,, uint96 gas, uint96 back) = abi.decode(logs[i].data, (AgentStatus, bool, uint96, uint96));
            return (gas, back);
        }
        revert("no RequestFulfilled");
    }

    function test_EstimateCost_IsPricePlusOperatorFeePlusGasAtThePrice() public view {
        assertEq(router.estimateCost(agentId, CALLBACK_GAS, 0), PRICE + OPERATOR_FEE);
        assertEq(
            router.estimateCost(agentId, CALLBACK_GAS, 3 gwei),
            PRICE + OPERATOR_FEE + (uint256(CALLBACK_GAS) + OVERHEAD) * 3 gwei
        );
    }

    function test_EstimateCost_RevertWhen_NoSuchAgent() public {
        vm.expectRevert();
        router.estimateCost(999, CALLBACK_GAS, 1 gwei);
    }

    function test_Request_RevertWhen_ValueBelowTheMostItCanCost() public {
        vm.txGasPrice(2 gwei);
        uint256 cost = router.estimateCost(agentId, CALLBACK_GAS, 2 gwei);
        vm.deal(address(consumer), cost);
        vm.prank(address(consumer));
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InsufficientFee.selector, cost - 1, cost));
        router.request{value: cost - 1}(agentId, "x", CALLBACK_GAS);
    }

    function test_Fulfil_PaysEachPartToItsOwnerAndTheRestBack() public {
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, 10 gwei) + 1 ether;
        (, RequestCommitment memory commitment) = _requestPaying(value, 10 gwei);
        (uint96 gasReimbursed, uint96 refunded) = _fulfilAt(commitment, 5 gwei);

        assertEq(router.balanceOf(AGENT_OWNER), PRICE, "the agent's owner earns its price");
        assertEq(router.balanceOf(TRANSMITTER), OPERATOR_FEE + gasReimbursed, "the transmitter, its fee and gas");
        assertEq(router.balanceOf(address(consumer)), refunded, "the consumer gets the rest back");
        assertEq(uint256(PRICE) + OPERATOR_FEE + gasReimbursed + refunded, value, "every wei of the fee is paid out");
        // The callback's gas and the overhead, at the fulfilment's price: more than the overhead
        // alone, less than the callback's whole limit on top of it.
        assertGt(gasReimbursed, uint256(OVERHEAD) * 5 gwei);
        assertLt(gasReimbursed, (uint256(CALLBACK_GAS) + OVERHEAD) * 5 gwei);
    }

    function test_Fulfil_ReimbursesGasOnlyUpToTheEscrow() public {
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei);
        (, RequestCommitment memory commitment) = _requestPaying(value, 1 gwei);
        // Gas got dearer: the transmitter gets what the request escrowed for gas, no more.
        (uint96 gasReimbursed, uint96 refunded) = _fulfilAt(commitment, 1000 gwei);
        assertEq(gasReimbursed, value - PRICE - OPERATOR_FEE);
        assertEq(refunded, 0);
        assertEq(router.balanceOf(TRANSMITTER), value - PRICE);
    }

    function test_Fulfil_AConsumerWithoutCodeCostsTheOverheadOnly() public {
        address eoa = address(0xE0A);
        vm.txGasPrice(1 gwei);
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei);
        vm.deal(eoa, value);
        vm.prank(eoa);
        uint256 requestId = router.request{value: value}(agentId, "x", CALLBACK_GAS);
        RequestCommitment memory commitment =
            _commitmentOf(requestId, agentId, keccak256(AGENT_CODE), eoa, "x", CALLBACK_GAS, value, 0);
        (uint96 gasReimbursed, uint96 refunded) = _fulfilAt(commitment, 1 gwei);
        assertEq(gasReimbursed, uint256(OVERHEAD) * 1 gwei, "no callback ran: only the delivery's overhead");
        assertEq(refunded, uint256(CALLBACK_GAS) * 1 gwei);
    }

    function test_Cancel_ReturnsTheWholeFee() public {
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, 3 gwei);
        (uint256 requestId, RequestCommitment memory commitment) = _requestPaying(value, 3 gwei);
        vm.warp(commitment.deadline + 1);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestCancelled(requestId, address(consumer), uint96(value), 0);
        router.cancel(commitment);
        assertEq(router.balanceOf(address(consumer)), value);
        assertEq(router.balanceOf(AGENT_OWNER), 0, "an unanswered request earns nobody anything");
    }

    /// @notice Whatever the gas prices and the value sent: the parts add up to the fee, the
    ///         transmitter's gas never exceeds the escrow, and the owner always gets the price.
    function testFuzz_AChargeNeverExceedsTheFee(uint64 requestGasPrice, uint64 fulfilGasPrice, uint96 extra) public {
        requestGasPrice = uint64(bound(requestGasPrice, 0, 500 gwei));
        fulfilGasPrice = uint64(bound(fulfilGasPrice, 0, 5000 gwei));
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, requestGasPrice) + bound(extra, 0, 10 ether);
        (, RequestCommitment memory commitment) = _requestPaying(value, requestGasPrice);
        uint256 before = address(router).balance;
        (uint96 gasReimbursed, uint96 refunded) = _fulfilAt(commitment, fulfilGasPrice);
        assertEq(address(router).balance, before, "a delivery moves no ether, only balances");
        assertEq(uint256(PRICE) + OPERATOR_FEE + gasReimbursed + refunded, value);
        assertLe(gasReimbursed, value - PRICE - OPERATOR_FEE);
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
    }
}
