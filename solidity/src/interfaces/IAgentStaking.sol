// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IAgentStaking
/// @notice Operators stake a token to transmit. On a router bound to a staking contract, only
///         operators staking at least `minStake` may deliver results; each request is assigned,
///         when it is made, to one of them (its commitment names it and until when), who alone
///         may deliver it for `assignmentWindow` seconds; after that any staked operator may,
///         and the one that delivers a request its assignee missed takes `slashAmount` of the
///         assignee's stake. Unstaking waits `unstakeDelay` seconds, during which the stake can
///         still be slashed. An operator that runs several transmitters (bridge replicas, each
///         staking) joins them in a fleet: a fleet's member delivering another member's missed
///         assignment slashes nobody, since the stake would only move between its own keys.
interface IAgentStaking {
    /// @notice The staking rules.
    /// @param minStake Least stake of an operator that may transmit and be assigned requests.
    /// @param slashAmount What a missed assignment costs its assignee, paid to whoever delivered.
    /// @param assignmentWindow Seconds after a request during which only its assignee may deliver it.
    /// @param unstakeDelay Seconds an unstaked amount stays slashable before it can be withdrawn.
    struct StakingConfig {
        uint96 minStake;
        uint96 slashAmount;
        uint32 assignmentWindow;
        uint32 unstakeDelay;
    }

    /// @notice An operator's stake.
    /// @param staked Staked and counting towards `minStake`.
    /// @param unstaking Unstaked, withdrawable at `unstakeAvailableAt`, slashable until then.
    /// @param unstakeAvailableAt Unix time the unstaking amount can be withdrawn.
    /// @param active Whether it is in the set that requests are assigned from.
    struct OperatorInfo {
        uint96 staked;
        uint96 unstaking;
        uint48 unstakeAvailableAt;
        bool active;
    }

    /// @notice The router was bound already.
    error RouterAlreadyBound();
    /// @notice Only the bound router may slash.
    error NotRouter(address caller);
    /// @notice The transmitter does not stake enough to deliver results.
    error NotStaked(address transmitter);
    /// @notice More than the operator has staked.
    error InsufficientStake(uint256 staked, uint256 requested);
    /// @notice The unstaked amount is still in its delay.
    error UnstakeNotReady(uint48 availableAt);
    /// @notice Nothing unstaked to withdraw.
    error NothingUnstaked(address operator);
    /// @notice No slashing rewards to withdraw.
    error NoSlashRewards(address operator);
    /// @notice A staking setting is out of its range.
    error InvalidStakingConfig();
    /// @notice A fleet's lead cannot itself follow another lead, nor a member lead a fleet.
    error FleetOfAFleet(address account);

    /// @notice Emitted when the owner binds the router that assigns requests and slashes.
    event RouterBound(address router);
    /// @notice Emitted when the owner changes the staking rules.
    event StakingConfigSet(StakingConfig config);
    /// @notice Emitted when an operator stakes.
    event Staked(address indexed operator, uint256 amount, uint256 staked);
    /// @notice Emitted when an operator starts unstaking.
    event UnstakeRequested(address indexed operator, uint256 amount, uint48 availableAt);
    /// @notice Emitted when an operator withdraws what it unstaked.
    event UnstakeWithdrawn(address indexed operator, address to, uint256 amount);
    /// @notice Emitted when an operator joins or leaves the set requests are assigned from.
    event OperatorActive(address indexed operator, bool active);
    /// @notice Emitted when a request's assignee missed it and another delivered it.
    event OperatorSlashed(
        uint256 indexed requestId, address indexed assignee, address indexed deliverer, uint256 amount
    );
    /// @notice Emitted when an operator withdraws what slashing paid it.
    event SlashRewardWithdrawn(address indexed operator, address to, uint256 amount);
    /// @notice Emitted when a fleet's lead admits `member` (or lets it go, or the member leaves).
    event FleetMemberAdmitted(address indexed lead, address indexed member, bool admitted);
    /// @notice Emitted when `member` names the lead of the fleet it belongs to (zero: none).
    event FleetLeadChosen(address indexed member, address indexed lead);
    /// @notice Emitted when a member of the assignee's fleet delivered its missed request: no slash.
    event SlashWaivedWithinFleet(uint256 indexed requestId, address indexed assignee, address indexed deliverer);

    /// @notice Names the router that assigns requests from this set and slashes, once. Owner only.
    function bindRouter(address router) external;

    /// @notice Changes the staking rules (not the token). Owner only. An operator's place in the
    ///         active set follows a new `minStake` when its stake next changes.
    function setStakingConfig(StakingConfig calldata config) external;

    /// @notice Stakes `amount` of the token, taken from the caller (approve it first).
    function stake(uint96 amount) external;

    /// @notice Starts unstaking `amount`: slashable for `unstakeDelay` more seconds, then withdrawable.
    function requestUnstake(uint96 amount) external;

    /// @notice Sends what the caller unstaked, once its delay is over, to `to`.
    function withdrawUnstaked(address to) external;

    /// @notice Sends what slashing paid the caller to `to`.
    function withdrawSlashRewards(address to) external;

    /// @notice The operator a request with `seed` is assigned to, and until when it alone may
    ///         deliver it; none (zero) when no operator is active.
    function assign(uint256 seed) external view returns (address assignee, uint48 assignedUntil);

    /// @notice Whether `transmitter` stakes enough to deliver results.
    function isActive(address transmitter) external view returns (bool);

    /// @notice `assignee` missed request `requestId`, which `deliverer` delivered after its
    ///         window: moves up to `slashAmount` of its stake to the deliverer, unless both are
    ///         of one fleet and the assignee's misses forgiven since its admission (or its last
    ///         stake) are fewer than the staking contract's limit. Router only.
    function slash(uint256 requestId, address assignee, address deliverer) external;

    /// @notice Admits `member` to the caller's fleet, or lets it go. Both sides consent: the
    ///         member is in the fleet once it has also chosen the caller (`chooseFleetLead`), so
    ///         no stranger escapes slashing by an operator by joining its fleet uninvited.
    function admitFleetMember(address member, bool admitted) external;

    /// @notice Names the lead of the fleet the caller belongs to; zero leaves it. Leaving (or
    ///         naming another lead) ends the old lead's admission. A lead follows nobody, and an
    ///         account that has admitted members is a lead.
    function chooseFleetLead(address lead) external;

    /// @notice The fleet `account` is in: its lead's address, or its own when in none.
    function fleetOf(address account) external view returns (address lead);

    /// @notice The staking token and rules.
    function getStaking() external view returns (IERC20 token, StakingConfig memory config);

    /// @notice An operator's stake.
    function getOperator(address operator) external view returns (OperatorInfo memory info);

    /// @notice The operators requests are assigned from, in assignment order.
    function activeOperators() external view returns (address[] memory operators);

    /// @notice What slashing paid `operator`, in the token, not yet withdrawn.
    function slashRewardsOf(address operator) external view returns (uint256 amount);
}
