// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {AgentRegistry} from "./AgentRegistry.sol";
import {AgentSubscriptions} from "./AgentSubscriptions.sol";
import {IAgentStaking} from "./interfaces/IAgentStaking.sol";
import {IAgentConsumer} from "./interfaces/IAgentConsumer.sol";
import {IAgentRouter} from "./interfaces/IAgentRouter.sol";
import {ITeeRegistry} from "./interfaces/ITeeRegistry.sol";
import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    Currency,
    NotProcessedReason,
    RequestCommitment,
    SignedAgentResult
} from "./libraries/AgentTypes.sol";

/// @title AgentRouter
/// @notice Takes agent requests from consumer contracts and delivers the results that the
///         cluster key signed back to them; pays each request's parts to the agent's owner and
///         the transmitter, and returns the rest to the payer.
contract AgentRouter is IAgentRouter, AgentRegistry, AgentSubscriptions, EIP712, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice The EIP-712 type of a signed result.
    bytes32 public constant RESULT_TYPEHASH = keccak256(
        "AgentResult(uint256 requestId,uint256 agentId,bytes32 codeHash,bytes32 inputHash,uint8 status,bytes32 outputHash,uint64 epoch)"
    );
    /// @notice The EIP-712 type of a signed batch.
    bytes32 public constant BATCH_TYPEHASH = keccak256(
        "AgentResultBatch(AgentResult[] results)AgentResult(uint256 requestId,uint256 agentId,bytes32 codeHash,bytes32 inputHash,uint8 status,bytes32 outputHash,uint64 epoch)"
    );

    /// @dev Gas that one delivery needs besides the callback itself (closing the commitment,
    ///      encoding the call, the event), kept free before the callback is started.
    uint256 private constant DELIVERY_OVERHEAD = 30_000;
    /// @dev Gas the exact-gas check itself may spend before the CALL opcode.
    uint256 private constant GAS_FOR_CALL_EXACT_CHECK = 5_000;
    /// @dev Bytes of an ABI-encoded `RequestCommitment`: fifteen static words.
    uint256 private constant COMMITMENT_SIZE = 0x1e0;

    /// @dev What a batch delivered and what its transmitter earned by it; what the owner of the
    ///      agent of its last results earned by them, and what their consumer gets back: each
    ///      credited when it changes and at the end, so a batch for one agent and one consumer
    ///      writes each balance once. Earnings count in the currency of the last results; a
    ///      result in the other currency credits them first.
    struct Tally {
        uint256 fulfilled;
        Currency currency;
        uint256 earned;
        address owner;
        uint256 owed;
        address refundTo; // the consumer of the last results paid with their value
        uint256 refundOwed;
        uint256 fulfilGasOverhead; // the setting, read once per transaction
        uint256 tokensPerEth; // the rate, read when the first result in the token comes
    }

    /// @dev The signer of the last epoch seen in a batch: batches rarely mix epochs.
    struct EpochCache {
        uint64 epoch;
        address signer;
        uint48 validBefore;
    }

    /// @notice Where the key epochs live.
    ITeeRegistry public immutable TEE_REGISTRY;
    /// @notice The operators' stakes: who may transmit and who is assigned each request. None
    ///         (zero): anyone may transmit and nobody is assigned.
    IAgentStaking public immutable STAKING;
    /// @notice The ERC-20 that requests and subscriptions may pay in besides wei, or zero for none.
    ///         A plain one: the router credits what it asked to move, so a token that takes a fee
    ///         on transfer, or rebases, would leave it owing more than it holds.
    IERC20 public immutable FEE_TOKEN;

    Config private s_config;
    mapping(uint256 requestId => bool) private s_open;
    /// @dev Requests made so far in this transaction: the nonce of the next request.
    uint32 private transient s_requestsInTransaction;
    mapping(address account => uint256 amount) private s_balances;
    mapping(address account => uint256 amount) private s_tokenBalances;
    /// @dev Fee-token units worth one ether; 0 until the owner sets it (no token payments).
    uint256 private s_tokensPerEth;

    /// @param owner Who may change the settings.
    /// @param teeRegistry The registry of key epochs.
    /// @param staking The operators' stakes, or zero for none.
    /// @param feeToken The ERC-20 fees may be paid in besides wei, or zero for none.
    constructor(address owner, ITeeRegistry teeRegistry, IAgentStaking staking, IERC20 feeToken)
        EIP712("EnclaveAgents", "1")
        Ownable(owner)
    {
        STAKING = staking;
        FEE_TOKEN = feeToken;
        TEE_REGISTRY = teeRegistry;
        s_config = Config({
            maxCallbackGasLimit: 2_500_000,
            maxOutputSize: 4 * 1024,
            maxInputSize: 32 * 1024,
            requestTimeout: 15 minutes,
            operatorFee: 0,
            fulfilGasOverhead: 60_000
        });
    }

    /// @inheritdoc IAgentRouter
    function request(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId)
    {
        return _request(agentId, input, callbackGasLimit, 0, Currency.ETH);
    }

    /// @inheritdoc IAgentRouter
    function requestWithToken(uint256 agentId, bytes calldata input, uint32 callbackGasLimit)
        external
        returns (uint256 requestId)
    {
        return _request(agentId, input, callbackGasLimit, 0, Currency.TOKEN);
    }

    /// @inheritdoc IAgentRouter
    function requestWithSubscription(
        uint64 subscriptionId,
        uint256 agentId,
        bytes calldata input,
        uint32 callbackGasLimit
    ) external returns (uint256 requestId) {
        return _request(agentId, input, callbackGasLimit, subscriptionId, _currencyOf(subscriptionId));
    }

    /// @inheritdoc IAgentRouter
    function estimateCost(uint256 agentId, uint32 callbackGasLimit, uint256 gasPrice)
        external
        view
        returns (uint256 cost)
    {
        if (s_agents[agentId].codeHash == bytes32(0)) revert AgentNotFound(agentId);
        return _cost(_priceOf(agentId, s_agents[agentId].terms), s_config, callbackGasLimit, gasPrice);
    }

    /// @inheritdoc IAgentRouter
    function estimateTokenCost(uint256 agentId, uint32 callbackGasLimit, uint256 gasPrice)
        external
        view
        returns (uint256 cost)
    {
        if (s_agents[agentId].codeHash == bytes32(0)) revert AgentNotFound(agentId);
        uint96 price = _priceOf(agentId, s_agents[agentId].terms);
        (cost,,) = _tokenCost(price, s_config, callbackGasLimit, gasPrice, _tokenRate());
    }

    /// @dev Opens a request paid in `currency`: with the value sent or the caller's tokens
    ///      (`subscriptionId` 0), or by a subscription in that currency.
    function _request(
        uint256 agentId,
        bytes calldata input,
        uint32 callbackGasLimit,
        uint64 subscriptionId,
        Currency currency
    ) private returns (uint256 requestId) {
        RequestCommitment memory commitment = _newCommitment(agentId, input, callbackGasLimit, subscriptionId, currency);
        requestId = _openRequest(commitment);
        _emitRequested(requestId, commitment, input);
        if (currency == Currency.TOKEN && subscriptionId == 0) {
            FEE_TOKEN.safeTransferFrom(msg.sender, address(this), commitment.fee);
        }
    }

    function _emitRequested(uint256 requestId, RequestCommitment memory commitment, bytes calldata input) private {
        emit AgentRequested({
            requestId: requestId,
            agentId: commitment.agentId,
            consumer: msg.sender,
            codeHash: commitment.codeHash,
            input: input,
            callbackGasLimit: commitment.callbackGasLimit,
            deadline: commitment.deadline,
            nonce: commitment.nonce,
            assignee: commitment.assignee,
            assignedUntil: commitment.assignedUntil,
            charge: _chargeOf(commitment)
        });
    }

    function _chargeOf(RequestCommitment memory commitment) private pure returns (Charge memory) {
        return Charge({
            fee: commitment.fee,
            price: commitment.price,
            operatorFee: commitment.operatorFee,
            subscriptionId: commitment.subscriptionId,
            currency: commitment.currency
        });
    }

    /// @dev A new request's fields, once it passed every check and its payment is escrowed: the
    ///      value sent covers its most possible cost, the caller's tokens paid it, or its
    ///      subscription holds it. In the token, each part is its wei amount at the current rate.
    function _newCommitment(
        uint256 agentId,
        bytes calldata input,
        uint32 callbackGasLimit,
        uint64 subscriptionId,
        Currency currency
    ) private returns (RequestCommitment memory commitment) {
        Config memory config = s_config;
        if (input.length > config.maxInputSize) revert InputTooLarge(input.length, config.maxInputSize);
        if (callbackGasLimit > config.maxCallbackGasLimit) {
            revert CallbackGasTooHigh(callbackGasLimit, config.maxCallbackGasLimit);
        }
        AgentRecord storage agent = s_agents[agentId];
        commitment.codeHash = agent.codeHash;
        if (commitment.codeHash == bytes32(0)) revert AgentNotFound(agentId);
        AgentTerms memory terms = agent.terms;
        if (terms.paused) revert AgentIsPaused(agentId);
        if (terms.restricted && !s_allowedConsumers[agentId][msg.sender]) {
            revert ConsumerNotAllowed(agentId, msg.sender);
        }

        uint96 agentPrice = _priceOf(agentId, terms);
        uint256 fee = _cost(agentPrice, config, callbackGasLimit, tx.gasprice);
        uint256 price = agentPrice;
        uint256 operatorFee = config.operatorFee;
        if (currency == Currency.TOKEN) {
            (fee, price, operatorFee) = _tokenCost(agentPrice, config, callbackGasLimit, tx.gasprice, _tokenRate());
        }
        if (subscriptionId != 0) {
            // A subscription holds exactly the most the request can cost.
            _hold(subscriptionId, msg.sender, fee);
        } else if (currency == Currency.TOKEN) {
            // Taken in `_request` once the request is open: no call out before the state is written.
        } else {
            if (msg.value < fee) revert InsufficientFee(msg.value, fee);
            fee = msg.value;
        }
        if (fee > type(uint96).max) revert FeeTooLarge(fee);

        commitment.agentId = agentId;
        commitment.inputHash = keccak256(input);
        commitment.consumer = msg.sender;
        commitment.fee = uint96(fee);
        commitment.callbackGasLimit = callbackGasLimit;
        commitment.createdAt = uint48(block.number);
        commitment.deadline = uint48(block.timestamp + config.requestTimeout);
        commitment.nonce = s_requestsInTransaction;
        // Both fit: price and operatorFee are at most fee.
        commitment.price = uint96(price);
        commitment.operatorFee = uint96(operatorFee);
        commitment.subscriptionId = subscriptionId;
        commitment.currency = currency;
        if (address(STAKING) != address(0)) {
            // Assigned by the hash of its other fields, which the requester does not choose
            // freely (the block, the nonce), from the operators active now; the commitment keeps
            // the choice.
            (commitment.assignee, commitment.assignedUntil) = STAKING.assign(_hashCommitment(commitment));
        }
    }

    /// @inheritdoc IAgentRouter
    function fulfill(SignedAgentResult[] calldata results) external nonReentrant returns (uint256 fulfilled) {
        if (results.length == 0) revert EmptyBatch();
        _checkTransmitter();
        uint256 maxOutputSize = s_config.maxOutputSize;
        EpochCache memory cache;
        Tally memory tally = _newTally();
        uint256 freeMemory = _freeMemoryPointer();

        for (uint256 i; i < results.length; ++i) {
            _resetFreeMemoryPointer(freeMemory);
            SignedAgentResult calldata signed = results[i];
            AgentResult calldata result = signed.result;
            uint256 requestId = _requestIdOf(result.commitment);
            if (cache.epoch != signed.epoch || cache.signer == address(0)) {
                (cache.signer, cache.validBefore) = TEE_REGISTRY.epochSigner(signed.epoch);
                cache.epoch = signed.epoch;
            }
            bool valid;
            NotProcessedReason reason;
            if (cache.signer == address(0)) {
                reason = NotProcessedReason.STALE_EPOCH;
            } else if (!_isSignedBy(requestId, result, signed, cache.signer)) {
                reason = NotProcessedReason.INVALID_SIGNATURE;
            } else {
                (valid, reason) = _checkOpen(requestId, result, maxOutputSize, cache.validBefore);
            }
            _process(requestId, result, valid, reason, tally);
        }
        _settleTally(tally);
        return tally.fulfilled;
    }

    /// @inheritdoc IAgentRouter
    function fulfillBatch(AgentResult[] calldata results, BatchSignature calldata signature)
        external
        nonReentrant
        returns (uint256 fulfilled)
    {
        if (results.length == 0) revert EmptyBatch();
        _checkTransmitter();
        (address signer, uint48 validBefore) = TEE_REGISTRY.epochSigner(signature.epoch);
        uint256[] memory requestIds = new uint256[](results.length);
        bytes32 digest = _batchDigest(results, signature.epoch, requestIds);
        (address recovered,,) = ECDSA.tryRecover(digest, signature.r, signature.vs);
        if (recovered == address(0) || recovered != signer) revert InvalidBatchSignature(signature.epoch, recovered);

        uint256 maxOutputSize = s_config.maxOutputSize;
        Tally memory tally = _newTally();
        uint256 freeMemory = _freeMemoryPointer();
        for (uint256 i; i < results.length; ++i) {
            _resetFreeMemoryPointer(freeMemory);
            AgentResult calldata result = results[i];
            uint256 requestId = requestIds[i];
            (bool valid, NotProcessedReason reason) = _checkOpen(requestId, result, maxOutputSize, validBefore);
            _process(requestId, result, valid, reason, tally);
        }
        _settleTally(tally);
        return tally.fulfilled;
    }

    /// @inheritdoc IAgentRouter
    function cancel(RequestCommitment calldata commitment) external nonReentrant {
        uint256 requestId = _requestIdOf(commitment);
        if (!s_open[requestId]) revert UnknownRequest(requestId);
        if (block.timestamp <= commitment.deadline) revert RequestNotExpired(requestId, commitment.deadline);
        delete s_open[requestId];
        if (commitment.subscriptionId == 0) {
            _ledger(commitment.currency)[commitment.consumer] += commitment.fee;
        } else {
            _settleHold(commitment.subscriptionId, commitment.fee, 0);
        }
        emit RequestCancelled({
            requestId: requestId,
            consumer: commitment.consumer,
            fee: commitment.fee,
            subscriptionId: commitment.subscriptionId
        });
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
    function withdrawToken(address to) external nonReentrant {
        uint256 amount = s_tokenBalances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        s_tokenBalances[msg.sender] = 0;
        emit TokenBalanceWithdrawn({account: msg.sender, to: to, amount: amount});
        FEE_TOKEN.safeTransfer(to, amount);
    }

    /// @inheritdoc IAgentRouter
    function setTokenRate(uint256 rate) external onlyOwner {
        if (address(FEE_TOKEN) == address(0)) revert NoFeeToken();
        if (rate == 0) revert InvalidConfig();
        s_tokensPerEth = rate;
        emit TokenRateSet(rate);
    }

    /// @dev The fee token's rate; refuses token payments while there is none.
    function _tokenRate() private view returns (uint256 rate) {
        rate = s_tokensPerEth;
        if (rate == 0) revert NoFeeToken();
    }

    /// @dev `amount` wei in fee-token units at `rate`, rounded down: what a delivery reimburses.
    function _toToken(uint256 amount, uint256 rate) private pure returns (uint256) {
        return amount * rate / 1 ether;
    }

    /// @dev The most a request paid in the token can cost, and its price and operator's fee:
    ///      each part rounded up on its own, so that no part priced in wei is free in a token of
    ///      few decimals, and the fee still covers the other two (the sum of the rounded parts).
    function _tokenCost(uint96 price, Config memory config, uint32 callbackGasLimit, uint256 gasPrice, uint256 rate)
        private
        pure
        returns (uint256 fee, uint256 priceInToken, uint256 operatorFeeInToken)
    {
        priceInToken = Math.ceilDiv(uint256(price) * rate, 1 ether);
        operatorFeeInToken = Math.ceilDiv(uint256(config.operatorFee) * rate, 1 ether);
        uint256 gas = (uint256(callbackGasLimit) + config.fulfilGasOverhead) * gasPrice;
        fee = priceInToken + operatorFeeInToken + Math.ceilDiv(gas * rate, 1 ether);
    }

    /// @dev The withdrawable balances in `currency`.
    function _ledger(Currency currency) private view returns (mapping(address => uint256) storage) {
        return currency == Currency.TOKEN ? s_tokenBalances : s_balances;
    }

    function _feeToken() internal view override returns (IERC20) {
        return FEE_TOKEN;
    }

    /// @dev The most a request can cost at `gasPrice`.
    function _cost(uint96 price, Config memory config, uint32 callbackGasLimit, uint256 gasPrice)
        private
        pure
        returns (uint256)
    {
        return uint256(price) + config.operatorFee + (uint256(callbackGasLimit) + config.fulfilGasOverhead) * gasPrice;
    }

    /// @inheritdoc IAgentRouter
    function setConfig(Config calldata config) external onlyOwner {
        if (
            config.maxCallbackGasLimit == 0 || config.maxOutputSize == 0 || config.maxInputSize == 0
                || config.requestTimeout == 0
        ) revert InvalidConfig();
        s_config = config;
        emit ConfigSet(config);
    }

    /// @inheritdoc IAgentRouter
    function resultDigest(AgentResult calldata result, uint64 epoch) external view returns (bytes32 digest) {
        return _hashTypedDataV4(_resultStructHash(_requestIdOf(result.commitment), result, epoch));
    }

    /// @inheritdoc IAgentRouter
    function batchDigest(AgentResult[] calldata results, uint64 epoch) external view returns (bytes32 digest) {
        return _batchDigest(results, epoch, new uint256[](results.length));
    }

    /// @inheritdoc IAgentRouter
    function requestIdOf(RequestCommitment calldata commitment) external pure returns (uint256 requestId) {
        return _requestIdOf(commitment);
    }

    /// @inheritdoc IAgentRouter
    function isOpen(uint256 requestId) external view returns (bool open) {
        return s_open[requestId];
    }

    /// @inheritdoc IAgentRouter
    function balanceOf(address account) external view returns (uint256 amount) {
        return s_balances[account];
    }

    /// @inheritdoc IAgentRouter
    function tokenBalanceOf(address account) external view returns (uint256 amount) {
        return s_tokenBalances[account];
    }

    /// @inheritdoc IAgentRouter
    function tokensPerEth() external view returns (uint256 rate) {
        return s_tokensPerEth;
    }

    /// @inheritdoc IAgentRouter
    function getConfig() external view returns (Config memory config) {
        return s_config;
    }

    /// @dev Marks the request open under the hash of its fields. The nonce counts the requests of
    ///      this transaction and then probes past an id still open from an earlier transaction of
    ///      the same block with equal fields. A counter in storage would cost a write per request;
    ///      the probe's read makes the slot's write warm, so it costs nothing. An id comes back
    ///      only after its request closed, and never within a block that could hold a signed
    ///      result for it: results are made after their request's block.
    function _openRequest(RequestCommitment memory commitment) private returns (uint256 requestId) {
        requestId = _hashCommitment(commitment);
        while (s_open[requestId]) {
            ++commitment.nonce;
            requestId = _hashCommitment(commitment);
        }
        s_open[requestId] = true;
        s_requestsInTransaction = commitment.nonce + 1;
    }

    /// @dev The EIP-712 `AgentResultBatch` digest; fills `requestIds` with the results' ids so the
    ///      delivery loop does not hash them again.
    function _batchDigest(AgentResult[] calldata results, uint64 epoch, uint256[] memory requestIds)
        private
        view
        returns (bytes32)
    {
        bytes32[] memory hashes = new bytes32[](results.length);
        for (uint256 i; i < results.length; ++i) {
            AgentResult calldata result = results[i];
            uint256 requestId = _requestIdOf(result.commitment);
            requestIds[i] = requestId;
            hashes[i] = _resultStructHash(requestId, result, epoch);
        }
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_TYPEHASH, keccak256(abi.encodePacked(hashes)))));
    }

    function _resultStructHash(uint256 requestId, AgentResult calldata result, uint64 epoch)
        private
        pure
        returns (bytes32)
    {
        RequestCommitment calldata commitment = result.commitment;
        return keccak256(
            abi.encode(
                RESULT_TYPEHASH,
                requestId,
                commitment.agentId,
                commitment.codeHash,
                commitment.inputHash,
                result.status,
                keccak256(result.output),
                epoch
            )
        );
    }

    /// @dev Whether a result's own signature recovers to `signer`.
    function _isSignedBy(
        uint256 requestId,
        AgentResult calldata result,
        SignedAgentResult calldata signed,
        address signer
    ) private view returns (bool) {
        bytes32 digest = _hashTypedDataV4(_resultStructHash(requestId, result, signed.epoch));
        (address recovered,,) = ECDSA.tryRecover(digest, signed.r, signed.vs);
        return recovered == signer;
    }

    /// @dev Whether an authentic result may close its request and, when not, why. `validBefore`
    ///      is the first request block that the signing epoch may no longer answer.
    function _checkOpen(uint256 requestId, AgentResult calldata result, uint256 maxOutputSize, uint48 validBefore)
        private
        view
        returns (bool valid, NotProcessedReason reason)
    {
        if (!s_open[requestId]) return (false, NotProcessedReason.UNKNOWN_REQUEST);
        RequestCommitment calldata commitment = result.commitment;
        if (commitment.createdAt >= validBefore) return (false, NotProcessedReason.STALE_EPOCH);
        if (block.timestamp > commitment.deadline) return (false, NotProcessedReason.REQUEST_EXPIRED);
        if (result.output.length > maxOutputSize) return (false, NotProcessedReason.OUTPUT_TOO_LARGE);
        address assignee = commitment.assignee;
        if (assignee != address(0) && assignee != msg.sender && block.timestamp <= commitment.assignedUntil) {
            return (false, NotProcessedReason.NOT_ASSIGNEE);
        }
        return (true, reason);
    }

    /// @dev Delivers a valid result and pays for it, counting it and the transmitter's earnings
    ///      in `tally`, or says on-chain why a result was not processed.
    function _process(
        uint256 requestId,
        AgentResult calldata result,
        bool valid,
        NotProcessedReason reason,
        Tally memory tally
    ) private {
        if (valid) {
            (bool called, bool success, uint256 callbackGas) = _tryDeliver(requestId, result);
            if (called) {
                tally.earned += _pay(requestId, result, success, callbackGas + tally.fulfilGasOverhead, tally);
                ++tally.fulfilled;
                // Delivered by another after its assignee's window (`_checkOpen`): the assignee
                // missed it. A slash that fails (a staking contract never bound to this router)
                // never holds the delivery back.
                address assignee = result.commitment.assignee;
                if (assignee != address(0) && assignee != msg.sender) {
                    try STAKING.slash(requestId, assignee, msg.sender) {} catch {}
                }
                return;
            }
        }
        // A valid result that could not be delivered lacked the gas for its callback.
        emit RequestNotProcessed({requestId: requestId, reason: valid ? NotProcessedReason.INSUFFICIENT_GAS : reason});
    }

    function _newTally() private view returns (Tally memory tally) {
        tally.fulfilGasOverhead = s_config.fulfilGasOverhead;
    }

    /// @dev Adds an agent's price to what its owner earned in this batch. The owner is read for
    ///      every result (warm after the first): a callback earlier in the batch may have moved the
    ///      agent to another owner, who earns the results delivered after.
    function _owe(Tally memory tally, uint256 agentId, uint256 price) private {
        address owner = s_agents[agentId].owner;
        if (owner != tally.owner) {
            if (tally.owed != 0) _ledger(tally.currency)[tally.owner] += tally.owed;
            tally.owner = owner;
            tally.owed = 0;
        }
        tally.owed += price;
    }

    /// @dev Adds to what a consumer gets back in this batch.
    function _refund(Tally memory tally, address consumer, uint256 amount) private {
        if (tally.refundTo != consumer) {
            if (tally.refundOwed != 0) _ledger(tally.currency)[tally.refundTo] += tally.refundOwed;
            tally.refundTo = consumer;
            tally.refundOwed = 0;
        }
        tally.refundOwed += amount;
    }

    /// @dev Credits what a batch left uncredited: its transmitter's earnings, its last agent's
    ///      owner's and its last consumer's refunds, and starts counting again from nothing.
    function _settleTally(Tally memory tally) private {
        mapping(address => uint256) storage ledger = _ledger(tally.currency);
        if (tally.earned != 0) ledger[msg.sender] += tally.earned;
        if (tally.owed != 0) ledger[tally.owner] += tally.owed;
        if (tally.refundOwed != 0) ledger[tally.refundTo] += tally.refundOwed;
        (tally.earned, tally.owed, tally.refundOwed) = (0, 0, 0);
    }

    /// @dev Makes the tally count in `currency`, crediting what it counted in the other.
    function _countIn(Tally memory tally, Currency currency) private {
        if (currency == tally.currency) return;
        _settleTally(tally);
        tally.currency = currency;
        if (currency == Currency.TOKEN && tally.tokensPerEth == 0) tally.tokensPerEth = s_tokensPerEth;
    }

    /// @dev Reverts unless the transaction's sender may deliver: anyone without staking, else an
    ///      active operator.
    function _checkTransmitter() private view {
        if (address(STAKING) != address(0) && !STAKING.isActive(msg.sender)) {
            revert IAgentStaking.NotStaked(msg.sender);
        }
    }

    /// @dev Closes the request and calls the consumer with exactly its callback gas limit, or
    ///      returns `called` false, leaving the request open, when the gas left cannot cover the
    ///      callback. Measures the gas the callback used. The return data is never copied, so a
    ///      consumer cannot make the router pay for a huge revert reason.
    function _tryDeliver(uint256 requestId, AgentResult calldata result)
        private
        returns (bool called, bool success, uint256 callbackGas)
    {
        uint256 gasLimit = result.commitment.callbackGasLimit;
        if (gasleft() <= gasLimit + gasLimit / 63 + DELIVERY_OVERHEAD) return (false, false, 0);
        delete s_open[requestId];

        bytes memory data = abi.encodeCall(IAgentConsumer.onAgentResult, (requestId, result.status, result.output));
        address consumer = result.commitment.consumer;
        if (consumer.code.length == 0) {
            // A CALL to an address without code succeeds having run nothing: say so instead.
            emit ConsumerHasNoCode({requestId: requestId, consumer: consumer});
            return (true, false, 0);
        }
        assembly ("memory-safe") {
            let g := gas()
            // The check above left a margin; this is the exact rule of EIP-150.
            if lt(g, GAS_FOR_CALL_EXACT_CHECK) { revert(0, 0) }
            g := sub(g, GAS_FOR_CALL_EXACT_CHECK)
            if iszero(gt(sub(g, div(g, 64)), gasLimit)) { revert(0, 0) }
            let before := gas()
            success := call(gasLimit, consumer, 0, add(data, 0x20), mload(data), 0, 0)
            callbackGas := sub(before, gas())
        }
        return (true, success, callbackGas);
    }

    /// @dev Pays a delivered request's parts: the price to the agent's owner; the operator's fee
    ///      and `gasUsed` at the transaction's gas price, capped by what the escrow has left, to
    ///      the transmitter (returned, for the caller to credit once per batch); the rest to the
    ///      payer. A commitment's fee always covers its price and operator's fee (`_request`).
    function _pay(uint256 requestId, AgentResult calldata result, bool success, uint256 gasUsed, Tally memory tally)
        private
        returns (uint256 earned)
    {
        RequestCommitment calldata commitment = result.commitment;
        // Each field read once: a calldata read checks its bounds and bits every time.
        (uint96 fee, uint96 price, uint96 operatorFee) = (commitment.fee, commitment.price, commitment.operatorFee);
        uint256 forGas;
        unchecked {
            // The fields hash to an open request, which `_request` made with fee >= price + operatorFee.
            forGas = uint256(fee) - price - operatorFee;
        }
        Currency currency = commitment.currency;
        _countIn(tally, currency);
        uint256 gasReimbursed = gasUsed * tx.gasprice;
        if (currency == Currency.TOKEN) gasReimbursed = _toToken(gasReimbursed, tally.tokensPerEth);
        if (gasReimbursed > forGas) gasReimbursed = forGas;
        uint256 refunded = forGas - gasReimbursed;
        if (price != 0) _owe(tally, commitment.agentId, price);
        uint64 subscriptionId = commitment.subscriptionId;
        if (subscriptionId == 0) {
            if (refunded != 0) _refund(tally, commitment.consumer, refunded);
        } else {
            _settleHold(subscriptionId, fee, uint96(fee - refunded));
        }
        emit RequestFulfilled({
            requestId: requestId,
            status: result.status,
            callbackSucceeded: success,
            gasReimbursed: uint96(gasReimbursed),
            refunded: uint96(refunded)
        });
        return operatorFee + gasReimbursed;
    }

    /// @dev A request's id: keccak256(abi.encode(commitment)), hashed straight from calldata. A
    ///      field with dirty high bits hashes to an id that was never opened.
    function _requestIdOf(RequestCommitment calldata commitment) private pure returns (uint256 requestId) {
        assembly ("memory-safe") {
            let pointer := mload(0x40)
            calldatacopy(pointer, commitment, COMMITMENT_SIZE)
            requestId := keccak256(pointer, COMMITMENT_SIZE)
        }
    }

    /// @dev keccak256(abi.encode(commitment)) without the copy: a struct of static fields lies
    ///      in memory exactly as abi.encode lays it out.
    function _hashCommitment(RequestCommitment memory commitment) private pure returns (uint256 hash) {
        assembly ("memory-safe") {
            hash := keccak256(commitment, COMMITMENT_SIZE)
        }
    }

    function _freeMemoryPointer() private pure returns (uint256 pointer) {
        assembly ("memory-safe") {
            pointer := mload(0x40)
        }
    }

    /// @dev A delivery's scratch memory is dead once it is done; reusing it keeps the memory
    ///      cost of a batch linear in its size.
    function _resetFreeMemoryPointer(uint256 pointer) private pure {
        assembly ("memory-safe") {
            mstore(0x40, pointer)
        }
    }
}
