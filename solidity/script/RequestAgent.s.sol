// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Script, console} from "forge-std/Script.sol";

import {EchoConsumer} from "../src/examples/EchoConsumer.sol";

/// @notice Makes a request from the command line against a running stack (`enclave up`):
///
///     eval "$(enclave env)"
///     AGENT_ID=1 INPUT="Enclave" forge script solidity/script/RequestAgent.s.sol \
///         --rpc-url "$ENCLAVE_RPC_URL" --broadcast --private-key "$ENCLAVE_DEV_KEY"
///
/// It asks EchoConsumer (`ENCLAVE_ECHO_CONSUMER`, which `enclave env` exports; or the address in
/// a deployment file named by `DEPLOYMENT`) to request agent `AGENT_ID` on `INPUT`, paying
/// `FEE` wei (default: the router's `estimateCost` at a gas price the broadcast will not pass;
/// what the request does not cost comes back to EchoConsumer). The callback lands in
/// EchoConsumer a moment later; `cast call` its `lastOutput()` to see it.
contract RequestAgent is Script {
    uint32 internal constant CALLBACK_GAS = 300_000;

    function run() external {
        EchoConsumer echo = EchoConsumer(vm.envOr("ENCLAVE_ECHO_CONSUMER", address(0)));
        if (address(echo) == address(0)) {
            string memory deployment = vm.readFile(vm.envString("DEPLOYMENT"));
            echo = EchoConsumer(vm.parseJsonAddress(deployment, ".contracts.EchoConsumer.address"));
        }
        uint256 agentId = vm.envUint("AGENT_ID");
        bytes memory input = bytes(vm.envOr("INPUT", string("")));
        // The broadcast's fee cap is about twice the base fee plus a tip: reckoned above it, the
        // value covers whatever price the transaction pays.
        uint256 fee = vm.envOr("FEE", echo.ROUTER().estimateCost(agentId, CALLBACK_GAS, 2 * block.basefee + 2 gwei));

        vm.startBroadcast();
        echo.ask{value: fee}(agentId, input, CALLBACK_GAS);
        vm.stopBroadcast();
        // The request id depends on the block the transaction lands in, so the simulation's id
        // would be wrong: the AgentRequested log of the broadcast transaction has the real one.
        console.log("requested agent %s through EchoConsumer %s", agentId, address(echo));
    }
}
