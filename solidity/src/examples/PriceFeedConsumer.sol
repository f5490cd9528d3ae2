// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";
import {DeployerRefunds} from "./DeployerRefunds.sol";
import {AgentStatus} from "../libraries/AgentTypes.sol";

/// @title PriceFeedConsumer
/// @notice Keeps a price with 8 decimals that a price-oracle agent reports as `abi.encode(uint256)`.
contract PriceFeedConsumer is DeployerRefunds {
    /// @notice Emitted when the price is updated.
    /// @param requestId The request that brought it.
    /// @param price The price, 8 decimals.
    event PriceUpdated(uint256 indexed requestId, uint256 price);
    /// @notice Emitted when the agent failed; the stored price is unchanged.
    /// @param requestId The request.
    /// @param status How the agent run ended.
    /// @param reason The agent's error message.
    event PriceUpdateFailed(uint256 indexed requestId, AgentStatus status, bytes reason);

    uint8 public constant DECIMALS = 8;
    /// @notice The callback gas of each request: the value to send is the router's
    ///         `estimateCost(AGENT_ID, CALLBACK_GAS, gasPrice)`.
    uint32 public constant CALLBACK_GAS = 100_000;

    uint256 public immutable AGENT_ID;
    uint256 public price;
    uint256 public updatedAt;

    constructor(address router, uint256 agentId) AgentConsumer(router) {
        AGENT_ID = agentId;
    }

    /// @notice Asks the agent for a fresh price of `pair` (for example "ETH/USD").
    /// @param pair The input handed to the agent.
    /// @return requestId The request's id.
    function requestPrice(bytes calldata pair) external payable returns (uint256 requestId) {
        return _requestAgent(AGENT_ID, pair, CALLBACK_GAS, msg.value);
    }

    function _onAgentResult(uint256 requestId, AgentStatus status, bytes calldata output) internal override {
        if (status != AgentStatus.OK || output.length != 32) {
            emit PriceUpdateFailed({requestId: requestId, status: status, reason: output});
            return;
        }
        price = abi.decode(output, (uint256));
        updatedAt = block.timestamp;
        emit PriceUpdated({requestId: requestId, price: price});
    }
}
