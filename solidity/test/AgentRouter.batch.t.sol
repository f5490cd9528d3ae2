// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    NotProcessedReason,
    RequestCommitment
} from "../src/libraries/AgentTypes.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice `fulfillBatch`: one signature of the cluster key over a whole batch.
contract AgentRouter_FulfillBatch is RouterSetup {
    function test_FulfillBatch_DeliversEveryResult() public {
        AgentResult[] memory results = _results(3);
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 1, results);
        vm.prank(TRANSMITTER);
        assertEq(router.fulfillBatch(results, signature), 3);
        assertEq(consumer.resultCount(), 3);
        assertEq(consumer.lastOutput(), results[2].output);
        assertEq(router.balanceOf(AGENT_OWNER), 3 * PRICE);
    }

    function test_FulfillBatch_RevertWhen_SignedByAnotherKey() public {
        AgentResult[] memory results = _results(2);
        BatchSignature memory signature = _batchSign(0xBAD, 1, results);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InvalidBatchSignature.selector, 1, vm.addr(0xBAD)));
        router.fulfillBatch(results, signature);
    }

    function test_FulfillBatch_RevertWhen_AResultIsTampered() public {
        AgentResult[] memory results = _results(2);
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 1, results);
        results[1].output = "pwned";
        vm.expectRevert();
        router.fulfillBatch(results, signature);
        assertEq(consumer.resultCount(), 0);
    }

    function test_FulfillBatch_RevertWhen_EpochUnknown() public {
        AgentResult[] memory results = _results(1);
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 5, results);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.InvalidBatchSignature.selector, 5, vm.addr(CLUSTER_KEY_1)));
        router.fulfillBatch(results, signature);
    }

    function test_FulfillBatch_RevertWhen_Empty() public {
        AgentResult[] memory results = new AgentResult[](0);
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 1, results);
        vm.expectRevert(IAgentRouter.EmptyBatch.selector);
        router.fulfillBatch(results, signature);
    }

    function test_FulfillBatch_SkipsStaleDuplicateAndExpired() public {
        (uint256 early, RequestCommitment memory c1) = _request("early");
        vm.warp(block.timestamp + 10 minutes);
        (uint256 fresh, RequestCommitment memory c2) = _request("fresh");
        vm.warp(c1.deadline + 1);
        _rotate(CLUSTER_KEY_2);
        (uint256 afterRotation, RequestCommitment memory c3) = _request("late");

        AgentResult[] memory results = new AgentResult[](4);
        results[0] = AgentResult(c1, AgentStatus.OK, "expired");
        results[1] = AgentResult(c2, AgentStatus.OK, "ok");
        results[2] = AgentResult(c2, AgentStatus.OK, "ok again");
        results[3] = AgentResult(c3, AgentStatus.OK, "epoch 1 is too old for this");
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 1, results);

        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(early, NotProcessedReason.REQUEST_EXPIRED);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(fresh, NotProcessedReason.UNKNOWN_REQUEST);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(afterRotation, NotProcessedReason.STALE_EPOCH);
        vm.prank(TRANSMITTER);
        assertEq(router.fulfillBatch(results, signature), 1);
        assertEq(consumer.lastOutput(), "ok");
    }

    function testFuzz_FulfillBatch_AnySize(uint8 size) public {
        size = uint8(bound(size, 1, 40));
        AgentResult[] memory results = _results(size);
        BatchSignature memory signature = _batchSign(CLUSTER_KEY_1, 1, results);
        vm.prank(TRANSMITTER);
        assertEq(router.fulfillBatch{gas: 25_000_000}(results, signature), size);
        assertEq(router.balanceOf(AGENT_OWNER), uint256(size) * PRICE);
    }

    function _results(uint256 count) internal returns (AgentResult[] memory results) {
        results = new AgentResult[](count);
        for (uint256 i; i < count; ++i) {
            (uint256 requestId, RequestCommitment memory commitment) = _request(abi.encode(i));
            results[i] = AgentResult(commitment, AgentStatus.OK, abi.encode("result", i));
        }
    }

    function _batchSign(uint256 key, uint64 epoch, AgentResult[] memory results)
        internal
        view
        returns (BatchSignature memory)
    {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, router.batchDigest(results, epoch));
        return BatchSignature(epoch, r, vs);
    }
}
