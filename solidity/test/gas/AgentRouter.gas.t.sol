// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    RequestCommitment,
    SignedAgentResult
} from "../../src/libraries/AgentTypes.sol";
import {EmptyConsumer, Store32Consumer} from "../mocks/BenchConsumers.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

/// @notice Gas of the hot paths, written to snapshots/AgentRouterGas.json by `forge test`.
/// @dev Execution gas only (no 21,000 base, no calldata); benchmarks/gas.py gives receipts.
contract AgentRouterGas is RouterSetup {
    bytes internal constant INPUT_64 =
        hex"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

    function setUp() public override {
        super.setUp();
        // Steady state: the transmitter already holds a balance.
        (, RequestCommitment memory c) = _request("warm-up");
        _fulfill(_one(_ok(c, "")));
    }

    function test_Gas_Request64ByteInput() public {
        vm.deal(address(consumer), PRICE);
        vm.prank(address(consumer));
        router.request{value: PRICE}(agentId, INPUT_64, 100_000);
        vm.snapshotGasLastCall("AgentRouterGas", "request, 64-byte input");
    }

    function test_Gas_Fulfill() public {
        address empty = address(new EmptyConsumer());
        address store = address(new Store32Consumer());
        for (uint256 size = 1; size <= 50; size = size == 1 ? 10 : size * 5) {
            _measure(empty, size, "empty callback");
            _measure(store, size, "callback stores 32 bytes");
        }
    }

    function _measure(address receiver, uint256 size, string memory label) internal {
        SignedAgentResult[] memory signed = new SignedAgentResult[](size);
        AgentResult[] memory batch = new AgentResult[](size);
        for (uint256 i; i < size; ++i) {
            (, RequestCommitment memory c) = _requestFrom(receiver, abi.encode(i), 100_000);
            signed[i] = _ok(c, abi.encode(keccak256(abi.encode(i))));
        }
        vm.prank(TRANSMITTER);
        router.fulfill(signed);
        vm.snapshotGasLastCall("AgentRouterGas", string.concat("fulfill x", vm.toString(size), ", ", label));

        for (uint256 i; i < size; ++i) {
            (, RequestCommitment memory c) = _requestFrom(receiver, abi.encode(i), 100_000);
            batch[i] = AgentResult(c, AgentStatus.OK, abi.encode(keccak256(abi.encode(i))));
        }
        (bytes32 r, bytes32 vs) = vm.signCompact(CLUSTER_KEY_1, router.batchDigest(batch, 1));
        vm.prank(TRANSMITTER);
        router.fulfillBatch(batch, BatchSignature(1, r, vs));
        vm.snapshotGasLastCall("AgentRouterGas", string.concat("fulfillBatch x", vm.toString(size), ", ", label));
    }
}
