// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {FunctionsClientRequestSetup} from "chainlink/functions/tests/v1_X/Setup.t.sol";
import {
    FunctionsClientWithEmptyCallback
} from "chainlink/functions/tests/v1_X/testhelpers/FunctionsClientWithEmptyCallback.sol";
import {FunctionsResponse} from "chainlink/functions/dev/v1_X/libraries/FunctionsResponse.sol";
import {FunctionsClientTestHelper} from "chainlink/functions/tests/v1_X/testhelpers/FunctionsClientTestHelper.sol";
import {Vm} from "forge-std/Vm.sol";

import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {AgentRouter} from "../../src/AgentRouter.sol";
import {IAgentStaking} from "../../src/interfaces/IAgentStaking.sol";
import {FunctionsRouterAdapter} from "../../src/compat/FunctionsRouterAdapter.sol";
import {TeeRegistry} from "../../src/TeeRegistry.sol";
import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";
import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    Currency,
    RequestCommitment,
    SignedAgentResult
} from "../../src/libraries/AgentTypes.sol";
import {EmptyConsumer} from "../mocks/BenchConsumers.sol";

/// @notice Chainlink Functions (its own contracts and test setup, from @chainlink/contracts 1.4.0)
///         and Enclave Agents, measured the same way in one run: execution gas of the request
///         through a consumer contract, and of fulfilling 1 and 50 results with an empty
///         callback, both after a warm-up. Writes snapshots/ChainlinkComparison.json; fails if
///         Enclave Agents costs more than Chainlink Functions on any line.
contract ChainlinkComparisonGas is FunctionsClientRequestSetup {
    uint256 internal constant CLUSTER_KEY = 0xC1;
    uint32 internal constant CALLBACK_GAS = 100_000;
    string internal constant SOURCE = "return Functions.encodeString(args[0]);";
    bytes internal constant INPUT_64 =
        hex"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

    FunctionsClientWithEmptyCallback internal s_emptyClient;
    AgentRouter internal s_router;
    EchoConsumer internal s_echo;
    EmptyConsumer internal s_empty;
    uint256 internal s_agentId;
    uint256 internal s_nextKey = 100;

    function setUp() public override {
        FunctionsClientRequestSetup.setUp(); // ends with OWNER pranking (Chainlink's BaseTest)
        s_emptyClient = new FunctionsClientWithEmptyCallback(address(s_functionsRouter));
        s_functionsRouter.addConsumer(s_subscriptionId, address(s_emptyClient));
        // Every request reserves its estimated cost: fund a hundred of them.
        s_linkToken.transferAndCall(address(s_functionsRouter), 1_000 * JUELS_PER_LINK, abi.encode(s_subscriptionId));
        vm.stopPrank();

        TeeRegistry tee = new TeeRegistry(address(this));
        tee.addGatekeeper(address(this));
        tee.publishEpoch(1, vm.addr(CLUSTER_KEY), bytes32(uint256(1)));
        s_router = new AgentRouter(address(this), tee, IAgentStaking(address(0)), IERC20(address(0)));
        s_agentId = s_router.registerAgent("export default async (input) => input.bytes;", 0, false);
        s_echo = new EchoConsumer(address(s_router));
        s_empty = new EmptyConsumer();
    }

    function test_Gas_ChainlinkFunctionsVersusEnclaveAgents() public {
        // Warm-up: both systems have fulfilled once, so that no measurement pays a first write.
        _chainlinkFulfil(_chainlinkRequests(1));
        _enclaveFulfil(_enclaveRequests(1), false);

        // The request, through each system's consumer contract.
        uint256 chainlinkRequest = _chainlinkRequestGas();
        s_echo.ask(s_agentId, INPUT_64, CALLBACK_GAS);
        uint256 enclaveRequest = vm.snapshotGasLastCall("ChainlinkComparison", "enclave: request");

        // One result, and fifty in one transaction, empty callbacks.
        uint256 chainlinkOne = _chainlinkFulfil(_chainlinkRequests(1));
        vm.snapshotGasLastCall("ChainlinkComparison", "chainlink: fulfil 1");
        uint256 enclaveOne = _enclaveFulfil(_enclaveRequests(1), false);
        vm.snapshotGasLastCall("ChainlinkComparison", "enclave: fulfil 1");
        uint256 chainlinkFifty = _chainlinkFulfil(_chainlinkRequests(50)) / 50;
        vm.snapshotValue("ChainlinkComparison", "chainlink: fulfil 50, per result", chainlinkFifty);
        uint256 enclaveFifty = _enclaveFulfil(_enclaveRequests(50), true) / 50;
        vm.snapshotValue("ChainlinkComparison", "enclave: fulfil 50, per result", enclaveFifty);

        assertLt(enclaveRequest, chainlinkRequest, "request");
        assertLt(enclaveOne, chainlinkOne, "fulfil 1");
        assertLt(enclaveFifty, chainlinkFifty, "fulfil 50, per result");
    }

    /// @notice The same Chainlink clients, unchanged, pointed at FunctionsRouterAdapter instead of
    ///         Chainlink's router: the compatible path must cost less than Chainlink's own.
    function test_Gas_FunctionsAdapterVersusChainlink() public {
        s_agentId = s_router.registerAgent(bytes(RUNTIME_STAND_IN), 0, false);
        FunctionsRouterAdapter adapter = new FunctionsRouterAdapter(address(s_router), s_agentId);
        FunctionsClientTestHelper client = new FunctionsClientTestHelper(address(adapter));
        FunctionsClientWithEmptyCallback emptyClient = new FunctionsClientWithEmptyCallback(address(adapter));
        uint64 subscription = adapter.createSubscriptionWithConsumer(address(client));
        adapter.addConsumer(subscription, address(emptyClient));
        _chainlinkFulfil(_chainlinkRequests(1));
        _adapterFulfil(_adapterRequest(emptyClient, subscription));

        uint256 chainlinkRequest = _chainlinkRequestGas();
        client.sendRequest(s_donId, SOURCE, new bytes(0), new string[](0), _bytesArgs(), subscription, CALLBACK_GAS);
        uint256 adapterRequest = vm.snapshotGasLastCall("ChainlinkComparison", "enclave adapter: request");

        uint256 chainlinkOne = _chainlinkFulfil(_chainlinkRequests(1));
        uint256 adapterOne = _adapterFulfil(_adapterRequest(emptyClient, subscription));
        vm.snapshotValue("ChainlinkComparison", "enclave adapter: fulfil 1", adapterOne);

        assertLt(adapterRequest, chainlinkRequest, "request through the adapter");
        assertLt(adapterOne, chainlinkOne, "fulfil 1 through the adapter");
    }

    // -- Chainlink Functions ----------------------------------------------------------------------

    /// @dev The request of the comparisons: the source with the 64-byte input as its bytesArg.
    function _chainlinkRequestGas() internal returns (uint256) {
        vm.prank(OWNER_ADDRESS, OWNER_ADDRESS);
        s_functionsClient.sendRequest(
            s_donId, SOURCE, new bytes(0), new string[](0), _bytesArgs(), s_subscriptionId, CALLBACK_GAS
        );
        return vm.snapshotGasLastCall("ChainlinkComparison", "chainlink: request");
    }

    function _bytesArgs() internal pure returns (bytes[] memory bytesArgs) {
        bytesArgs = new bytes[](1);
        bytesArgs[0] = INPUT_64;
    }

    function _chainlinkRequests(uint256 count) internal returns (uint256[] memory keys) {
        keys = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            keys[i] = s_nextKey++;
            vm.recordLogs();
            vm.prank(OWNER_ADDRESS, OWNER_ADDRESS);
            bytes32 requestId =
                s_emptyClient.sendSimpleRequestWithJavaScript(SOURCE, s_subscriptionId, s_donId, CALLBACK_GAS);
            Vm.Log[] memory entries = vm.getRecordedLogs();
            (,,,,,,, FunctionsResponse.Commitment memory commitment) = abi.decode(
                entries[0].data,
                (address, uint64, address, bytes, uint16, bytes32, uint64, FunctionsResponse.Commitment)
            );
            s_requests[keys[i]].requestId = requestId;
            s_requests[keys[i]].commitment = commitment;
        }
    }

    /// @dev Transmits one OCR report fulfilling `keys`; returns the transmit's execution gas.
    function _chainlinkFulfil(uint256[] memory keys) internal returns (uint256) {
        string[] memory results = new string[](keys.length);
        bytes[] memory errors = new bytes[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            results[i] = "hello world";
        }
        Report memory report = _buildAndSignReport(keys, results, errors);
        vm.prank(NOP_TRANSMITTER_ADDRESS_1);
        s_functionsCoordinator.transmit(report.reportContext, report.report, report.rs, report.ss, report.vs);
        return vm.lastCallGas().gasTotalUsed;
    }

    // -- Enclave Agents ---------------------------------------------------------------------------

    function _enclaveRequests(uint256 count) internal returns (AgentResult[] memory results) {
        results = new AgentResult[](count);
        for (uint256 i; i < count; ++i) {
            vm.prank(address(s_empty));
            uint256 requestId = s_router.request(s_agentId, INPUT_64, CALLBACK_GAS);
            RequestCommitment memory commitment = RequestCommitment({
                agentId: s_agentId,
                codeHash: keccak256("export default async (input) => input.bytes;"),
                inputHash: keccak256(INPUT_64),
                consumer: address(s_empty),
                fee: 0,
                callbackGasLimit: CALLBACK_GAS,
                createdAt: uint48(block.number),
                deadline: uint48(block.timestamp + 15 minutes),
                nonce: 0,
                price: 0,
                operatorFee: 0,
                subscriptionId: 0,
                assignee: address(0),
                assignedUntil: 0,
                currency: Currency.ETH
            });
            while (s_router.requestIdOf(commitment) != requestId) {
                ++commitment.nonce;
            }
            results[i] = AgentResult(commitment, AgentStatus.OK, "hello world");
        }
    }

    // -- FunctionsRouterAdapter -------------------------------------------------------------------

    /// @dev The runtime agent's code only names it here (the answer is made up below).
    string internal constant RUNTIME_STAND_IN = "export default async () => 0; // the Functions runtime";

    function _adapterRequest(FunctionsClientWithEmptyCallback client, uint64 subscription)
        internal
        returns (AgentResult memory result)
    {
        vm.recordLogs();
        client.sendSimpleRequestWithJavaScript(SOURCE, subscription, s_donId, CALLBACK_GAS);
        Vm.Log[] memory entries = vm.getRecordedLogs();
        for (uint256 i; i < entries.length; ++i) {
            if (entries[i].emitter != address(s_router)) continue;
            // The fields after codeHash and input: callback gas, deadline, nonce, assignment and
            // the charge (whose amounts are 0 here, as the gas price is).
            (bytes32 codeHash, bytes memory input, uint32 callbackGas, uint48 deadline, uint32 nonce,,,) = abi.decode(
                entries[i].data, (bytes32, bytes, uint32, uint48, uint32, address, uint48, IAgentRouter.Charge)
            );
            RequestCommitment memory commitment = RequestCommitment({
                agentId: s_agentId,
                codeHash: codeHash,
                inputHash: keccak256(input),
                consumer: address(uint160(uint256(entries[i].topics[3]))),
                fee: 0,
                callbackGasLimit: callbackGas,
                createdAt: uint48(block.number),
                deadline: deadline,
                nonce: nonce,
                price: 0,
                operatorFee: 0,
                subscriptionId: subscription,
                assignee: address(0),
                assignedUntil: 0,
                currency: Currency.ETH
            });
            return AgentResult(commitment, AgentStatus.OK, abi.encode(bytes("hello world"), bytes("")));
        }
        revert("no AgentRequested log");
    }

    function _adapterFulfil(AgentResult memory result) internal returns (uint256) {
        AgentResult[] memory one = new AgentResult[](1);
        one[0] = result;
        return _enclaveFulfil(one, false);
    }

    function _enclaveFulfil(AgentResult[] memory results, bool batch) internal returns (uint256) {
        if (batch) {
            (bytes32 r, bytes32 vs) = vm.signCompact(CLUSTER_KEY, s_router.batchDigest(results, 1));
            vm.prank(NOP_TRANSMITTER_ADDRESS_1);
            // A result that was not delivered would be measured as a cheaper one.
            assertEq(s_router.fulfillBatch(results, BatchSignature(1, r, vs)), results.length, "all delivered");
        } else {
            SignedAgentResult[] memory signed = new SignedAgentResult[](results.length);
            for (uint256 i; i < results.length; ++i) {
                AgentResult memory result = results[i];
                (bytes32 r, bytes32 vs) = vm.signCompact(CLUSTER_KEY, s_router.resultDigest(result, 1));
                signed[i] = SignedAgentResult(result, 1, r, vs);
            }
            vm.prank(NOP_TRANSMITTER_ADDRESS_1);
            assertEq(s_router.fulfill(signed), results.length, "all delivered");
        }
        return vm.lastCallGas().gasTotalUsed;
    }
}
