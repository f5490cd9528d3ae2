// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title EchoConsumer
/// @notice The smallest useful consumer: requests an agent and keeps the last result.
contract EchoConsumer is AgentConsumer {
    /// @notice Emitted when a result arrives.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param output The output.
    event ResultReceived(uint256 indexed requestId, AgentStatus status, bytes output);

    uint256 public lastRequestId;
    AgentStatus public lastStatus;
    bytes public lastOutput;
    uint256 public resultCount;

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

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        lastRequestId = requestId;
        lastStatus = status;
        lastOutput = output;
        ++resultCount;
        emit ResultReceived({requestId: requestId, status: status, output: output});
    }
}
