// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentConsumer} from "../../src/interfaces/IAgentConsumer.sol";
import {AgentRouter} from "../../src/AgentRouter.sol";
import {AgentResult, SignedAgentResult, AgentStatus, RequestCommitment} from "../../src/libraries/AgentTypes.sol";

/// @notice A consumer whose callback always reverts.
contract RevertingConsumer is IAgentConsumer {
    error Nope();

    function onAgentResult(uint256, AgentStatus, bytes calldata) external pure {
        revert Nope();
    }
}

/// @notice A consumer whose callback burns every unit of gas it is given.
contract GasBurningConsumer is IAgentConsumer {
    uint256 public gasSeen;

    function onAgentResult(uint256, AgentStatus, bytes calldata) external {
        gasSeen = gasleft();
        while (true) {}
    }
}

/// @notice A consumer that returns a huge revert reason, hoping the router copies it.
contract ReturnBombConsumer is IAgentConsumer {
    function onAgentResult(uint256, AgentStatus, bytes calldata) external pure {
        assembly {
            revert(0, 1000000)
        }
    }
}

/// @notice A consumer that records how much gas its callback received.
contract GasMeteringConsumer is IAgentConsumer {
    uint256 public gasSeen;

    function onAgentResult(uint256, AgentStatus, bytes calldata) external {
        gasSeen = gasleft();
    }
}

/// @notice A consumer whose callback re-enters the router: `fulfill`, `cancel` or `request`.
contract ReentrantConsumer is IAgentConsumer {
    enum Target {
        FULFILL,
        CANCEL,
        REQUEST
    }

    AgentRouter public immutable ROUTER;
    Target public target;
    SignedAgentResult internal replay;
    uint256 public agentId;
    bool public reentrySucceeded;
    uint256 public chainedRequestId;

    constructor(AgentRouter router) payable {
        ROUTER = router;
    }

    function arm(Target target_, SignedAgentResult calldata replay_, uint256 agentId_) external {
        target = target_;
        replay = replay_;
        agentId = agentId_;
    }

    function request(uint256 agentId_, bytes calldata input, uint32 gasLimit) external payable returns (uint256) {
        return ROUTER.request{value: msg.value}(agentId_, input, gasLimit);
    }

    function onAgentResult(uint256, AgentStatus, bytes calldata) external {
        if (target == Target.FULFILL) {
            SignedAgentResult[] memory batch = new SignedAgentResult[](1);
            batch[0] = replay;
            ROUTER.fulfill(batch);
            reentrySucceeded = true;
        } else if (target == Target.CANCEL) {
            ROUTER.cancel(replay.result.commitment);
            reentrySucceeded = true;
        } else {
            chainedRequestId = ROUTER.request{value: address(this).balance}(agentId, "again", 100_000);
            reentrySucceeded = true;
        }
    }
}
