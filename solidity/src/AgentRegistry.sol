// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAgentRegistry} from "./interfaces/IAgentRegistry.sol";

/// @title AgentRegistry
/// @notice Agents, their code versions and who may call them.
/// @dev The router inherits this contract (as Chainlink's FunctionsRouter inherits its
///      subscriptions) so that a request reads the agent without an external call. The record
///      is laid out so that a request reads two slots: the code hash, then the packed terms.
contract AgentRegistry is IAgentRegistry {
    /// @notice Largest agent source accepted, in bytes.
    uint256 public constant MAX_CODE_SIZE = 64 * 1024;
    /// @notice How long a price rise waits before requests pay it: whoever holds a request in
    ///         the mempool (or a subscription, or an allowance of tokens) pays the price it saw.
    uint48 public constant PRICE_RISE_DELAY = 1 hours;

    /// @dev What a request needs besides the code hash, in one slot. While `priceRisesAt` is
    ///      ahead, requests pay the price before the rise (`s_priceBeforeRise`).
    struct AgentTerms {
        uint96 price;
        uint32 version;
        bool paused;
        bool restricted;
        uint48 priceRisesAt;
    }

    struct AgentRecord {
        bytes32 codeHash;
        AgentTerms terms;
        address owner;
        address pendingOwner;
    }

    uint256 private s_agentCount;
    mapping(uint256 agentId => AgentRecord) internal s_agents;
    mapping(uint256 agentId => mapping(address consumer => bool)) internal s_allowedConsumers;
    mapping(uint256 agentId => uint96 price) private s_priceBeforeRise;

    /// @dev A modifier's body is copied into every function that uses it; a function is not,
    ///      which keeps the router under the code size limit.
    modifier onlyAgentOwner(uint256 agentId) {
        _checkAgentOwner(agentId);
        _;
    }

    function _checkAgentOwner(uint256 agentId) private view {
        address owner = s_agents[agentId].owner;
        if (owner == address(0)) revert AgentNotFound(agentId);
        if (owner != msg.sender) revert NotAgentOwner(agentId, msg.sender);
    }

    /// @inheritdoc IAgentRegistry
    function registerAgent(bytes calldata code, uint96 price, bool restricted) external returns (uint256 agentId) {
        bytes32 codeHash = _publishCode(code);
        agentId = ++s_agentCount;
        s_agents[agentId] = AgentRecord({
            codeHash: codeHash,
            terms: AgentTerms({price: price, version: 1, paused: false, restricted: restricted, priceRisesAt: 0}),
            owner: msg.sender,
            pendingOwner: address(0)
        });
        emit AgentRegistered({agentId: agentId, owner: msg.sender, codeHash: codeHash, price: price});
        if (restricted) emit AgentRestrictionSet({agentId: agentId, restricted: true});
    }

    /// @inheritdoc IAgentRegistry
    function publishVersion(uint256 agentId, bytes calldata code)
        external
        onlyAgentOwner(agentId)
        returns (uint32 version)
    {
        bytes32 codeHash = _publishCode(code);
        AgentRecord storage agent = s_agents[agentId];
        agent.codeHash = codeHash;
        version = ++agent.terms.version;
        emit AgentVersionPublished({agentId: agentId, version: version, codeHash: codeHash});
    }

    /// @inheritdoc IAgentRegistry
    function pauseAgent(uint256 agentId) external onlyAgentOwner(agentId) {
        _setPaused(agentId, true);
        emit AgentPaused(agentId);
    }

    /// @inheritdoc IAgentRegistry
    function unpauseAgent(uint256 agentId) external onlyAgentOwner(agentId) {
        _setPaused(agentId, false);
        emit AgentUnpaused(agentId);
    }

    /// @inheritdoc IAgentRegistry
    function setPrice(uint256 agentId, uint96 price) external onlyAgentOwner(agentId) {
        AgentTerms storage terms = s_agents[agentId].terms;
        uint96 current = _priceOf(agentId, terms);
        uint48 effectiveAt = uint48(block.timestamp);
        if (price > current) {
            // A rise waits; what requests pay until then is the price they could see.
            effectiveAt += PRICE_RISE_DELAY;
            s_priceBeforeRise[agentId] = current;
            terms.priceRisesAt = effectiveAt;
        } else {
            terms.priceRisesAt = 0;
        }
        terms.price = price;
        emit AgentPriceSet({agentId: agentId, price: price, effectiveAt: effectiveAt});
    }

    /// @dev What a request of the agent pays its owner now.
    function _priceOf(uint256 agentId, AgentTerms memory terms) internal view returns (uint96) {
        if (block.timestamp < terms.priceRisesAt) return s_priceBeforeRise[agentId];
        return terms.price;
    }

    /// @inheritdoc IAgentRegistry
    function setRestricted(uint256 agentId, bool restricted) external onlyAgentOwner(agentId) {
        s_agents[agentId].terms.restricted = restricted;
        emit AgentRestrictionSet({agentId: agentId, restricted: restricted});
    }

    /// @inheritdoc IAgentRegistry
    function setConsumerAllowed(uint256 agentId, address consumer, bool allowed) external onlyAgentOwner(agentId) {
        if (consumer == address(0)) revert ZeroAddress();
        s_allowedConsumers[agentId][consumer] = allowed;
        emit AgentConsumerSet({agentId: agentId, consumer: consumer, allowed: allowed});
    }

    /// @inheritdoc IAgentRegistry
    function transferAgentOwnership(uint256 agentId, address newOwner) external onlyAgentOwner(agentId) {
        s_agents[agentId].pendingOwner = newOwner;
        emit AgentOwnershipTransferStarted({agentId: agentId, from: msg.sender, to: newOwner});
    }

    /// @inheritdoc IAgentRegistry
    function acceptAgentOwnership(uint256 agentId) external {
        AgentRecord storage agent = s_agents[agentId];
        if (agent.owner == address(0)) revert AgentNotFound(agentId);
        if (agent.pendingOwner != msg.sender) revert NotPendingAgentOwner(agentId, msg.sender);
        address previous = agent.owner;
        agent.owner = msg.sender;
        agent.pendingOwner = address(0);
        emit AgentOwnershipTransferred({agentId: agentId, from: previous, to: msg.sender});
    }

    /// @inheritdoc IAgentRegistry
    function getAgent(uint256 agentId) external view returns (Agent memory agent) {
        AgentRecord storage record = s_agents[agentId];
        if (record.owner == address(0)) revert AgentNotFound(agentId);
        AgentTerms memory terms = record.terms;
        agent = Agent({
            codeHash: record.codeHash,
            price: _priceOf(agentId, terms),
            version: terms.version,
            paused: terms.paused,
            restricted: terms.restricted,
            owner: record.owner,
            pendingOwner: record.pendingOwner
        });
    }

    /// @inheritdoc IAgentRegistry
    function isConsumerAllowed(uint256 agentId, address consumer) public view returns (bool allowed) {
        return !s_agents[agentId].terms.restricted || s_allowedConsumers[agentId][consumer];
    }

    /// @inheritdoc IAgentRegistry
    function agentCount() external view returns (uint256 count) {
        return s_agentCount;
    }

    function _publishCode(bytes calldata code) private returns (bytes32 codeHash) {
        if (code.length == 0 || code.length > MAX_CODE_SIZE) revert InvalidCodeSize(code.length, MAX_CODE_SIZE);
        codeHash = keccak256(code);
        emit AgentCodePublished({codeHash: codeHash, code: code});
    }

    function _setPaused(uint256 agentId, bool paused) private {
        AgentTerms storage terms = s_agents[agentId].terms;
        if (terms.paused == paused) revert AgentPauseUnchanged(agentId, paused);
        terms.paused = paused;
    }
}
