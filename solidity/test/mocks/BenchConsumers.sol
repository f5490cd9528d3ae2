// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentConsumer} from "../../src/interfaces/IAgentConsumer.sol";
import {AgentStatus} from "../../src/libraries/AgentTypes.sol";

/// @notice A consumer whose callback does nothing: fulfilment's own cost.
contract EmptyConsumer is IAgentConsumer {
    function onAgentResult(uint256, AgentStatus, bytes calldata) external {}
}

/// @notice A consumer whose callback stores 32 bytes of the output.
contract Store32Consumer is IAgentConsumer {
    mapping(uint256 requestId => bytes32) public stored;

    function onAgentResult(uint256 requestId, AgentStatus, bytes calldata output) external {
        // forge-lint: disable-next-line(unsafe-typecast)
        stored[requestId] = bytes32(output); // the first 32 bytes are all this benchmark keeps
    }
}

/// @notice A consumer that keeps only the hash of what it received, so any output fits its gas.
contract OutputHashConsumer is IAgentConsumer {
    bytes32 public outputHash;
    AgentStatus public status;

    function onAgentResult(uint256, AgentStatus status_, bytes calldata output) external {
        outputHash = keccak256(output);
        status = status_;
    }
}
