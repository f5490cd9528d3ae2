// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AgentRouter} from "../src/AgentRouter.sol";
import {EchoConsumer} from "../src/examples/EchoConsumer.sol";
import {OperatorStaking} from "../src/OperatorStaking.sol";
import {IAgentRouter} from "../src/interfaces/IAgentRouter.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {NotProcessedReason, RequestCommitment, SignedAgentResult} from "../src/libraries/AgentTypes.sol";
import {EnclaveToken} from "../src/token/EnclaveToken.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice Operators stake to transmit; each request is assigned to one of them, who alone may
///         deliver it for a window; after it another may, and takes a slice of the assignee's
///         stake; unstaking waits out a delay during which the stake can still be slashed.
contract OperatorStaking_Test is RouterSetup {
    uint96 internal constant MIN_STAKE = 100 ether;
    uint96 internal constant SLASH = 10 ether;
    uint32 internal constant WINDOW = 30;
    uint32 internal constant DELAY = 1 days;
    address internal constant OTHER = address(0x7A46);

    EnclaveToken internal token;
    OperatorStaking internal staking;

    function setUp() public override {
        super.setUp();
        token = new EnclaveToken(OWNER);
        staking = new OperatorStaking(OWNER, token, IAgentStaking.StakingConfig(MIN_STAKE, SLASH, WINDOW, DELAY));
        router = new AgentRouter(OWNER, tee, staking, IERC20(address(0)));
        vm.prank(OWNER);
        staking.bindRouter(address(router));
        vm.prank(AGENT_OWNER);
        agentId = router.registerAgent(AGENT_CODE, PRICE, false);
        consumer = new EchoConsumer(address(router));
        _stake(TRANSMITTER, MIN_STAKE);
    }

    function _stake(address operator, uint96 amount) internal {
        vm.prank(OWNER);
        token.mint(operator, amount);
        vm.startPrank(operator);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    /// @dev A request and its fields: `_request` fills in whom the router assigned it to.
    function _requestAssigned(bytes memory input) internal returns (uint256 requestId, RequestCommitment memory c) {
        (requestId, c) = _request(input);
        assertEq(router.requestIdOf(c), requestId);
    }

    function _fulfillAs(address transmitter, RequestCommitment memory c) internal returns (uint256) {
        SignedAgentResult[] memory batch = _one(_ok(c, "pong")); // signed first: a prank covers one call
        vm.prank(transmitter);
        return router.fulfill(batch);
    }

    function test_OnlyStakedOperatorsTransmit() public {
        (, RequestCommitment memory c) = _requestAssigned("x");
        SignedAgentResult[] memory batch = _one(_ok(c, "pong"));
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.NotStaked.selector, address(0xBAD)));
        router.fulfill(batch);
        assertEq(_fulfillAs(TRANSMITTER, c), 1);
    }

    function test_ARequestIsAssignedToAnActiveOperator() public {
        _stake(OTHER, MIN_STAKE);
        for (uint256 i; i < 8; ++i) {
            (, RequestCommitment memory c) = _requestAssigned(abi.encode(i));
            assertTrue(c.assignee == TRANSMITTER || c.assignee == OTHER);
            assertEq(c.assignedUntil, block.timestamp + WINDOW);
        }
    }

    function test_WithinItsWindowOnlyTheAssigneeDelivers_AfterItAnotherDoesAndSlashes() public {
        _stake(OTHER, MIN_STAKE);
        RequestCommitment memory c;
        uint256 requestId;
        // A request assigned to TRANSMITTER, which then misses it.
        for (uint256 i;; ++i) {
            (requestId, c) = _requestAssigned(abi.encode("missed", i));
            if (c.assignee == TRANSMITTER) break;
        }
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(requestId, NotProcessedReason.NOT_ASSIGNEE);
        assertEq(_fulfillAs(OTHER, c), 0, "not OTHER's to deliver yet");

        vm.warp(c.assignedUntil + 1);
        vm.expectEmit(address(staking));
        emit IAgentStaking.OperatorSlashed(requestId, TRANSMITTER, OTHER, SLASH);
        assertEq(_fulfillAs(OTHER, c), 1);
        assertEq(staking.getOperator(TRANSMITTER).staked, MIN_STAKE - SLASH);
        assertFalse(staking.getOperator(TRANSMITTER).active, "below the minimum: no longer assigned or transmitting");
        assertEq(staking.slashRewardsOf(OTHER), SLASH);
        vm.prank(OTHER);
        staking.withdrawSlashRewards(OTHER);
        assertEq(token.balanceOf(OTHER), SLASH);
    }

    /// @dev A request assigned to `assignee`, its window over.
    function _missedBy(address assignee) internal returns (uint256 requestId, RequestCommitment memory c) {
        for (uint256 i;; ++i) {
            (requestId, c) = _requestAssigned(abi.encode("missed", assignee, i));
            if (c.assignee == assignee) break;
        }
        vm.warp(c.assignedUntil + 1);
    }

    function _fleet(address lead, address member) internal {
        vm.prank(lead);
        staking.admitFleetMember(member, true);
        vm.prank(member);
        staking.chooseFleetLead(lead);
    }

    /// @dev `deliverer` delivers a request `assignee` missed: the slash is waived, or taken.
    function _coverMissOf(address assignee, address deliverer, bool waived) internal {
        (uint256 requestId, RequestCommitment memory c) = _missedBy(assignee);
        vm.expectEmit(address(staking));
        if (waived) emit IAgentStaking.SlashWaivedWithinFleet(requestId, assignee, deliverer);
        else emit IAgentStaking.OperatorSlashed(requestId, assignee, deliverer, SLASH);
        assertEq(_fulfillAs(deliverer, c), 1);
    }

    function test_AFleetMemberDeliveringAnotherMembersMissedRequestSlashesNobody() public {
        _stake(OTHER, MIN_STAKE);
        _fleet(TRANSMITTER, OTHER);
        assertEq(staking.fleetOf(OTHER), TRANSMITTER);
        assertEq(staking.fleetOf(TRANSMITTER), TRANSMITTER);
        _coverMissOf(OTHER, TRANSMITTER, true);
        assertEq(staking.getOperator(OTHER).staked, MIN_STAKE, "the stake stays");
        assertTrue(staking.getOperator(OTHER).active);
        assertEq(staking.slashRewardsOf(TRANSMITTER), 0);
        // And the other way round: the member covers for its lead.
        _coverMissOf(TRANSMITTER, OTHER, true);
        assertEq(staking.getOperator(TRANSMITTER).staked, MIN_STAKE);
    }

    function test_AFleetNeedsBothSidesAndAnOutsiderIsStillSlashed() public {
        address outsider = address(0x0BAD);
        _stake(OTHER, MIN_STAKE);
        _stake(outsider, MIN_STAKE);
        // The outsider names TRANSMITTER as its lead, uninvited: not in its fleet.
        vm.prank(outsider);
        staking.chooseFleetLead(TRANSMITTER);
        assertEq(staking.fleetOf(outsider), outsider);
        _coverMissOf(outsider, TRANSMITTER, false);
        // An admission the member never accepted makes no fleet either.
        vm.prank(TRANSMITTER);
        staking.admitFleetMember(OTHER, true);
        assertEq(staking.fleetOf(OTHER), OTHER);
        // A member let go is slashed again.
        _fleet(TRANSMITTER, OTHER);
        vm.prank(TRANSMITTER);
        staking.admitFleetMember(OTHER, false);
        _coverMissOf(OTHER, TRANSMITTER, false);
    }

    function test_AFleetHasOneLevel() public {
        _fleet(TRANSMITTER, OTHER);
        vm.prank(address(0xC0FFEE));
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.FleetOfAFleet.selector, OTHER));
        staking.chooseFleetLead(OTHER);
        vm.prank(OTHER);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.FleetOfAFleet.selector, OTHER));
        staking.admitFleetMember(address(0xC0FFEE), true);
        vm.prank(TRANSMITTER);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.FleetOfAFleet.selector, TRANSMITTER));
        staking.chooseFleetLead(TRANSMITTER);
        // A lead with members follows nobody, whatever the order of the calls.
        vm.prank(address(0xC0FFEE));
        staking.admitFleetMember(TRANSMITTER, true);
        vm.prank(TRANSMITTER);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.FleetOfAFleet.selector, TRANSMITTER));
        staking.chooseFleetLead(address(0xC0FFEE));
        // Letting go always works, even for an account that follows a lead.
        vm.prank(OTHER);
        staking.admitFleetMember(address(0xC0FFEE), false);
        assertEq(staking.fleetOf(OTHER), TRANSMITTER);
    }

    function test_LeavingAFleetEndsTheAdmission_ComingBackNeedsTheLeadAgain() public {
        _stake(OTHER, MIN_STAKE);
        _fleet(TRANSMITTER, OTHER);
        vm.prank(OTHER);
        staking.chooseFleetLead(address(0));
        assertEq(staking.fleetOf(OTHER), OTHER);
        // Out of the fleet it slashes its old lead for a miss ...
        _coverMissOf(TRANSMITTER, OTHER, false);
        // ... and cannot step back in on its own to be covered unslashed.
        vm.prank(OTHER);
        staking.chooseFleetLead(TRANSMITTER);
        assertEq(staking.fleetOf(OTHER), OTHER, "the lead has not admitted it again");
    }

    function test_AFleetCoversAMembersMissesOnlyUpToItsLimit() public {
        _stake(OTHER, MIN_STAKE);
        _fleet(TRANSMITTER, OTHER);
        for (uint256 i; i < staking.FORGIVEN_MISSES(); ++i) {
            _coverMissOf(OTHER, TRANSMITTER, true);
        }
        // A member that keeps missing is slashed again, and leaves the active set.
        _coverMissOf(OTHER, TRANSMITTER, false);
        assertFalse(staking.getOperator(OTHER).active);
        // Its lead looking after it (admitting it again, or the member staking) starts afresh.
        _stake(OTHER, SLASH);
        _coverMissOf(OTHER, TRANSMITTER, true);
    }

    function test_TheAssigneeDeliveringLateIsNotSlashed() public {
        (, RequestCommitment memory c) = _requestAssigned("late");
        vm.warp(c.assignedUntil + 100);
        assertEq(_fulfillAs(TRANSMITTER, c), 1);
        assertEq(staking.getOperator(TRANSMITTER).staked, MIN_STAKE);
    }

    function test_UnstakingWaitsItsDelayAndStaysSlashable() public {
        _stake(OTHER, MIN_STAKE);
        RequestCommitment memory c;
        for (uint256 i;; ++i) {
            (, c) = _requestAssigned(abi.encode("unstaking", i));
            if (c.assignee == TRANSMITTER) break;
        }
        vm.startPrank(TRANSMITTER);
        staking.requestUnstake(MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.UnstakeNotReady.selector, uint48(block.timestamp + DELAY)));
        staking.withdrawUnstaked(TRANSMITTER);
        vm.stopPrank();
        assertFalse(staking.isActive(TRANSMITTER), "unstaked: no longer transmits");

        // Its assignment is still its own: missed, it is slashed from what is unstaking.
        vm.warp(c.assignedUntil + 1);
        assertEq(_fulfillAs(OTHER, c), 1);
        assertEq(staking.getOperator(TRANSMITTER).unstaking, MIN_STAKE - SLASH);

        vm.warp(block.timestamp + DELAY);
        vm.prank(TRANSMITTER);
        staking.withdrawUnstaked(TRANSMITTER);
        assertEq(token.balanceOf(TRANSMITTER), MIN_STAKE - SLASH);
    }

    function test_OnlyTheRouterSlashes() public {
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.NotRouter.selector, address(this)));
        staking.slash(1, TRANSMITTER, address(this));
        vm.prank(OWNER);
        vm.expectRevert(IAgentStaking.RouterAlreadyBound.selector);
        staking.bindRouter(address(this));
    }

    function test_WithNoActiveOperatorNobodyIsAssignedAndNobodyTransmits() public {
        vm.prank(TRANSMITTER);
        staking.requestUnstake(MIN_STAKE);
        (uint256 requestId, RequestCommitment memory c) = _request("orphan");
        assertEq(router.requestIdOf(c), requestId);
        assertEq(c.assignee, address(0), "assigned to nobody");
        SignedAgentResult[] memory batch = _one(_ok(c, "pong"));
        vm.prank(TRANSMITTER);
        vm.expectRevert(abi.encodeWithSelector(IAgentStaking.NotStaked.selector, TRANSMITTER));
        router.fulfill(batch);
        // Once an operator stakes again, it delivers the request.
        _stake(OTHER, MIN_STAKE);
        assertEq(_fulfillAs(OTHER, c), 1);
    }

    /// @notice Slashing never takes more than the assignee has, and moves tokens, never makes them.
    function testFuzz_SlashingConservesTheToken(uint96 staked, uint96 slash) public {
        staked = uint96(bound(staked, MIN_STAKE, 1_000 ether));
        slash = uint96(bound(slash, 0, 2_000 ether));
        vm.prank(OWNER);
        staking.setStakingConfig(IAgentStaking.StakingConfig(MIN_STAKE, slash, WINDOW, DELAY));
        _stake(OTHER, staked);
        RequestCommitment memory c;
        for (uint256 i;; ++i) {
            (, c) = _requestAssigned(abi.encode("fuzz", i));
            if (c.assignee == OTHER) break;
        }
        uint256 held = token.balanceOf(address(staking));
        vm.warp(c.assignedUntil + 1);
        assertEq(_fulfillAs(TRANSMITTER, c), 1);
        uint256 taken = slash > staked ? staked : slash;
        assertEq(staking.getOperator(OTHER).staked, staked - taken);
        assertEq(staking.slashRewardsOf(TRANSMITTER), taken);
        assertEq(token.balanceOf(address(staking)), held, "slashing moves stake into rewards, inside the contract");
    }

    function test_AFailedSlashNeverHoldsADeliveryBack() public {
        // A staking contract its owner never bound to the router: its slash reverts (NotRouter).
        OperatorStaking unbound =
            new OperatorStaking(OWNER, token, IAgentStaking.StakingConfig(MIN_STAKE, SLASH, WINDOW, DELAY));
        router = new AgentRouter(OWNER, tee, unbound, IERC20(address(0)));
        vm.prank(AGENT_OWNER);
        agentId = router.registerAgent(AGENT_CODE, PRICE, false);
        consumer = new EchoConsumer(address(router));
        staking = unbound;
        _stake(TRANSMITTER, MIN_STAKE);
        _stake(OTHER, MIN_STAKE);
        RequestCommitment memory c;
        for (uint256 i;; ++i) {
            (, c) = _requestAssigned(abi.encode("unbound", i));
            if (c.assignee == TRANSMITTER) break;
        }
        vm.warp(c.assignedUntil + 1);
        assertEq(_fulfillAs(OTHER, c), 1, "delivered");
        assertEq(unbound.getOperator(TRANSMITTER).staked, MIN_STAKE, "and nobody slashed");
    }
}
