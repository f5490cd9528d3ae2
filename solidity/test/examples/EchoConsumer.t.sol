// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

contract EchoConsumer_AskMany is RouterSetup {
    EchoConsumer internal echo;

    function setUp() public override {
        super.setUp();
        echo = new EchoConsumer(address(router));
    }

    function _inputs(uint256 count) internal pure returns (bytes[] memory inputs) {
        inputs = new bytes[](count);
        for (uint256 i; i < count; ++i) {
            inputs[i] = abi.encodePacked("input ", i);
        }
    }

    function test_AskMany_OpensOneRequestPerInput() public {
        uint256[] memory ids = echo.askMany{value: 3 * PRICE}(agentId, _inputs(3), 100_000);
        assertEq(ids.length, 3);
        for (uint256 i; i < ids.length; ++i) {
            assertTrue(router.isOpen(ids[i]));
            for (uint256 j; j < i; ++j) {
                assertTrue(ids[i] != ids[j], "equal inputs in one transaction still get ids of their own");
            }
        }
    }

    function test_AskMany_RevertsOnAFeeItsRequestsCannotShare() public {
        vm.expectRevert(abi.encodeWithSelector(EchoConsumer.UnevenFee.selector, 3 * PRICE + 1, 3));
        echo.askMany{value: 3 * PRICE + 1}(agentId, _inputs(3), 100_000);
    }

    function test_AskMany_RevertsWithoutInputs() public {
        vm.expectRevert(abi.encodeWithSelector(EchoConsumer.UnevenFee.selector, 0, 0));
        echo.askMany(agentId, _inputs(0), 100_000);
    }
}
