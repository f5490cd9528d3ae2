// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {DeployerRefunds} from "./DeployerRefunds.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title EchoConsumer
/// @notice The smallest useful consumer: requests an agent and keeps the last result. What its
///         requests do not spend comes back to its balance at the router, which its deployer
///         takes out (a local stack's deployer, as it is shared by everyone there).
contract EchoConsumer is DeployerRefunds {
    /// @notice Emitted when a result arrives.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param output The output.
    event ResultReceived(uint256 indexed requestId, AgentStatus status, bytes output);

    uint256 public lastRequestId;
    AgentStatus public lastStatus;
    bytes public lastOutput;
    uint256 public resultCount;

    /// @notice `askMany` was paid a value that its requests cannot share equally.
    /// @param value The value sent.
    /// @param requests How many requests it was for.
    error UnevenFee(uint256 value, uint256 requests);

    constructor(address router) AgentConsumer(router) {}

    /// @notice Requests `agentId` on `input`, paying `msg.value`.
    /// @param agentId The agent.
    /// @param input The input bytes.
    /// @param callbackGasLimit Gas for the callback.
    /// @return requestId The request's id.
    function ask(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId)
    {
        return _requestAgent(agentId, input, callbackGasLimit, msg.value);
    }

    /// @notice Requests `agentId` on `input`, charged to subscription `subscriptionId` (this
    ///         contract must be one of its consumers).
    /// @param subscriptionId The paying subscription.
    /// @param agentId The agent.
    /// @param input The input bytes.
    /// @param callbackGasLimit Gas for the callback.
    /// @return requestId The request's id.
    function askWithSubscription(uint64 subscriptionId, uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        returns (uint256 requestId)
    {
        return _requestAgentWithSubscription(subscriptionId, agentId, input, callbackGasLimit);
    }

    /// @notice Requests `agentId` once per input in one transaction, each paying an equal share
    ///         of `msg.value` (a load generator's way to make many requests cheaply).
    /// @param agentId The agent.
    /// @param inputs One input per request.
    /// @param callbackGasLimit Gas for each callback.
    /// @return requestIds The requests' ids, in the order of `inputs`.
    function askMany(uint256 agentId, bytes[] calldata inputs, uint32 callbackGasLimit)
        external
        payable
        returns (uint256[] memory requestIds)
    {
        uint256 count = inputs.length;
        if (count == 0 || msg.value % count != 0) revert UnevenFee(msg.value, count);
        uint256 fee = msg.value / count;
        requestIds = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            requestIds[i] = _requestAgent(agentId, inputs[i], callbackGasLimit, fee);
        }
    }

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        lastRequestId = requestId;
        lastStatus = status;
        lastOutput = output;
        ++resultCount;
        emit ResultReceived({requestId: requestId, status: status, output: output});
    }
}
