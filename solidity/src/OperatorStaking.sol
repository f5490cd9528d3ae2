// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IAgentStaking} from "./interfaces/IAgentStaking.sol";

/// @title OperatorStaking
/// @notice Operators' stakes in a token, the set that a router assigns requests from, and
///         slashing for missed assignments.
/// @dev A contract of its own rather than a part of the router: the router is near the 24 KiB
///      code size limit. It calls `assign` for each request, `isActive` once per delivery
///      transaction and `slash` for a missed assignment; a router built without one (zero)
///      lets anyone transmit and assigns nothing.
contract OperatorStaking is IAgentStaking, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct Operator {
        uint96 staked;
        uint96 unstaking;
        uint48 unstakeAvailableAt;
        uint32 position; // 1-based index in s_active; 0 when not active
    }

    /// @notice The token operators stake.
    IERC20 public immutable STAKE_TOKEN;
    /// @notice How many of a fleet member's missed assignments its fleet covers unslashed, from
    ///         its admission (or its last stake): a member that keeps missing is slashed again,
    ///         and leaves the active set as any operator does, so that requesters do not wait out
    ///         the window of a replica nobody looks after.
    uint256 public constant FORGIVEN_MISSES = 32;

    address private s_router;
    StakingConfig private s_config;
    address[] private s_active;
    mapping(address operator => Operator) private s_operators;
    mapping(address operator => uint256) private s_slashRewards;
    // A fleet: the transmitters one operator runs. A member is in its lead's fleet while it has
    // chosen that lead and the lead admits it.
    mapping(address member => address lead) private s_chosenLead;
    mapping(address lead => mapping(address member => bool)) private s_admitted;
    mapping(address lead => uint256) private s_admittedCount;
    mapping(address account => uint256) private s_forgiven;

    /// @param owner Who sets the rules and binds the router.
    /// @param token The token operators stake.
    /// @param config The rules.
    constructor(address owner, IERC20 token, StakingConfig memory config) Ownable(owner) {
        STAKE_TOKEN = token;
        _setConfig(config);
    }

    /// @inheritdoc IAgentStaking
    function bindRouter(address router) external onlyOwner {
        if (s_router != address(0)) revert RouterAlreadyBound();
        s_router = router;
        emit RouterBound(router);
    }

    /// @inheritdoc IAgentStaking
    function setStakingConfig(StakingConfig calldata config) external onlyOwner {
        _setConfig(config);
        emit StakingConfigSet(config);
    }

    /// @inheritdoc IAgentStaking
    function stake(uint96 amount) external nonReentrant {
        Operator storage operator = s_operators[msg.sender];
        uint96 staked = operator.staked + amount;
        operator.staked = staked;
        s_forgiven[msg.sender] = 0;
        STAKE_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(msg.sender, amount, staked);
        _updateActive(msg.sender, operator);
    }

    /// @inheritdoc IAgentStaking
    function requestUnstake(uint96 amount) external {
        Operator storage operator = s_operators[msg.sender];
        if (amount > operator.staked) revert InsufficientStake(operator.staked, amount);
        operator.staked -= amount;
        operator.unstaking += amount;
        // A new request restarts the delay for all that is unstaking: the operator stays
        // answerable for the assignments it still had when it asked.
        uint48 availableAt = uint48(block.timestamp + s_config.unstakeDelay);
        operator.unstakeAvailableAt = availableAt;
        emit UnstakeRequested(msg.sender, amount, availableAt);
        _updateActive(msg.sender, operator);
    }

    /// @inheritdoc IAgentStaking
    function withdrawUnstaked(address to) external nonReentrant {
        Operator storage operator = s_operators[msg.sender];
        uint96 amount = operator.unstaking;
        if (amount == 0) revert NothingUnstaked(msg.sender);
        if (block.timestamp < operator.unstakeAvailableAt) revert UnstakeNotReady(operator.unstakeAvailableAt);
        operator.unstaking = 0;
        emit UnstakeWithdrawn(msg.sender, to, amount);
        STAKE_TOKEN.safeTransfer(to, amount);
    }

    /// @inheritdoc IAgentStaking
    function withdrawSlashRewards(address to) external nonReentrant {
        uint256 amount = s_slashRewards[msg.sender];
        if (amount == 0) revert NoSlashRewards(msg.sender);
        s_slashRewards[msg.sender] = 0;
        emit SlashRewardWithdrawn(msg.sender, to, amount);
        STAKE_TOKEN.safeTransfer(to, amount);
    }

    /// @inheritdoc IAgentStaking
    function assign(uint256 seed) external view returns (address assignee, uint48 assignedUntil) {
        uint256 count = s_active.length;
        if (count == 0) return (address(0), 0);
        return (s_active[seed % count], uint48(block.timestamp + s_config.assignmentWindow));
    }

    /// @inheritdoc IAgentStaking
    function isActive(address transmitter) external view returns (bool) {
        return s_operators[transmitter].position != 0;
    }

    /// @inheritdoc IAgentStaking
    function slash(uint256 requestId, address assignee, address deliverer) external {
        if (msg.sender != s_router) revert NotRouter(msg.sender);
        if (_fleetOf(assignee) == _fleetOf(deliverer) && s_forgiven[assignee] < FORGIVEN_MISSES) {
            ++s_forgiven[assignee];
            emit SlashWaivedWithinFleet(requestId, assignee, deliverer);
            return;
        }
        Operator storage operator = s_operators[assignee];
        (uint96 staked, uint96 unstaking) = (operator.staked, operator.unstaking);
        uint256 amount = s_config.slashAmount;
        // What is staked pays first, then what is unstaking (still slashable in its delay).
        if (amount > uint256(staked) + unstaking) amount = uint256(staked) + unstaking;
        if (amount == 0) return;
        if (amount <= staked) {
            operator.staked = staked - uint96(amount);
        } else {
            operator.staked = 0;
            operator.unstaking = unstaking - uint96(amount - staked);
        }
        s_slashRewards[deliverer] += amount;
        emit OperatorSlashed(requestId, assignee, deliverer, amount);
        _updateActive(assignee, operator);
    }

    /// @inheritdoc IAgentStaking
    function admitFleetMember(address member, bool admitted) external {
        // One level only: a fleet's lead follows no lead of its own (letting go always works).
        if (admitted && s_chosenLead[msg.sender] != address(0)) revert FleetOfAFleet(msg.sender);
        if (admitted) s_forgiven[member] = 0;
        _setAdmitted(msg.sender, member, admitted);
    }

    /// @inheritdoc IAgentStaking
    function chooseFleetLead(address lead) external {
        // One level only: the lead follows nobody, and whoever has admitted members leads.
        if (lead != address(0) && (lead == msg.sender || s_chosenLead[lead] != address(0))) revert FleetOfAFleet(lead);
        if (lead != address(0) && s_admittedCount[msg.sender] != 0) revert FleetOfAFleet(msg.sender);
        // Leaving ends the admission too: coming back takes the lead's consent again, so a
        // member cannot step out to slash its fleet and back in to be covered by it.
        address previous = s_chosenLead[msg.sender];
        if (previous != address(0)) _setAdmitted(previous, msg.sender, false);
        s_chosenLead[msg.sender] = lead;
        emit FleetLeadChosen(msg.sender, lead);
    }

    /// @inheritdoc IAgentStaking
    function fleetOf(address account) external view returns (address lead) {
        return _fleetOf(account);
    }

    /// @inheritdoc IAgentStaking
    function getStaking() external view returns (IERC20 token, StakingConfig memory config) {
        return (STAKE_TOKEN, s_config);
    }

    /// @inheritdoc IAgentStaking
    function getOperator(address operator) external view returns (OperatorInfo memory info) {
        Operator memory o = s_operators[operator];
        return OperatorInfo({
            staked: o.staked, unstaking: o.unstaking, unstakeAvailableAt: o.unstakeAvailableAt, active: o.position != 0
        });
    }

    /// @inheritdoc IAgentStaking
    function activeOperators() external view returns (address[] memory operators) {
        return s_active;
    }

    /// @inheritdoc IAgentStaking
    function slashRewardsOf(address operator) external view returns (uint256 amount) {
        return s_slashRewards[operator];
    }

    function _setAdmitted(address lead, address member, bool admitted) private {
        if (s_admitted[lead][member] == admitted) return;
        s_admitted[lead][member] = admitted;
        if (admitted) ++s_admittedCount[lead];
        else --s_admittedCount[lead];
        emit FleetMemberAdmitted(lead, member, admitted);
    }

    function _fleetOf(address account) private view returns (address) {
        address lead = s_chosenLead[account];
        return lead != address(0) && s_admitted[lead][account] ? lead : account;
    }

    function _setConfig(StakingConfig memory config) private {
        if (config.minStake == 0 || config.assignmentWindow == 0) revert InvalidStakingConfig();
        s_config = config;
    }

    /// @dev Puts the operator in the active set when it stakes enough, takes it out when not.
    ///      A removal moves the last operator into its place: assignments already made are in
    ///      their commitments and do not move.
    function _updateActive(address account, Operator storage operator) private {
        bool enough = operator.staked >= s_config.minStake;
        uint32 position = operator.position;
        if (enough && position == 0) {
            s_active.push(account);
            operator.position = uint32(s_active.length);
            emit OperatorActive(account, true);
        } else if (!enough && position != 0) {
            address last = s_active[s_active.length - 1];
            s_active[position - 1] = last;
            s_operators[last].position = position;
            s_active.pop();
            operator.position = 0;
            emit OperatorActive(account, false);
        }
    }
}
