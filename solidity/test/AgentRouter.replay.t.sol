// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AgentRouter} from "../src/AgentRouter.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {
    AgentResult,
    SignedAgentResult,
    AgentStatus,
    NotProcessedReason,
    RequestCommitment
} from "../src/libraries/AgentTypes.sol";
import {EchoConsumer} from "../src/examples/EchoConsumer.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice A signed result is good for exactly one request on one router of one chain, one code
///         version and one key epoch, once.
contract AgentRouter_Replay is RouterSetup {
    function test_Replay_RejectedOnAnotherChain() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        SignedAgentResult memory result = _ok(commitment, "pong");
        vm.chainId(block.chainid + 1);
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Replay_RejectedOnAnotherRouter() public {
        AgentRouter other = new AgentRouter(OWNER, tee, IAgentStaking(address(0)), IERC20(address(0)));
        vm.prank(AGENT_OWNER);
        other.registerAgent(AGENT_CODE, PRICE, false);
        EchoConsumer otherConsumer = new EchoConsumer(address(other));
        (, RequestCommitment memory commitment) = _request("x");
        commitment.consumer = address(otherConsumer);
        SignedAgentResult memory result = _ok(commitment, "pong");

        // The same fields, so the same request id, opened on the second router.
        vm.deal(address(otherConsumer), PRICE);
        vm.prank(address(otherConsumer));
        uint256 requestId = other.request{value: PRICE}(agentId, "x", CALLBACK_GAS);
        assertEq(requestId, router.requestIdOf(commitment));

        vm.expectEmit(address(other));
        emit IAgentRouter.RequestNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(other.fulfill(_one(result)), 0);
    }

    function test_Replay_RejectedForAnotherRequest() public {
        (, RequestCommitment memory commitment) = _request("x");
        (uint256 second, RequestCommitment memory secondFields) = _request("x");
        assertEq(secondFields.nonce, commitment.nonce + 1, "equal requests in one block differ by nonce");
        SignedAgentResult memory result = _ok(commitment, "pong");
        result.result.commitment = secondFields;
        _expectNotProcessed(second, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Replay_RejectedForAnotherCodeHash() public {
        bytes32 oldCodeHash = keccak256(AGENT_CODE);
        bytes memory newCode = "export default async () => 'v2';";
        vm.prank(AGENT_OWNER);
        router.publishVersion(agentId, newCode);
        vm.deal(address(consumer), PRICE);
        vm.prank(address(consumer));
        uint256 requestId = router.request{value: PRICE}(agentId, "x", CALLBACK_GAS);
        RequestCommitment memory commitment =
            _commitmentOf(requestId, agentId, keccak256(newCode), address(consumer), "x", CALLBACK_GAS);

        // A worker that ran the old code signs the old code hash: the request committed to the new one.
        RequestCommitment memory oldFields = _copy(commitment);
        oldFields.codeHash = oldCodeHash;
        _expectNotProcessed(router.requestIdOf(oldFields), NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(_one(_ok(oldFields, "old"))), 0);

        // Its signature, moved onto the new code hash, no longer verifies.
        SignedAgentResult memory moved = _ok(oldFields, "old");
        moved.result.commitment = commitment;
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(moved)), 0);

        assertEq(_fulfill(_one(_ok(commitment, "new"))), 1);
    }

    function test_Replay_RejectedForAnotherEpoch() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        SignedAgentResult memory result = _ok(commitment, "pong");
        _rotate(CLUSTER_KEY_2);
        result.epoch = 2; // the epoch-1 signature claimed for epoch 2
        _expectNotProcessed(requestId, NotProcessedReason.INVALID_SIGNATURE);
        assertEq(_fulfill(_one(result)), 0);
    }

    function test_Replay_RejectedTheSecondTime() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        SignedAgentResult[] memory batch = _one(_ok(commitment, "pong"));
        assertEq(_fulfill(batch), 1);
        _expectNotProcessed(requestId, NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(batch), 0);
    }

    function test_Replay_RejectedTwiceInOneBatch() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        SignedAgentResult memory result = _ok(commitment, "pong");
        SignedAgentResult[] memory batch = new SignedAgentResult[](2);
        batch[0] = result;
        batch[1] = result;
        _expectNotProcessed(requestId, NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(batch), 1);
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
    }

    function _expectNotProcessed(uint256 requestId, NotProcessedReason reason) internal {
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(requestId, reason);
    }

    function _copy(RequestCommitment memory commitment) internal pure returns (RequestCommitment memory) {
        return abi.decode(abi.encode(commitment), (RequestCommitment));
    }
}

/// @notice Which epoch may answer which request across a rotation.
contract AgentRouter_EpochRotation is RouterSetup {
    function test_Rotation_OldEpochStillAnswersRequestsMadeBeforeIt() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _rotate(CLUSTER_KEY_2);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 1);
    }

    function test_Rotation_NewEpochAnswersRequestsMadeBeforeIt() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _rotate(CLUSTER_KEY_2);
        assertEq(_fulfill(_one(_signed(CLUSTER_KEY_2, 2, commitment, AgentStatus.OK, "pong"))), 1);
    }

    function test_Rotation_OldEpochRefusedForRequestsMadeAfterIt() public {
        _rotate(CLUSTER_KEY_2);
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(requestId, NotProcessedReason.STALE_EPOCH);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 0);
        assertEq(_fulfill(_one(_signed(CLUSTER_KEY_2, 2, commitment, AgentStatus.OK, "pong"))), 1);
    }

    function test_Rotation_EpochTwoBackIsRevoked() public {
        (uint256 requestId, RequestCommitment memory commitment) = _request("x");
        _rotate(CLUSTER_KEY_2);
        _rotate(CLUSTER_KEY_3);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(requestId, NotProcessedReason.STALE_EPOCH);
        assertEq(_fulfill(_one(_ok(commitment, "pong"))), 0);
        assertEq(_fulfill(_one(_signed(CLUSTER_KEY_3, 3, commitment, AgentStatus.OK, "pong"))), 1);
    }

    function test_Rotation_BatchMixingEpochs() public {
        (uint256 before, RequestCommitment memory c1) = _request("x");
        _rotate(CLUSTER_KEY_2);
        (uint256 afterwards, RequestCommitment memory c2) = _request("y");
        SignedAgentResult[] memory batch = new SignedAgentResult[](3);
        batch[0] = _ok(c1, "old key, old request");
        batch[1] = _ok(c2, "old key, new request");
        batch[2] = _signed(CLUSTER_KEY_2, 2, c2, AgentStatus.OK, "new key");
        assertEq(_fulfill(batch), 2);
        assertEq(consumer.lastOutput(), "new key");
    }
}
