// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentResult, AgentStatus, RequestCommitment, SignedAgentResult} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

/// @notice End to end inside forge: the coprocessor (through `vm.ffi`) runs a real agent in its
///         sandbox and signs the result with the test cluster key; the router verifies and
///         delivers it to the consumer.
contract AgentRouter_EndToEnd is RouterSetup {
    function test_EndToEnd_HelloAgentResultReachesTheConsumer() public {
        string memory path = "examples/agents/hello.js";
        (uint256 requestId, RequestCommitment memory commitment) = _requestAgent(path, "Enclave");

        (AgentStatus status, bytes memory output, bytes32 r, bytes32 vs) =
            _runAndSign(path, "Enclave", commitment, requestId, 10_000);
        _deliver(requestId, commitment, status, output, r, vs);

        string memory expected = string.concat(
            '{"greeting":"Hello, Enclave!","keccak256":"', vm.toString(keccak256("Hello, Enclave!")), '"}'
        );
        assertEq(uint8(consumer.lastStatus()), uint8(AgentStatus.OK));
        assertEq(string(consumer.lastOutput()), expected);
        assertEq(router.balanceOf(TRANSMITTER), PRICE);
    }

    function test_EndToEnd_HostileAgentTimesOutAndTheErrorIsDelivered() public {
        string memory path = "solidity/test/e2e/fixtures/loop.js";
        (uint256 requestId, RequestCommitment memory commitment) = _requestAgent(path, "");

        (AgentStatus status, bytes memory output, bytes32 r, bytes32 vs) =
            _runAndSign(path, "", commitment, requestId, 300);
        _deliver(requestId, commitment, status, output, r, vs);

        assertEq(uint8(consumer.lastStatus()), uint8(AgentStatus.TIMEOUT));
        assertEq(string(consumer.lastOutput()), "wall time of 300 ms exceeded");
    }

    function _requestAgent(string memory path, bytes memory input)
        internal
        returns (uint256 requestId, RequestCommitment memory commitment)
    {
        bytes memory code = bytes(vm.readFile(path));
        vm.prank(AGENT_OWNER);
        uint256 id = router.registerAgent(code, PRICE, false);
        vm.deal(address(consumer), PRICE);
        vm.prank(address(consumer));
        requestId = router.request{value: PRICE}(id, input, CALLBACK_GAS);
        commitment = _commitmentOf(requestId, id, keccak256(code), address(consumer), input, CALLBACK_GAS);
    }

    function _runAndSign(
        string memory path,
        bytes memory input,
        RequestCommitment memory commitment,
        uint256 requestId,
        uint256 wallMs
    ) internal returns (AgentStatus status, bytes memory output, bytes32 r, bytes32 vs) {
        string[] memory cmd = new string[](19);
        cmd[0] = ".venv/bin/python";
        cmd[1] = "-m";
        cmd[2] = "enclave.ffi";
        cmd[3] = "--code-file";
        cmd[4] = path;
        cmd[5] = "--input";
        cmd[6] = vm.toString(input);
        cmd[7] = "--commitment";
        cmd[8] = vm.toString(abi.encode(commitment));
        cmd[9] = "--chain-id";
        cmd[10] = vm.toString(block.chainid);
        cmd[11] = "--router";
        cmd[12] = vm.toString(address(router));
        cmd[13] = "--epoch";
        cmd[14] = "1";
        cmd[15] = "--key";
        cmd[16] = vm.toString(bytes32(CLUSTER_KEY_1));
        cmd[17] = "--wall-time-ms";
        cmd[18] = vm.toString(wallMs);
        (uint8 rawStatus, bytes memory out, bytes32 r_, bytes32 vs_) =
            abi.decode(vm.ffi(cmd), (uint8, bytes, bytes32, bytes32));
        return (AgentStatus(rawStatus), out, r_, vs_);
    }

    function _deliver(
        uint256 requestId,
        RequestCommitment memory commitment,
        AgentStatus status,
        bytes memory output,
        bytes32 r,
        bytes32 vs
    ) internal {
        SignedAgentResult memory signed = SignedAgentResult({
            result: AgentResult({commitment: commitment, status: status, output: output}), epoch: 1, r: r, vs: vs
        });
        assertEq(_fulfill(_one(signed)), 1, "the router accepted the coprocessor's signature");
    }
}
