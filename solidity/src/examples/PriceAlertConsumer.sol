// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {DeployerRefunds} from "./DeployerRefunds.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title PriceAlertConsumer
/// @notice Raises an alert when the price-alert agent reports a move beyond its threshold.
contract PriceAlertConsumer is DeployerRefunds {
    /// @notice Emitted on every check.
    /// @param requestId The request.
    /// @param moved Whether the price moved beyond the threshold since the previous check.
    /// @param price The price, 8 decimals.
    /// @param previous The price at the previous check, 8 decimals (0 for the first).
    event PriceChecked(uint256 indexed requestId, bool moved, uint256 price, uint256 previous);

    /// @notice The callback gas of each request: the value to send is the router's
    ///         `estimateCost(AGENT_ID, CALLBACK_GAS, gasPrice)`.
    uint32 public constant CALLBACK_GAS = 150_000;

    uint256 public immutable AGENT_ID;
    uint256 public alerts;
    uint256 public lastPrice;
    bool public lastMoved;

    constructor(address router, uint256 agentId) AgentConsumer(router) {
        AGENT_ID = agentId;
    }

    /// @notice Asks the agent to check the price now.
    /// @param query The agent's input, for example {"oracle": 1, "pair": "ETH-USD", "thresholdBps": 100}.
    /// @return requestId The request's id.
    function check(bytes calldata query) external payable returns (uint256 requestId) {
        return _requestAgent(AGENT_ID, query, CALLBACK_GAS, msg.value);
    }

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        if (status != AgentStatus.OK || output.length != 96) return;
        (bool moved, uint256 price, uint256 previous) = abi.decode(output, (bool, uint256, uint256));
        lastPrice = price;
        lastMoved = moved;
        if (moved) ++alerts;
        emit PriceChecked({requestId: requestId, moved: moved, price: price, previous: previous});
    }
}
