// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AgentRegistry} from "../src/AgentRegistry.sol";
import {IAgentRegistry} from "../src/interfaces/IAgentRegistry.sol";

contract RegistrySetup is Test {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    bytes internal constant CODE = "export default async function main(input) { return input; }";

    AgentRegistry internal registry;
    uint256 internal agentId;

    function setUp() public virtual {
        registry = new AgentRegistry();
        vm.prank(ALICE);
        agentId = registry.registerAgent(CODE, 1 gwei, false);
    }
}

contract AgentRegistry_RegisterAgent is RegistrySetup {
    function test_RegisterAgent_StoresRecordAndPublishesCode() public {
        bytes memory code = "export default async () => 42;";
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentCodePublished(keccak256(code), code);
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentRegistered(2, BOB, keccak256(code), 5);
        vm.prank(BOB);
        uint256 id = registry.registerAgent(code, 5, false);

        IAgentRegistry.Agent memory agent = registry.getAgent(id);
        assertEq(id, 2);
        assertEq(agent.codeHash, keccak256(code));
        assertEq(agent.price, 5);
        assertEq(agent.version, 1);
        assertEq(agent.owner, BOB);
        assertFalse(agent.paused);
        assertEq(registry.agentCount(), 2);
    }

    function test_RegisterAgent_Restricted() public {
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentRestrictionSet(2, true);
        uint256 id = registry.registerAgent(CODE, 0, true);
        assertTrue(registry.getAgent(id).restricted);
        assertFalse(registry.isConsumerAllowed(id, BOB));
    }

    function test_RegisterAgent_RevertWhen_CodeEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.InvalidCodeSize.selector, 0, 64 * 1024));
        registry.registerAgent("", 0, false);
    }

    function test_RegisterAgent_RevertWhen_CodeTooLarge() public {
        bytes memory code = new bytes(64 * 1024 + 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.InvalidCodeSize.selector, code.length, 64 * 1024));
        registry.registerAgent(code, 0, false);
    }

    function testFuzz_RegisterAgent_HashesWhateverCode(bytes calldata code, uint96 price) public {
        vm.assume(code.length > 0 && code.length <= 64 * 1024);
        uint256 id = registry.registerAgent(code, price, false);
        assertEq(registry.getAgent(id).codeHash, keccak256(code));
        assertEq(registry.getAgent(id).price, price);
    }
}

contract AgentRegistry_PublishVersion is RegistrySetup {
    function test_PublishVersion_ReplacesCodeAndBumpsVersion() public {
        bytes memory code = "export default async () => 'v2';";
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentCodePublished(keccak256(code), code);
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentVersionPublished(agentId, 2, keccak256(code));
        vm.prank(ALICE);
        assertEq(registry.publishVersion(agentId, code), 2);
        assertEq(registry.getAgent(agentId).codeHash, keccak256(code));
    }

    function test_PublishVersion_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.publishVersion(agentId, CODE);
    }

    function test_PublishVersion_RevertWhen_AgentUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentNotFound.selector, 7));
        registry.publishVersion(7, CODE);
    }

    function test_PublishVersion_RevertWhen_CodeEmpty() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.InvalidCodeSize.selector, 0, 64 * 1024));
        registry.publishVersion(agentId, "");
    }
}

contract AgentRegistry_Pause is RegistrySetup {
    function test_PauseAgent_AndUnpause() public {
        vm.startPrank(ALICE);
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentPaused(agentId);
        registry.pauseAgent(agentId);
        assertTrue(registry.getAgent(agentId).paused);
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentUnpaused(agentId);
        registry.unpauseAgent(agentId);
        assertFalse(registry.getAgent(agentId).paused);
    }

    function test_PauseAgent_RevertWhen_AlreadyPaused() public {
        vm.startPrank(ALICE);
        registry.pauseAgent(agentId);
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentPauseUnchanged.selector, agentId, true));
        registry.pauseAgent(agentId);
    }

    function test_UnpauseAgent_RevertWhen_NotPaused() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentPauseUnchanged.selector, agentId, false));
        registry.unpauseAgent(agentId);
    }

    function test_PauseAgent_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.pauseAgent(agentId);
    }
}

