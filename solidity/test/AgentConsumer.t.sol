// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../src/AgentConsumer.sol";
import {AgentStatus, RequestCommitment} from "../src/libraries/AgentTypes.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

contract AgentConsumer_OnAgentResult is RouterSetup {
    function test_OnAgentResult_RevertWhen_NotRouter() public {
        vm.expectRevert(abi.encodeWithSelector(AgentConsumer.OnlyRouterCanFulfill.selector, address(this)));
        consumer.onAgentResult(1, AgentStatus.OK, "spoofed");
    }

    function test_OnAgentResult_AcceptsTheRouter() public {
        vm.prank(address(router));
        consumer.onAgentResult(1, AgentStatus.OK, "from the router");
        assertEq(consumer.lastOutput(), "from the router");
    }
}

contract AgentConsumer_RequestAgent is RouterSetup {
    function test_RequestAgent_PaysTheFeeFromTheConsumer() public {
        uint256 requestId = consumer.ask{value: PRICE}(agentId, "hi", CALLBACK_GAS);
        assertTrue(router.isOpen(requestId));
        assertEq(address(router).balance, PRICE);
    }

    function test_RequestAgent_RevertWhen_FeeBelowPrice() public {
        vm.expectRevert();
        consumer.ask{value: PRICE - 1}(agentId, "hi", CALLBACK_GAS);
    }
}
