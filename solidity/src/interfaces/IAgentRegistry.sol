// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAgentRegistry
/// @notice Agents: JavaScript programs published on-chain, with an owner, a price, versions,
///         a pause switch and an optional allow-list of consumer contracts.
/// @dev An agent's code is published in `AgentCodePublished`; workers read it from the logs
///      and check `keccak256(code) == codeHash` before running it.
interface IAgentRegistry {
    /// @notice An agent's record.
    /// @param codeHash keccak256 of the current version's code.
    /// @param price Minimum fee in wei for one request.
    /// @param version Starts at 1 and grows with every `publishVersion`.
    /// @param paused Paused agents accept no new requests.
    /// @param restricted When true, only allow-listed consumers may request the agent.
    /// @param owner Who manages the agent.
    /// @param pendingOwner The proposed next owner in a two-step transfer, or zero.
    struct Agent {
        bytes32 codeHash;
        uint96 price;
        uint32 version;
        bool paused;
        bool restricted;
        address owner;
        address pendingOwner;
    }

    /// @notice Thrown when an agent id was never registered.
    error AgentNotFound(uint256 agentId);
    /// @notice Thrown when someone other than the agent's owner manages it.
    error NotAgentOwner(uint256 agentId, address caller);
    /// @notice Thrown when someone other than the proposed owner accepts an agent's ownership.
    error NotPendingAgentOwner(uint256 agentId, address caller);
    /// @notice Thrown when published code is empty or larger than `MAX_CODE_SIZE`.
    error InvalidCodeSize(uint256 size, uint256 max);
    /// @notice Thrown when pausing a paused agent or unpausing a running one.
    error AgentPauseUnchanged(uint256 agentId, bool paused);
    /// @notice Thrown when a zero address is given where an account is needed.
    error ZeroAddress();

    /// @notice Emitted when an agent is registered.
    /// @param agentId The new agent's id.
    /// @param owner The agent's owner.
    /// @param codeHash keccak256 of its code.
    /// @param price Minimum fee in wei.
    event AgentRegistered(uint256 indexed agentId, address indexed owner, bytes32 codeHash, uint96 price);
    /// @notice Emitted with every code publication (registration or new version).
    /// @param codeHash keccak256 of `code`.
    /// @param code The agent's JavaScript source (UTF-8).
    event AgentCodePublished(bytes32 indexed codeHash, bytes code);
    /// @notice Emitted when an agent's owner publishes a new version.
    /// @param agentId The agent.
    /// @param version The new version number.
    /// @param codeHash keccak256 of the new code.
    event AgentVersionPublished(uint256 indexed agentId, uint32 version, bytes32 codeHash);
    /// @notice Emitted when an agent is paused.
    /// @param agentId The agent.
    event AgentPaused(uint256 indexed agentId);
    /// @notice Emitted when an agent is unpaused.
    /// @param agentId The agent.
    event AgentUnpaused(uint256 indexed agentId);
    /// @notice Emitted when an agent's price is set.
    /// @param agentId The agent.
    /// @param price The new minimum fee in wei.
    /// @param effectiveAt Unix time from which requests pay it: now for a cut, after
    ///        `PRICE_RISE_DELAY` for a rise.
    event AgentPriceSet(uint256 indexed agentId, uint96 price, uint48 effectiveAt);
    /// @notice Emitted when an agent is restricted to its allow-list or opened to all.
    /// @param agentId The agent.
    /// @param restricted True when only allow-listed consumers may call it.
    event AgentRestrictionSet(uint256 indexed agentId, bool restricted);
    /// @notice Emitted when a consumer is added to or removed from an agent's allow-list.
    /// @param agentId The agent.
    /// @param consumer The consumer contract.
    /// @param allowed Whether it may request the agent while the agent is restricted.
    event AgentConsumerSet(uint256 indexed agentId, address indexed consumer, bool allowed);
    /// @notice Emitted when an agent's owner proposes a new owner.
    /// @param agentId The agent.
    /// @param from The current owner.
    /// @param to The proposed owner.
    event AgentOwnershipTransferStarted(uint256 indexed agentId, address indexed from, address indexed to);
    /// @notice Emitted when the proposed owner accepts an agent.
    /// @param agentId The agent.
    /// @param from The previous owner.
    /// @param to The new owner.
    event AgentOwnershipTransferred(uint256 indexed agentId, address indexed from, address indexed to);

    /// @notice Registers an agent owned by the caller and publishes its code.
    /// @param code The agent's JavaScript source (an ES module exporting `default main`).
    /// @param price Minimum fee in wei for one request.
    /// @param restricted Whether only allow-listed consumers may request it.
    /// @return agentId The new agent's id, counting from 1.
    function registerAgent(bytes calldata code, uint96 price, bool restricted) external returns (uint256 agentId);

    /// @notice Publishes a new version of an agent; requests made afterwards run the new code.
    /// @param agentId The agent.
    /// @param code The new JavaScript source.
    /// @return version The new version number.
    function publishVersion(uint256 agentId, bytes calldata code) external returns (uint32 version);

    /// @notice Stops an agent from accepting new requests. Open requests are still answered.
    /// @param agentId The agent.
    function pauseAgent(uint256 agentId) external;

    /// @notice Lets a paused agent accept requests again.
    /// @param agentId The agent.
    function unpauseAgent(uint256 agentId) external;

    /// @notice Sets an agent's minimum fee: a cut at once, a rise after `PRICE_RISE_DELAY`
    ///         (until then requests pay the price before it, and `getAgent` shows that one).
    /// @param agentId The agent.
    /// @param price The new minimum fee in wei.
    function setPrice(uint256 agentId, uint96 price) external;

    /// @notice Restricts an agent to its allow-list, or opens it to every consumer.
    /// @param agentId The agent.
    /// @param restricted True to restrict.
    function setRestricted(uint256 agentId, bool restricted) external;

    /// @notice Adds a consumer to an agent's allow-list or removes it.
    /// @param agentId The agent.
    /// @param consumer The consumer contract.
    /// @param allowed True to allow.
    function setConsumerAllowed(uint256 agentId, address consumer, bool allowed) external;

    /// @notice Proposes a new owner for an agent; it takes over when it calls `acceptAgentOwnership`.
    /// @param agentId The agent.
    /// @param newOwner The proposed owner; zero cancels a pending proposal.
    function transferAgentOwnership(uint256 agentId, address newOwner) external;

    /// @notice Accepts an agent's ownership proposed to the caller.
    /// @param agentId The agent.
    function acceptAgentOwnership(uint256 agentId) external;

    /// @notice Returns an agent's record.
    /// @param agentId The agent.
    /// @return agent The record; reverts with `AgentNotFound` for an unknown id.
    function getAgent(uint256 agentId) external view returns (Agent memory agent);

    /// @notice Whether a consumer may request an agent right now (ignoring pause and price).
    /// @param agentId The agent.
    /// @param consumer The consumer contract.
    /// @return allowed True when the agent is open, or restricted with the consumer allow-listed.
    function isConsumerAllowed(uint256 agentId, address consumer) external view returns (bool allowed);

    /// @notice The number of agents registered so far; ids run from 1 to this number.
    /// @return count The agent count.
    function agentCount() external view returns (uint256 count);
}
