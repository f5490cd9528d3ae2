// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {FunctionsRouterAdapter} from "../../src/compat/FunctionsRouterAdapter.sol";
import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {AgentResult, AgentStatus, RequestCommitment, SignedAgentResult} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";

/// @notice A Functions client that records the gas it got, then burns all but `keep` of it, and
///         marks that it ran (its mark survives only if the adapter's callback does not revert).
contract BurningClient {
    FunctionsRouterAdapter public immutable ADAPTER;
    uint256 public gasAtEntry;
    bool public ran;
    uint256 public keep = 2_000;
    bool public bomb;

    constructor(FunctionsRouterAdapter adapter) {
        ADAPTER = adapter;
    }

    function setBomb(bool b) external {
        bomb = b;
    }

    function ask(uint64 sub, uint32 gasLimit) external returns (bytes32) {
        return ADAPTER.sendRequest(sub, hex"6c616e6775616765", 1, gasLimit, "don");
    }

    function handleOracleFulfillment(bytes32, bytes memory, bytes memory) external {
        gasAtEntry = gasleft();
        ran = true;
        if (bomb) {
            // return as much data as its gas allows, hoping the adapter copies it
            assembly {
                return(0, 300000)
            }
        }
        while (gasleft() > keep) {}
    }
}

contract AdapterAttacks is RouterSetup {
    FunctionsRouterAdapter internal adapter;
    uint256 internal runtime;
    uint64 internal sub;
    BurningClient internal client;
    address internal constant SUB_OWNER = address(0x5B0B);

    function setUp() public override {
        super.setUp();
        vm.prank(AGENT_OWNER);
        runtime = router.registerAgent("export default async function main(i){return i}", 0.0001 ether, false);
        adapter = new FunctionsRouterAdapter(address(router), runtime);
        client = new BurningClient(adapter);
        vm.prank(SUB_OWNER);
        sub = adapter.createSubscriptionWithConsumer(address(client));
        adapter.fundSubscription{value: 1 ether}(sub);
    }

    function _ask(uint32 gasLimit) internal returns (RequestCommitment memory c) {
        vm.txGasPrice(1 gwei);
        uint256 id = uint256(client.ask(sub, gasLimit));
        bytes memory input = abi.encodePacked(SUB_OWNER, hex"6c616e6775616765");
        uint32 g = gasLimit + adapter.CALLBACK_OVERHEAD_GAS();
        c = _commitmentOf(
            id,
            runtime,
            router.getAgent(runtime).codeHash,
            address(adapter),
            input,
            g,
            router.estimateCost(runtime, g, 1 gwei),
            sub
        );
    }

    function _deliver(RequestCommitment memory c, bytes memory output) internal returns (bool callbackOk) {
        vm.roll(block.number + 1);
        vm.recordLogs();
        _fulfill(_one(_ok(c, output)));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != IAgentRouter.RequestFulfilled.selector) continue;
            (, callbackOk,,) = abi.decode(logs[i].data, (AgentStatus, bool, uint96, uint96));
        }
    }

    /// @dev The runtime's answer with a response as large as a Functions source can make it by
    ///      forging the runtime's output (functions_forge_answer.py): the router's 4096-byte cap.
    function _bigAnswer() internal pure returns (bytes memory) {
        return abi.encode(new bytes(3900), bytes(""));
    }

    function test_Attack_BigAnswerClientThatUsesItsGas() public {
        RequestCommitment memory c = _ask(300_000);
        bool ok = _deliver(c, _bigAnswer());
        emit log_named_uint("client gas at entry", client.gasAtEntry());
        emit log_named_string("adapter callback ok", ok ? "yes" : "no");
        emit log_named_string("client's effects kept", client.ran() ? "yes" : "no");
    }

    function test_Control_SmallAnswerClientThatUsesItsGas() public {
        RequestCommitment memory c = _ask(300_000);
        bool ok = _deliver(c, abi.encode(new bytes(256), bytes("")));
        emit log_named_uint("client gas at entry", client.gasAtEntry());
        emit log_named_string("adapter callback ok", ok ? "yes" : "no");
        emit log_named_string("client's effects kept", client.ran() ? "yes" : "no");
        assertTrue(ok);
        assertTrue(client.ran());
    }

    /// @dev Was: the adapter copied a client's return data, so a 300 KB return ran its callback
    ///      out of gas and the client's effects were rolled back. It copies none now.
    function test_AReturnBombDoesNotRunTheAdapterOutOfGas() public {
        client.setBomb(true);
        RequestCommitment memory c = _ask(300_000);
        bool ok = _deliver(c, abi.encode(bytes("r"), bytes("")));
        assertTrue(ok, "the adapter's callback completed");
        assertTrue(client.ran(), "and the client's callback ran and kept its effects");
    }

    /// @dev A request nobody answers does not lock the subscription: anyone cancels it on the
    ///      router after its deadline and the owner cancels the subscription.
    function test_Attack_StuckSubscription() public {
        RequestCommitment memory c = _ask(100_000);
        vm.prank(SUB_OWNER);
        vm.expectRevert(FunctionsRouterAdapter.CannotRemoveWithPendingRequests.selector);
        adapter.cancelSubscription(sub, SUB_OWNER);
        vm.warp(block.timestamp + 16 minutes);
        vm.prank(address(0xCAFE));
        router.cancel(c);
        uint256 before = SUB_OWNER.balance;
        vm.prank(SUB_OWNER);
        adapter.cancelSubscription(sub, SUB_OWNER);
        assertEq(SUB_OWNER.balance - before, 1 ether, "all of it back");
    }
}
