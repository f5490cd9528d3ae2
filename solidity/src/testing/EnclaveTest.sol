// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Test, Vm} from "forge-std/Test.sol";

import {AgentRouter} from "../AgentRouter.sol";
import {IAgentStaking} from "../interfaces/IAgentStaking.sol";
import {TeeRegistry} from "../TeeRegistry.sol";
import {IAgentRouter} from "../interfaces/IAgentRouter.sol";
import {AgentResult, AgentStatus, Currency, RequestCommitment, SignedAgentResult} from "../libraries/AgentTypes.sol";

/// @title EnclaveTest
/// @notice Foundry helpers for a consumer project's tests: the protocol deployed inside the test,
///         agents registered from their files, and requests answered by running each agent
///         through `vm.ffi` exactly as a worker runs it (the same sandbox, the agent's manifest and
///         limits, sealed secrets and storage), signed with a test cluster key and delivered by
///         the router to the consumer's callback.
/// @dev Needs `ffi = true` and read access to the agents' files in foundry.toml, and the
///      `enclave` command (from the Python package) on PATH, or its path in `ENCLAVE_CLI`.
///
///      function setUp() public {
///          deployEnclave();
///          agentId = registerAgent("agents/weather.js", 0);
///          consumer = new WeatherConsumer(address(enclaveRouter), agentId);
///      }
///
///      function test_Weather() public {
///          vm.recordLogs();
///          consumer.ask("Paris");
///          assertEq(answerRequests(), 1);
///          assertEq(consumer.temperature(), 21);
///      }
abstract contract EnclaveTest is Test {
    /// @notice The test cluster's signing key (never a real one).
    uint256 internal constant ENCLAVE_CLUSTER_KEY = uint256(keccak256("enclave-agents test cluster key"));
    address internal constant ENCLAVE_OWNER = address(uint160(uint256(keccak256("enclave-agents test owner"))));
    address internal constant ENCLAVE_GATEKEEPER = address(uint160(uint256(keccak256("enclave-agents gatekeeper"))));
    address internal constant ENCLAVE_TRANSMITTER =
        address(uint160(uint256(keccak256("enclave-agents test transmitter"))));
    /// @notice Sealed storage of agents run by these tests: one file, cleared by nothing here.
    string internal constant ENCLAVE_TEST_STATE = "cache/enclave-test";

    TeeRegistry internal enclaveRegistry;
    AgentRouter internal enclaveRouter;
    /// @notice Secrets the agents see as `ctx.secrets` (a JSON file's path; empty for none).
    string internal enclaveSecretsFile;

    mapping(bytes32 codeHash => string path) private _agentFiles;

    /// @notice Deploys a TeeRegistry with the test cluster's epoch 1 and an AgentRouter.
    function deployEnclave() internal returns (AgentRouter router) {
        enclaveRegistry = new TeeRegistry(ENCLAVE_OWNER);
        vm.prank(ENCLAVE_OWNER);
        enclaveRegistry.addGatekeeper(ENCLAVE_GATEKEEPER);
        vm.prank(ENCLAVE_GATEKEEPER);
        enclaveRegistry.publishEpoch(1, vm.addr(ENCLAVE_CLUSTER_KEY), bytes32(uint256(1)));
        enclaveRouter = new AgentRouter(ENCLAVE_OWNER, enclaveRegistry, IAgentStaking(address(0)), IERC20(address(0)));
        return enclaveRouter;
    }

    /// @notice Registers the agent in `path` (owned by this test contract) at `price` wei.
    function registerAgent(string memory path, uint96 price) internal returns (uint256 agentId) {
        bytes memory code = bytes(vm.readFile(path));
        _agentFiles[keccak256(code)] = path;
        return enclaveRouter.registerAgent(code, price, false);
    }

    /// @notice Answers every request made since `vm.recordLogs()`: runs each agent and delivers
    ///         its signed result. Returns how many the router delivered.
    function answerRequests() internal returns (uint256 delivered) {
        (RequestCommitment[] memory commitments, bytes[] memory inputs) = requestsMade();
        for (uint256 i; i < commitments.length; ++i) {
            delivered += _answer(commitments[i], inputs[i]);
        }
    }

    /// @notice The fields and inputs of the requests made since `vm.recordLogs()`, as the router
    ///         hashed them (for `runAgent`, or to `cancel` one after its deadline).
    function requestsMade() internal returns (RequestCommitment[] memory commitments, bytes[] memory inputs) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 count;
        for (uint256 i; i < logs.length; ++i) {
            if (_isRequest(logs[i])) ++count;
        }
        commitments = new RequestCommitment[](count);
        inputs = new bytes[](count);
        count = 0;
        for (uint256 i; i < logs.length; ++i) {
            if (_isRequest(logs[i])) {
                (commitments[count], inputs[count]) = _fields(logs[i]);
                ++count;
            }
        }
    }

    /// @notice Runs the agent of a request the way a worker would, without delivering it.
    function runAgent(RequestCommitment memory commitment, bytes memory input)
        internal
        returns (AgentStatus status, bytes memory output, bytes32 r, bytes32 vs)
    {
        string memory path = _agentFiles[commitment.codeHash];
        require(bytes(path).length != 0, "EnclaveTest: register the agent with registerAgent(path, price) first");
        string[] memory cmd = new string[](bytes(enclaveSecretsFile).length == 0 ? 20 : 22);
        cmd[0] = vm.envOr("ENCLAVE_CLI", string("enclave"));
        cmd[1] = "ffi";
        cmd[2] = "--code-file";
        cmd[3] = path;
        cmd[4] = "--input";
        cmd[5] = vm.toString(input);
        cmd[6] = "--commitment";
        cmd[7] = vm.toString(abi.encode(commitment));
        cmd[8] = "--chain-id";
        cmd[9] = vm.toString(block.chainid);
        cmd[10] = "--router";
        cmd[11] = vm.toString(address(enclaveRouter));
        cmd[12] = "--epoch";
        cmd[13] = "1";
        cmd[14] = "--key";
        cmd[15] = vm.toString(bytes32(ENCLAVE_CLUSTER_KEY));
        cmd[16] = "--state-dir";
        cmd[17] = ENCLAVE_TEST_STATE;
        cmd[18] = "--agent-id";
        cmd[19] = vm.toString(commitment.agentId);
        if (bytes(enclaveSecretsFile).length != 0) {
            cmd[20] = "--secrets-file";
            cmd[21] = enclaveSecretsFile;
        }
        uint8 rawStatus;
        (rawStatus, output, r, vs) = abi.decode(vm.ffi(cmd), (uint8, bytes, bytes32, bytes32));
        status = AgentStatus(rawStatus);
    }

    function _isRequest(Vm.Log memory log) private view returns (bool) {
        return log.emitter == address(enclaveRouter) && log.topics[0] == IAgentRouter.AgentRequested.selector;
    }

    /// @dev The data of an `AgentRequested` log: its fields after the three topics.
    struct RequestedData {
        bytes32 codeHash;
        bytes input;
        uint32 callbackGasLimit;
        uint48 deadline;
        uint32 nonce;
        address assignee;
        uint48 assignedUntil;
        uint96 fee;
        uint96 price;
        uint96 operatorFee;
        uint64 subscriptionId;
        Currency currency;
    }

    function _fields(Vm.Log memory log) private view returns (RequestCommitment memory commitment, bytes memory input) {
        uint256 requestId = uint256(log.topics[1]);
        // A log's data is its fields' tuple; as one struct argument it follows an offset word.
        RequestedData memory data = abi.decode(bytes.concat(abi.encode(uint256(32)), log.data), (RequestedData));
        input = data.input;
        commitment = RequestCommitment({
            agentId: uint256(log.topics[2]),
            codeHash: data.codeHash,
            inputHash: keccak256(input),
            consumer: address(uint160(uint256(log.topics[3]))),
            fee: data.fee,
            callbackGasLimit: data.callbackGasLimit,
            createdAt: uint48(block.number),
            deadline: data.deadline,
            nonce: data.nonce,
            price: data.price,
            operatorFee: data.operatorFee,
            subscriptionId: data.subscriptionId,
            assignee: data.assignee,
            assignedUntil: data.assignedUntil,
            currency: data.currency
        });
        // The log does not carry its block: the request's, at most 256 blocks back.
        while (enclaveRouter.requestIdOf(commitment) != requestId) {
            require(block.number - commitment.createdAt < 256, "EnclaveTest: no block gives the request's id");
            --commitment.createdAt;
        }
    }

    function _answer(RequestCommitment memory commitment, bytes memory input) private returns (uint256 delivered) {
        (AgentStatus status, bytes memory output, bytes32 r, bytes32 vs) = runAgent(commitment, input);
        SignedAgentResult[] memory batch = new SignedAgentResult[](1);
        batch[0] = SignedAgentResult({
            result: AgentResult({commitment: commitment, status: status, output: output}), epoch: 1, r: r, vs: vs
        });
        vm.prank(ENCLAVE_TRANSMITTER);
        return enclaveRouter.fulfill(batch);
    }
}
