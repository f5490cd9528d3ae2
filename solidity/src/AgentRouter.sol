// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {AgentRegistry} from "./AgentRegistry.sol";
import {IAgentConsumer} from "./interfaces/IAgentConsumer.sol";
import {IAgentRouter} from "./interfaces/IAgentRouter.sol";
import {ITeeRegistry} from "./interfaces/ITeeRegistry.sol";
import {AgentResult, AgentStatus, NotProcessedReason, RequestCommitment} from "./libraries/AgentTypes.sol";

/// @title AgentRouter
/// @notice Takes agent requests from consumer contracts and delivers the results that the
///         cluster key signed back to them.
contract AgentRouter is IAgentRouter, AgentRegistry, EIP712, Ownable2Step, ReentrancyGuardTransient {
    /// @notice The EIP-712 type of a signed result.
    bytes32 public constant RESULT_TYPEHASH = keccak256(
        "AgentResult(uint256 requestId,uint256 agentId,bytes32 codeHash,uint8 status,bytes32 outputHash,uint64 epoch)"
    );

    /// @dev Gas that one delivery needs besides the callback itself (closing the commitment,
    ///      encoding the call, the event), kept free before the callback is started.
    uint256 private constant DELIVERY_OVERHEAD = 30_000;
    /// @dev Gas the exact-gas check itself may spend before the CALL opcode.
    uint256 private constant GAS_FOR_CALL_EXACT_CHECK = 5_000;

    /// @dev The settings and the request counter share one slot: a request reads it anyway.
    struct RouterState {
        uint64 nextRequestId;
        uint32 maxCallbackGasLimit;
        uint32 maxOutputSize;
        uint32 maxInputSize;
        uint32 requestTimeout;
    }

    /// @dev The signer of the last epoch seen in a batch: batches rarely mix epochs.
    struct EpochCache {
        uint64 epoch;
        address signer;
        uint48 validBefore;
    }

    /// @notice Where the key epochs live.
    ITeeRegistry public immutable TEE_REGISTRY;

    RouterState private s_state;
    mapping(uint256 requestId => bytes32 commitment) private s_commitments;
    mapping(address account => uint256 amount) private s_balances;

    /// @param owner Who may change the settings.
    /// @param teeRegistry The registry of key epochs.
    constructor(address owner, ITeeRegistry teeRegistry) EIP712("EnclaveAgents", "1") Ownable(owner) {
        TEE_REGISTRY = teeRegistry;
        s_state = RouterState({
            nextRequestId: 1,
            maxCallbackGasLimit: 2_500_000,
            maxOutputSize: 4 * 1024,
            maxInputSize: 32 * 1024,
            requestTimeout: 15 minutes
        });
    }

    /// @inheritdoc IAgentRouter
    function request(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId)
    {
        RouterState memory state = s_state;
        if (input.length > state.maxInputSize) revert InputTooLarge(input.length, state.maxInputSize);
        if (callbackGasLimit > state.maxCallbackGasLimit) {
            revert CallbackGasTooHigh(callbackGasLimit, state.maxCallbackGasLimit);
        }

        Agent storage agent = s_agents[agentId];
        bytes32 codeHash = agent.codeHash;
        if (codeHash == bytes32(0)) revert AgentNotFound(agentId);
        if (agent.paused) revert AgentIsPaused(agentId);
        if (agent.restricted && !s_allowedConsumers[agentId][msg.sender]) {
            revert ConsumerNotAllowed(agentId, msg.sender);
        }
        if (msg.value < agent.price) revert InsufficientFee(msg.value, agent.price);
        if (msg.value > type(uint96).max) revert FeeTooLarge(msg.value);

        requestId = state.nextRequestId;
        s_state.nextRequestId = state.nextRequestId + 1;

        RequestCommitment memory commitment = RequestCommitment({
            agentId: agentId,
            codeHash: codeHash,
            consumer: msg.sender,
            fee: uint96(msg.value),
            callbackGasLimit: callbackGasLimit,
            createdAt: uint48(block.number),
            deadline: uint48(block.timestamp + state.requestTimeout)
        });
        s_commitments[requestId] = keccak256(abi.encode(commitment));
        emit AgentRequested({
            requestId: requestId,
            agentId: agentId,
            consumer: msg.sender,
            codeHash: codeHash,
            input: input,
            fee: commitment.fee,
            callbackGasLimit: callbackGasLimit,
            createdAt: commitment.createdAt,
            deadline: commitment.deadline
        });
    }

    /// @inheritdoc IAgentRouter
    function fulfill(AgentResult[] calldata results) external nonReentrant returns (uint256 fulfilled) {
        if (results.length == 0) revert EmptyBatch();
        uint256 maxOutputSize = s_state.maxOutputSize;
        EpochCache memory cache;
        uint256 earned;
        uint256 freeMemory;
        assembly ("memory-safe") {
            freeMemory := mload(0x40)
        }

        for (uint256 i; i < results.length; ++i) {
            // Each delivery's scratch memory is dead once it is done; reusing it keeps the cost
            // of a batch linear in its size.
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
            AgentResult calldata result = results[i];
            (bool valid, NotProcessedReason reason) = _validate(result, maxOutputSize, cache);
            if (valid) {
                uint256 needed = result.commitment.callbackGasLimit;
                if (gasleft() > needed + needed / 63 + DELIVERY_OVERHEAD) {
                    delete s_commitments[result.requestId];
                    earned += result.commitment.fee;
                    _deliver(result);
                    ++fulfilled;
                    continue;
                }
                // The request stays open for a transmitter that sends more gas.
                reason = NotProcessedReason.INSUFFICIENT_GAS;
            }
            emit RequestNotProcessed({requestId: result.requestId, reason: reason});
        }
        if (earned != 0) s_balances[msg.sender] += earned;
    }

    /// @inheritdoc IAgentRouter
    function cancel(uint256 requestId, RequestCommitment calldata commitment) external nonReentrant {
        bytes32 stored = s_commitments[requestId];
        if (stored == bytes32(0)) revert UnknownRequest(requestId);
        if (keccak256(abi.encode(commitment)) != stored) revert CommitmentMismatch(requestId);
        if (block.timestamp <= commitment.deadline) revert RequestNotExpired(requestId, commitment.deadline);
        delete s_commitments[requestId];
        s_balances[commitment.consumer] += commitment.fee;
        emit RequestCancelled({requestId: requestId, consumer: commitment.consumer, fee: commitment.fee});
    }

    /// @inheritdoc IAgentRouter
    function withdraw(address payable to) external nonReentrant {
        uint256 amount = s_balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        s_balances[msg.sender] = 0;
        (bool sent,) = to.call{value: amount}("");
        if (!sent) revert WithdrawalFailed(to, amount);
        emit BalanceWithdrawn({account: msg.sender, to: to, amount: amount});
    }

    /// @inheritdoc IAgentRouter
    function setConfig(Config calldata config) external onlyOwner {
        if (
            config.maxCallbackGasLimit == 0 || config.maxOutputSize == 0 || config.maxInputSize == 0
                || config.requestTimeout == 0
        ) revert InvalidConfig();
        s_state = RouterState({
            nextRequestId: s_state.nextRequestId,
            maxCallbackGasLimit: config.maxCallbackGasLimit,
            maxOutputSize: config.maxOutputSize,
            maxInputSize: config.maxInputSize,
            requestTimeout: config.requestTimeout
        });
        emit ConfigSet(config);
    }

    /// @inheritdoc IAgentRouter
    function resultDigest(
        uint256 requestId,
        uint256 agentId,
        bytes32 codeHash,
        AgentStatus status,
        bytes32 outputHash,
        uint64 epoch
    ) public view returns (bytes32 digest) {
        return _hashTypedDataV4(keccak256(abi.encode(RESULT_TYPEHASH, requestId, agentId, codeHash, status, outputHash, epoch)));
    }

    /// @inheritdoc IAgentRouter
    function commitmentOf(uint256 requestId) external view returns (bytes32 commitment) {
        return s_commitments[requestId];
    }

    /// @inheritdoc IAgentRouter
    function balanceOf(address account) external view returns (uint256 amount) {
        return s_balances[account];
    }

    /// @inheritdoc IAgentRouter
    function getConfig() external view returns (Config memory config) {
        RouterState memory state = s_state;
        return Config({
            maxCallbackGasLimit: state.maxCallbackGasLimit,
            maxOutputSize: state.maxOutputSize,
            maxInputSize: state.maxInputSize,
            requestTimeout: state.requestTimeout
        });
    }

    /// @inheritdoc IAgentRouter
    function nextRequestId() external view returns (uint256 requestId) {
        return s_state.nextRequestId;
    }

    /// @dev Whether a result may be delivered and, when not, why. Cheap checks come first.
    function _validate(AgentResult calldata result, uint256 maxOutputSize, EpochCache memory cache)
        private
        view
        returns (bool valid, NotProcessedReason reason)
    {
        bytes32 stored = s_commitments[result.requestId];
        if (stored == bytes32(0)) return (false, NotProcessedReason.UNKNOWN_REQUEST);
        RequestCommitment calldata commitment = result.commitment;
        if (keccak256(abi.encode(commitment)) != stored) return (false, NotProcessedReason.COMMITMENT_MISMATCH);
        if (block.timestamp > commitment.deadline) return (false, NotProcessedReason.REQUEST_EXPIRED);
        if (result.output.length > maxOutputSize) return (false, NotProcessedReason.OUTPUT_TOO_LARGE);

        if (cache.epoch != result.epoch || cache.signer == address(0)) {
            (cache.signer, cache.validBefore) = TEE_REGISTRY.epochSigner(result.epoch);
            cache.epoch = result.epoch;
        }
        if (cache.signer == address(0) || commitment.createdAt >= cache.validBefore) {
            return (false, NotProcessedReason.STALE_EPOCH);
        }
        bytes32 digest = resultDigest(
            result.requestId, commitment.agentId, commitment.codeHash, result.status, keccak256(result.output), result.epoch
        );
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, result.r, result.vs);
        if (error != ECDSA.RecoverError.NoError || signer != cache.signer) return (false, NotProcessedReason.INVALID_SIGNATURE);
        return (true, reason);
    }

    /// @dev Calls the consumer with exactly its callback gas limit. The return data is never
    ///      copied, so a consumer cannot make the router pay for a huge revert reason.
    function _deliver(AgentResult calldata result) private {
        bytes memory data = abi.encodeCall(IAgentConsumer.onAgentResult, (result.requestId, result.status, result.output));
        address consumer = result.commitment.consumer;
        uint256 gasLimit = result.commitment.callbackGasLimit;
        bool success;
        assembly ("memory-safe") {
            let g := gas()
            // The caller checked the gas with a margin; this is the exact rule of EIP-150.
            if lt(g, GAS_FOR_CALL_EXACT_CHECK) { revert(0, 0) }
            g := sub(g, GAS_FOR_CALL_EXACT_CHECK)
            if iszero(gt(sub(g, div(g, 64)), gasLimit)) { revert(0, 0) }
            success := call(gasLimit, consumer, 0, add(data, 0x20), mload(data), 0, 0)
        }
        emit RequestFulfilled({
            requestId: result.requestId,
            status: result.status,
            callbackSucceeded: success,
            transmitter: msg.sender
        });
    }
}
