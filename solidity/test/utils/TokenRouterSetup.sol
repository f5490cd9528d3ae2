// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {AgentStatus, SignedAgentResult} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "./RouterSetup.sol";

/// @notice The router's tests of fees in its token: an operator's fee charged, a subscriber
///         who signs permits, and deliveries read back from their RequestFulfilled logs.
abstract contract TokenRouterSetup is RouterSetup {
    uint256 internal constant SUBSCRIBER_KEY = 0x5AB;
    address internal subscriber;

    function setUp() public virtual override {
        super.setUp();
        _chargeAnOperatorFee();
        subscriber = vm.addr(SUBSCRIBER_KEY);
    }

    function _mint(address to, uint256 amount) internal {
        vm.prank(OWNER);
        feeToken.mint(to, amount);
    }

    /// @dev Fulfils `batch` at `gasPrice`; returns every RequestFulfilled's (gasReimbursed,
    ///      refunded, callback ran), in order.
    function _fulfilAt(SignedAgentResult[] memory batch, uint256 gasPrice)
        internal
        returns (uint96[] memory gasReimbursed, uint96[] memory refunded, bool[] memory callbackOk)
    {
        (gasReimbursed, refunded, callbackOk,) = _deliver(batch, gasPrice);
    }

    /// @dev Fulfils `batch` at `gasPrice`; returns the first delivery's (gasReimbursed, refunded).
    function _fulfilFirstAt(SignedAgentResult[] memory batch, uint256 gasPrice)
        internal
        returns (uint96 gasReimbursed, uint96 refunded)
    {
        (uint96[] memory gas, uint96[] memory back,, uint256 delivered) = _deliver(batch, gasPrice);
        require(delivered > 0, "no RequestFulfilled");
        return (gas[0], back[0]);
    }

    function _deliver(SignedAgentResult[] memory batch, uint256 gasPrice)
        private
        returns (uint96[] memory gasReimbursed, uint96[] memory refunded, bool[] memory callbackOk, uint256 k)
    {
        vm.txGasPrice(gasPrice);
        vm.recordLogs();
        _fulfill(batch);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        gasReimbursed = new uint96[](batch.length);
        refunded = new uint96[](batch.length);
        callbackOk = new bool[](batch.length);
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(router) || logs[i].topics[0] != IAgentRouter.RequestFulfilled.selector) {
                continue;
            }
            (, bool ok, uint96 gas, uint96 back) = abi.decode(logs[i].data, (AgentStatus, bool, uint96, uint96));
            (gasReimbursed[k], refunded[k], callbackOk[k]) = (gas, back, ok);
            ++k;
        }
    }
}
