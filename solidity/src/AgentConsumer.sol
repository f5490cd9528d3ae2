// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentConsumer} from "./interfaces/IAgentConsumer.sol";
import {IAgentRouter} from "./interfaces/IAgentRouter.sol";
import {AgentStatus} from "./libraries/AgentTypes.sol";

/// @title AgentConsumer
/// @notice The base of a contract that asks agents for work: call `_requestAgent`, override
///         `_onAgentResult`.
abstract contract AgentConsumer is IAgentConsumer {
    /// @notice Thrown when someone other than the router delivers a result.
    error OnlyRouterCanFulfill(address caller);

    /// @notice The router this consumer talks to.
    IAgentRouter public immutable ROUTER;

    /// @param router The AgentRouter's address.
    constructor(address router) {
        ROUTER = IAgentRouter(router);
    }

    modifier onlyRouter() {
        if (msg.sender != address(ROUTER)) revert OnlyRouterCanFulfill(msg.sender);
        _;
    }

    /// @inheritdoc IAgentConsumer
    function onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) external onlyRouter {
        _onAgentResult(requestId, status, output);
    }

    /// @notice Asks the router to run an agent; `fee` wei leave this contract's balance.
    /// @param agentId The agent.
    /// @param input The input bytes for the agent's `main`.
    /// @param callbackGasLimit Gas for `_onAgentResult`.
    /// @param fee The most the request may cost, in wei: at least `_estimateCost`.
    /// @return requestId The request's id.
    function _requestAgent(uint256 agentId, bytes memory input, uint32 callbackGasLimit, uint256 fee)
        internal
        returns (uint256 requestId)
    {
        return ROUTER.request{value: fee}(agentId, input, callbackGasLimit);
    }

    /// @notice Asks the router to run an agent, charged to a subscription this contract is a
    ///         consumer of; it holds the request's most possible cost until it settles.
    /// @param subscriptionId The paying subscription.
    /// @param agentId The agent.
    /// @param input The input bytes for the agent's `main`.
    /// @param callbackGasLimit Gas for `_onAgentResult`.
    /// @return requestId The request's id.
    function _requestAgentWithSubscription(
        uint64 subscriptionId,
        uint256 agentId,
        bytes memory input,
        uint32 callbackGasLimit
    ) internal returns (uint256 requestId) {
        return ROUTER.requestWithSubscription(subscriptionId, agentId, input, callbackGasLimit);
    }

    /// @notice The most a request made now, in this transaction, can cost: what `_requestAgent`
    ///         must pay at least. What it does not cost comes back to this contract's balance.
    /// @param agentId The agent.
    /// @param callbackGasLimit Gas for `_onAgentResult`.
    /// @return cost In wei.
    function _estimateCost(uint256 agentId, uint32 callbackGasLimit) internal view returns (uint256 cost) {
        return ROUTER.estimateCost(agentId, callbackGasLimit, tx.gasprice);
    }

    /// @notice Withdraws what the router returned to this contract: the unspent part of its
    ///         requests' fees, and the fees of cancelled ones.
    /// @param to The recipient.
    function _withdrawRefunds(address payable to) internal {
        ROUTER.withdraw(to);
    }

    /// @notice Receives a verified result. Keep it within the request's callback gas limit.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param output The output, or an error message when `status` is not OK.
    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal virtual;
}
