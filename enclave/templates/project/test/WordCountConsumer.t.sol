// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentStatus} from "enclave-agents/libraries/AgentTypes.sol";
import {EnclaveTest} from "enclave-agents/testing/EnclaveTest.sol";

import {WordCountConsumer} from "../src/WordCountConsumer.sol";

/// @notice The consumer against a router deployed in the test: its callback on its own (unit),
///         and a request answered by the real agent through `vm.ffi` (end to end).
contract WordCountConsumerTest is EnclaveTest {
    WordCountConsumer internal consumer;
    uint256 internal agentId;

    function setUp() public {
        deployEnclave();
        agentId = registerAgent("agents/word-count.js", 0);
        consumer = new WordCountConsumer(address(enclaveRouter), agentId);
    }

    function test_DecodesAnAnswer() public {
        vm.prank(address(enclaveRouter));
        consumer.onAgentResult(1, AgentStatus.OK, abi.encode(uint256(3), "lovely"));
        assertEq(consumer.words(), 3);
        assertEq(consumer.longest(), "lovely");
    }

    function test_KeepsItsStateWhenTheRunFailed() public {
        vm.prank(address(enclaveRouter));
        consumer.onAgentResult(2, AgentStatus.TIMEOUT, "wall time of 2000 ms exceeded");
        assertEq(consumer.words(), 0);
    }

    function test_OnlyTheRouterCallsBack() public {
        vm.expectRevert();
        consumer.onAgentResult(3, AgentStatus.OK, abi.encode(uint256(1), "x"));
    }

    function test_EndToEnd_TheAgentCountsTheWords() public {
        vm.recordLogs();
        consumer.count("the quick brown fox jumps");
        assertEq(answerRequests(), 1, "the router delivered the agent's signed answer");
        assertEq(consumer.words(), 5);
        assertEq(consumer.longest(), "quick");
    }
}
