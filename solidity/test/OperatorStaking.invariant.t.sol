// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

import {AgentRouter} from "../src/AgentRouter.sol";
import {OperatorStaking} from "../src/OperatorStaking.sol";
import {EchoConsumer} from "../src/examples/EchoConsumer.sol";
import {IAgentStaking} from "../src/interfaces/IAgentStaking.sol";
import {
    AgentResult,
    AgentStatus,
    Currency,
    RequestCommitment,
    SignedAgentResult
} from "../src/libraries/AgentTypes.sol";
import {EnclaveToken} from "../src/token/EnclaveToken.sol";
import {RouterSetup} from "./utils/RouterSetup.sol";

/// @notice Drives stakes (stake, unstake, withdraw, claim rewards) and requests delivered by any
///         operator at any time, so that assignments are missed and slashed.
contract StakingHandler is CommonBase, StdCheats, StdUtils {
    AgentRouter internal immutable router;
    OperatorStaking internal immutable staking;
    EnclaveToken internal immutable token;
    EchoConsumer internal immutable consumer;
    uint256 internal immutable agentId;
    uint256 internal immutable clusterKey;
    address internal immutable minter;
    address[] public operators;
    RequestCommitment[] internal open;

    uint256 public ghostMinted;
    uint256 public ghostRequests;
    uint256 public ghostDelivered;
    uint256 public ghostOut; // tokens that left the staking contract

    constructor(
        AgentRouter router_,
        OperatorStaking staking_,
        EnclaveToken token_,
        uint256 agentId_,
        uint256 clusterKey_,
        address minter_
    ) {
        (router, staking, token, agentId, clusterKey, minter) =
        (router_, staking_, token_, agentId_, clusterKey_, minter_);
        consumer = new EchoConsumer(address(router_));
        operators.push(address(0x0A1));
        operators.push(address(0x0A2));
        operators.push(address(0x0A3));
        // One operator active from the start, so that requests can be made at once.
        vm.prank(minter_);
        token_.mint(operators[0], 100 ether);
        ghostMinted += 100 ether;
        vm.startPrank(operators[0]);
        token_.approve(address(staking_), 100 ether);
        staking_.stake(100 ether);
        vm.stopPrank();
    }

    function stake(uint256 who, uint96 amount) external {
        _stake(operators[who % operators.length], uint96(bound(amount, 1, 300 ether)));
    }

    function _stake(address operator, uint96 amount) internal {
        vm.prank(minter);
        token.mint(operator, amount);
        ghostMinted += amount;
        vm.startPrank(operator);
        token.approve(address(staking), amount);
        staking.stake(amount);
        vm.stopPrank();
    }

    function unstake(uint256 who, uint96 amount) external {
        address operator = operators[who % operators.length];
        amount = uint96(bound(amount, 0, staking.getOperator(operator).staked));
        vm.prank(operator);
        staking.requestUnstake(amount);
    }

    function withdraw(uint256 who) external {
        address operator = operators[who % operators.length];
        IAgentStaking.OperatorInfo memory info = staking.getOperator(operator);
        if (info.unstaking != 0 && block.timestamp >= info.unstakeAvailableAt) {
            vm.prank(operator);
            staking.withdrawUnstaked(operator);
            ghostOut += info.unstaking;
        }
        uint256 rewards = staking.slashRewardsOf(operator);
        if (rewards != 0) {
            vm.prank(operator);
            staking.withdrawSlashRewards(operator);
            ghostOut += rewards;
        }
    }

    function request(bytes32 input) external {
        if (staking.activeOperators().length == 0) _stake(operators[uint256(input) % operators.length], 100 ether);
        vm.deal(address(consumer), 1 ether);
        vm.prank(address(consumer));
        uint256 requestId = router.request{value: 0.001 ether}(agentId, abi.encode(input), 100_000);
        RequestCommitment memory c = RequestCommitment({
            agentId: agentId,
            codeHash: router.getAgent(agentId).codeHash,
            inputHash: keccak256(abi.encode(input)),
            consumer: address(consumer),
            fee: 0.001 ether,
            callbackGasLimit: 100_000,
            createdAt: uint48(block.number),
            deadline: uint48(block.timestamp + router.getConfig().requestTimeout),
            nonce: 0,
            price: router.getAgent(agentId).price,
            operatorFee: 0,
            subscriptionId: 0,
            assignee: address(0),
            assignedUntil: 0,
            currency: Currency.ETH
        });
        while (true) {
            (c.assignee, c.assignedUntil) = (address(0), 0);
            (c.assignee, c.assignedUntil) = staking.assign(uint256(keccak256(abi.encode(c))));
            if (router.requestIdOf(c) == requestId) break;
            require(c.nonce < 4096, "no nonce gives the request's id");
            ++c.nonce;
        }
        open.push(c);
        ++ghostRequests;
    }

    /// @dev Some operator (maybe the assignee, maybe not, maybe after the window) delivers one.
    function deliver(uint256 which, uint256 who, uint32 wait) external {
        if (open.length == 0) return;
        uint256 index = which % open.length;
        RequestCommitment memory c = open[index];
        address operator = operators[who % operators.length];
        if (!staking.isActive(operator)) return;
        vm.warp(block.timestamp + bound(wait, 0, 60));
        AgentResult memory result = AgentResult(c, AgentStatus.OK, "ok");
        (bytes32 r, bytes32 vs) = vm.signCompact(clusterKey, router.resultDigest(result, 1));
        SignedAgentResult[] memory batch = new SignedAgentResult[](1);
        batch[0] = SignedAgentResult(result, 1, r, vs);
        vm.prank(operator);
        router.fulfill(batch);
        if (!router.isOpen(router.requestIdOf(c))) {
            open[index] = open[open.length - 1];
            open.pop();
            ++ghostDelivered;
        }
    }

    function operatorCount() external view returns (uint256) {
        return operators.length;
    }
}

