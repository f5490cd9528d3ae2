// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {DeployerRefunds} from "./DeployerRefunds.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title AnswerConsumer
/// @notice Asks a language-model agent a question and keeps each answer as text.
contract AnswerConsumer is DeployerRefunds {
    /// @notice Emitted when an answer arrives.
    /// @param requestId The request.
    /// @param answer The agent's answer (UTF-8).
    event Answered(uint256 indexed requestId, string answer);
    /// @notice Emitted when the agent failed.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param reason The agent's error message.
    event AnswerFailed(uint256 indexed requestId, AgentStatus status, string reason);

    /// @notice The callback gas of each request: the value to send is the router's
    ///         `estimateCost(AGENT_ID, CALLBACK_GAS, gasPrice)`.
    uint32 public constant CALLBACK_GAS = 500_000;

    uint256 public immutable AGENT_ID;
    mapping(uint256 requestId => string) public answers;
    uint256 public lastRequestId;

    constructor(address router, uint256 agentId) AgentConsumer(router) {
        AGENT_ID = agentId;
    }

    /// @notice Asks the agent; `input` is what it expects (for the llm example, a sealed envelope
    ///         carrying the prompt and the API key).
    /// @param input The agent's input.
    /// @return requestId The request's id.
    function ask(bytes calldata input) external payable returns (uint256 requestId) {
        requestId = _requestAgent(AGENT_ID, input, CALLBACK_GAS, msg.value);
        lastRequestId = requestId;
    }

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        if (status != AgentStatus.OK) {
            emit AnswerFailed({requestId: requestId, status: status, reason: string(output)});
            return;
        }
        answers[requestId] = string(output);
        emit Answered({requestId: requestId, answer: string(output)});
    }
}