contract AgentRegistry_SetPrice is RegistrySetup {
    function test_SetPrice_ACutTakesEffectAtOnce() public {
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentPriceSet(agentId, 9, uint48(block.timestamp));
        vm.prank(ALICE);
        registry.setPrice(agentId, 9);
        assertEq(registry.getAgent(agentId).price, 9);
    }

    function test_SetPrice_ARiseWaitsItsDelay() public {
        uint48 effectiveAt = uint48(block.timestamp) + registry.PRICE_RISE_DELAY();
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentPriceSet(agentId, 2 gwei, effectiveAt);
        vm.prank(ALICE);
        registry.setPrice(agentId, 2 gwei);
        assertEq(registry.getAgent(agentId).price, 1 gwei, "requests pay the price they could see");
        // A second rise before the first took effect keeps the price requests pay until then.
        vm.warp(effectiveAt - 1);
        vm.prank(ALICE);
        registry.setPrice(agentId, 3 gwei);
        assertEq(registry.getAgent(agentId).price, 1 gwei);
        vm.warp(effectiveAt + registry.PRICE_RISE_DELAY());
        assertEq(registry.getAgent(agentId).price, 3 gwei);
    }

    function test_SetPrice_ACutDuringARiseTakesEffectAtOnce() public {
        vm.startPrank(ALICE);
        registry.setPrice(agentId, 5 gwei);
        registry.setPrice(agentId, 0.5 gwei);
        vm.stopPrank();
        assertEq(registry.getAgent(agentId).price, 0.5 gwei);
    }

    function test_SetPrice_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.setPrice(agentId, 9);
    }
}

contract AgentRegistry_AllowList is RegistrySetup {
    function test_AllowList_RestrictThenAllow() public {
        vm.startPrank(ALICE);
        assertTrue(registry.isConsumerAllowed(agentId, BOB), "open agents take everyone");
        registry.setRestricted(agentId, true);
        assertFalse(registry.isConsumerAllowed(agentId, BOB));
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentConsumerSet(agentId, BOB, true);
        registry.setConsumerAllowed(agentId, BOB, true);
        assertTrue(registry.isConsumerAllowed(agentId, BOB));
        registry.setConsumerAllowed(agentId, BOB, false);
        assertFalse(registry.isConsumerAllowed(agentId, BOB));
        registry.setRestricted(agentId, false);
        assertTrue(registry.isConsumerAllowed(agentId, BOB));
    }

    function test_SetConsumerAllowed_RevertWhen_ZeroAddress() public {
        vm.prank(ALICE);
        vm.expectRevert(IAgentRegistry.ZeroAddress.selector);
        registry.setConsumerAllowed(agentId, address(0), true);
    }

    function test_SetRestricted_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.setRestricted(agentId, true);
    }

    function test_SetConsumerAllowed_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.setConsumerAllowed(agentId, BOB, true);
    }
}

contract AgentRegistry_Ownership is RegistrySetup {
    function test_Ownership_TwoStepTransfer() public {
        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentOwnershipTransferStarted(agentId, ALICE, BOB);
        vm.prank(ALICE);
        registry.transferAgentOwnership(agentId, BOB);
        assertEq(registry.getAgent(agentId).owner, ALICE, "nothing changes before acceptance");

        vm.expectEmit(address(registry));
        emit IAgentRegistry.AgentOwnershipTransferred(agentId, ALICE, BOB);
        vm.prank(BOB);
        registry.acceptAgentOwnership(agentId);
        assertEq(registry.getAgent(agentId).owner, BOB);
        assertEq(registry.getAgent(agentId).pendingOwner, address(0));

        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, ALICE));
        vm.prank(ALICE);
        registry.setPrice(agentId, 0);
    }

    function test_AcceptAgentOwnership_RevertWhen_NotPendingOwner() public {
        vm.prank(ALICE);
        registry.transferAgentOwnership(agentId, BOB);
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotPendingAgentOwner.selector, agentId, address(this)));
        registry.acceptAgentOwnership(agentId);
    }

    function test_AcceptAgentOwnership_RevertWhen_AgentUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentNotFound.selector, 5));
        registry.acceptAgentOwnership(5);
    }

    function test_TransferAgentOwnership_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.NotAgentOwner.selector, agentId, BOB));
        vm.prank(BOB);
        registry.transferAgentOwnership(agentId, BOB);
    }

    function test_GetAgent_RevertWhen_Unknown() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentRegistry.AgentNotFound.selector, 3));
        registry.getAgent(3);
    }
}