contract OperatorStaking_Invariants is RouterSetup {
    StakingHandler internal handler;
    OperatorStaking internal staking;
    EnclaveToken internal token;

    function setUp() public override {
        super.setUp();
        token = new EnclaveToken(OWNER);
        staking = new OperatorStaking(OWNER, token, IAgentStaking.StakingConfig(100 ether, 30 ether, 30, 1 days));
        router = new AgentRouter(OWNER, tee, staking, IERC20(address(0)));
        vm.prank(OWNER);
        staking.bindRouter(address(router));
        vm.prank(AGENT_OWNER);
        agentId = router.registerAgent(AGENT_CODE, PRICE, false);
        handler = new StakingHandler(router, staking, token, agentId, CLUSTER_KEY_1, OWNER);
        targetContract(address(handler));
        excludeSender(address(router));
        excludeSender(address(staking));
    }

    /// @notice Tokens are conserved: the staking contract holds exactly every operator's stake,
    ///         what they are unstaking and what slashing paid them, and nothing else; what was
    ///         minted is there or was withdrawn.
    function invariant_TokensAreConserved() public view {
        uint256 accounted;
        for (uint256 i; i < handler.operatorCount(); ++i) {
            address operator = handler.operators(i);
            IAgentStaking.OperatorInfo memory info = staking.getOperator(operator);
            accounted += uint256(info.staked) + info.unstaking + staking.slashRewardsOf(operator);
        }
        assertEq(token.balanceOf(address(staking)), accounted);
        assertEq(handler.ghostMinted(), accounted + handler.ghostOut());
    }

    /// @notice The active set is exactly the operators staking at least the minimum.
    function invariant_ActiveMeansStakedEnough() public view {
        (, IAgentStaking.StakingConfig memory config) = staking.getStaking();
        uint256 active;
        for (uint256 i; i < handler.operatorCount(); ++i) {
            IAgentStaking.OperatorInfo memory info = staking.getOperator(handler.operators(i));
            assertEq(info.active, info.staked >= config.minStake);
            if (info.active) ++active;
        }
        assertEq(staking.activeOperators().length, active);
    }

    /// @notice The run did drive stakes and deliveries (a handler that always returned early
    ///         would prove nothing).
    function afterInvariant() external view {
        assertGt(handler.ghostMinted(), 0, "nobody staked");
        assertGt(handler.ghostRequests() + handler.ghostDelivered(), 0, "no request was made");
    }
}
