// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";
import {AgentStatus} from "../../src/libraries/AgentTypes.sol";
import {EnclaveTest} from "../../src/testing/EnclaveTest.sol";

/// @notice The Foundry helper that consumer projects use (`EnclaveTest`), driving real agents
///         through `vm.ffi`: the same sandbox, manifest, secrets and storage as a worker.
contract EnclaveTest_EndToEnd is EnclaveTest {
    EchoConsumer internal echo;

    function setUp() public {
        deployEnclave();
        echo = new EchoConsumer(address(enclaveRouter));
        vm.setEnv("ENCLAVE_CLI", ".venv/bin/enclave");
    }

    function test_AnswersARequestWithTheAgentsOutput() public {
        uint256 agentId = registerAgent("examples/agents/hello.js", 0);
        vm.recordLogs();
        uint256 requestId = echo.ask(agentId, "Foundry", 200_000);
        assertEq(answerRequests(), 1);
        assertEq(echo.lastRequestId(), requestId);
        assertEq(uint8(echo.lastStatus()), uint8(AgentStatus.OK));
        string memory expected = string.concat(
            '{"greeting":"Hello, Foundry!","keccak256":"', vm.toString(keccak256("Hello, Foundry!")), '"}'
        );
        assertEq(string(echo.lastOutput()), expected);
    }

    function test_SecretsAndStorageAsAWorkerHasThem() public {
        string memory storageFile = string.concat(ENCLAVE_TEST_STATE, "/cluster.sqlite");
        if (vm.exists(storageFile)) vm.removeFile(storageFile);
        enclaveSecretsFile = "solidity/test/e2e/fixtures/secrets.json";
        uint256 agentId = registerAgent("solidity/test/e2e/fixtures/counter.js", 0);
        vm.recordLogs();
        echo.ask(agentId, "Ada", 200_000);
        echo.ask(agentId, "Grace", 200_000);
        assertEq(answerRequests(), 2);
        assertEq(string(echo.lastOutput()), '{"calls":2,"greeting":"Bonjour, Grace"}');
    }

    function test_AHostileAgentIsStoppedAtItsManifestsWallTime() public {
        uint256 agentId = registerAgent("solidity/test/e2e/fixtures/spin.js", 0);
        vm.recordLogs();
        echo.ask(agentId, "", 200_000);
        assertEq(answerRequests(), 1);
        assertEq(uint8(echo.lastStatus()), uint8(AgentStatus.TIMEOUT));
    }
}
