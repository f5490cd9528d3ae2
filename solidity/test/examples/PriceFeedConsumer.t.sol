// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {PriceFeedConsumer} from "../../src/examples/PriceFeedConsumer.sol";
import {AgentStatus} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

contract PriceFeedConsumer_OnAgentResult is RouterSetup {
    PriceFeedConsumer internal feed;

    function setUp() public override {
        super.setUp();
        feed = new PriceFeedConsumer(address(router), agentId);
    }

    function test_OnAgentResult_StoresPriceAndTime() public {
        vm.expectEmit(address(feed));
        emit PriceFeedConsumer.PriceUpdated(7, 300_025_000_000);
        vm.prank(address(router));
        feed.onAgentResult(7, AgentStatus.OK, abi.encode(uint256(300_025_000_000)));
        assertEq(feed.price(), 300_025_000_000);
        assertEq(feed.updatedAt(), block.timestamp);
    }

    function test_OnAgentResult_KeepsPriceOnAgentError() public {
        vm.prank(address(router));
        feed.onAgentResult(7, AgentStatus.OK, abi.encode(uint256(1)));
        vm.expectEmit(address(feed));
        emit PriceFeedConsumer.PriceUpdateFailed(8, AgentStatus.TIMEOUT, "wall time exceeded");
        vm.prank(address(router));
        feed.onAgentResult(8, AgentStatus.TIMEOUT, "wall time exceeded");
        assertEq(feed.price(), 1);
    }

    function test_OnAgentResult_IgnoresMalformedOutput() public {
        vm.prank(address(router));
        feed.onAgentResult(9, AgentStatus.OK, "not 32 bytes");
        assertEq(feed.price(), 0);
    }

    function test_RequestPrice_RequestsItsAgent() public {
        uint256 requestId = feed.requestPrice{value: PRICE}("ETH-USD");
        assertTrue(router.isOpen(requestId));
    }
}
