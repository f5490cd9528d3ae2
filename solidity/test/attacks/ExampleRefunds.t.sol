// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DeployerRefunds} from "../../src/examples/DeployerRefunds.sol";
import {PriceFeedConsumer} from "../../src/examples/PriceFeedConsumer.sol";
import {RequestCommitment} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

/// @notice From an attacker's pass: the example consumers forward the payer's value as the
///         request's fee, and the change (and a cancelled request's whole fee) is credited to the
///         consumer's router balance, which none of them could withdraw: the wei was locked. Their
///         deployer now takes it out (DeployerRefunds), and nobody else can.
contract ExampleRefunds is RouterSetup {
    function test_AnExampleConsumersChangeGoesBackToItsDeployerOnly() public {
        PriceFeedConsumer feed = new PriceFeedConsumer(address(router), agentId);
        address user = address(0xD00D);
        vm.txGasPrice(1 gwei);
        uint256 value = router.estimateCost(agentId, feed.CALLBACK_GAS(), 1 gwei) + 0.01 ether; // a safety margin
        vm.deal(user, value);
        vm.prank(user);
        uint256 id = feed.requestPrice{value: value}("ETH/USD");
        RequestCommitment memory c =
            _commitmentOf(id, agentId, keccak256(AGENT_CODE), address(feed), "ETH/USD", feed.CALLBACK_GAS(), value, 0);
        vm.roll(block.number + 1);
        // never answered: cancelled after its deadline, the whole fee is "returned"
        vm.warp(block.timestamp + 16 minutes);
        router.cancel(c);
        assertEq(router.balanceOf(address(feed)), value, "credited to the example contract");
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(DeployerRefunds.NotDeployer.selector, user));
        feed.withdrawRefunds(payable(user));
        feed.withdrawRefunds(payable(address(0xBEEF))); // this test deployed it
        assertEq(address(0xBEEF).balance, value, "all of it");
    }
}
