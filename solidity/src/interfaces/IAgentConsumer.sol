// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title IAgentConsumer
/// @notice Implemented by contracts that receive agent results from the AgentRouter.
interface IAgentConsumer {
    /// @notice Called by the router with the verified result of a request.
    /// @dev Runs with exactly the request's `callbackGasLimit`. A revert here does not undo the
    ///      fulfilment: the request is closed and the fee is paid either way.
    /// @param requestId The id returned by `AgentRouter.request`.
    /// @param status How the agent run ended.
    /// @param output The agent's output bytes, or an error message when `status` is not OK.
    function onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) external;
}
