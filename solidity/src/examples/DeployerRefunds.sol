// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AgentConsumer} from "../AgentConsumer.sol";

/// @title DeployerRefunds
/// @notice What an example consumer's requests did not spend, and the fees of its cancelled
///         requests, come back to its balance at the router; its deployer takes them out.
abstract contract DeployerRefunds is AgentConsumer {
    /// @notice Only the deployer takes the refunds out.
    error NotDeployer(address caller);

    /// @notice Who deployed this consumer.
    address public immutable DEPLOYER = msg.sender;

    /// @notice Sends this consumer's balance at the router to `to`. Deployer only.
    /// @param to The recipient.
    function withdrawRefunds(address payable to) external {
        if (msg.sender != DEPLOYER) revert NotDeployer(msg.sender);
        _withdrawRefunds(to);
    }
}
