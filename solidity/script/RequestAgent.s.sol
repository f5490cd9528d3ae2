// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Script, console} from "forge-std/Script.sol";

import {EchoConsumer} from "../src/examples/EchoConsumer.sol";

/// @notice Makes a request from the command line against a running stack (`enclave up`):
///
///     AGENT_ID=1 INPUT="Enclave" forge script solidity/script/RequestAgent.s.sol \
///         --rpc-url http://127.0.0.1:8545 --broadcast --private-key $KEY
///
/// It reads EchoConsumer's address from the deployment file (`DEPLOYMENT`, by default
/// `.state/deployment.json`) and asks it to request agent `AGENT_ID` on `INPUT`, paying `FEE`
/// wei (default 0). The callback lands in EchoConsumer a moment later; `cast call` its
/// `lastOutput()` to see it.
contract RequestAgent is Script {
    function run() external {
        string memory deployment = vm.readFile(vm.envOr("DEPLOYMENT", string(".state/deployment.json")));
        EchoConsumer echo = EchoConsumer(vm.parseJsonAddress(deployment, ".contracts.EchoConsumer.address"));
        uint256 agentId = vm.envUint("AGENT_ID");
        bytes memory input = bytes(vm.envOr("INPUT", string("")));
        uint256 fee = vm.envOr("FEE", uint256(0));

        vm.startBroadcast();
        echo.ask{value: fee}(agentId, input, 300_000);
        vm.stopBroadcast();
        // The request id depends on the block the transaction lands in, so the simulation's id
        // would be wrong: the AgentRequested log of the broadcast transaction has the real one.
        console.log("requested agent %s through EchoConsumer %s", agentId, address(echo));
    }
}
