// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "enclave-agents/AgentConsumer.sol";
import {IAgentRouter} from "enclave-agents/interfaces/IAgentRouter.sol";
import {AgentStatus} from "enclave-agents/libraries/AgentTypes.sol";

/// @title WordCountConsumer
/// @notice Asks the word-count agent about a text and keeps its answer, which arrives
///         ABI-encoded as (uint256 words, string longest).
contract WordCountConsumer is AgentConsumer {
    /// @notice Emitted when an answer arrives.
    event Counted(uint256 indexed requestId, uint256 words, string longest);
    /// @notice Emitted when the agent's run failed; the message is the agent's error.
    event CountFailed(uint256 indexed requestId, AgentStatus status, string message);

    /// @notice Only the deployer may take back what requests did not spend.
    error NotDeployer(address caller);

    /// @notice The callback gas of a count.
    uint32 public constant CALLBACK_GAS = 200_000;

    uint256 public immutable agentId;
    address public immutable deployer;
    uint256 public words;
    string public longest;

    constructor(address router, uint256 agentId_) AgentConsumer(router) {
        agentId = agentId_;
        deployer = msg.sender;
    }

    /// @notice Requests a count of `text`, paying with the value sent: at least the most the
    ///         request can cost (`enclave agent cost AGENT --callback-gas 200000`, or the
    ///         router's `estimateCost`). What it does not cost comes back to this contract's
    ///         balance at the router.
    /// @return requestId The request's id.
    function count(string calldata text) external payable returns (uint256 requestId) {
        return _requestAgent(agentId, bytes(text), CALLBACK_GAS, msg.value);
    }

    /// @notice Sends what requests did not spend (and cancelled requests' fees) to `to`.
    function withdrawRefunds(address payable to) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        _withdrawRefunds(to);
    }

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        if (status != AgentStatus.OK) {
            emit CountFailed(requestId, status, string(output));
            return;
        }
        (words, longest) = abi.decode(output, (uint256, string));
        emit Counted(requestId, words, longest);
    }
}
