// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AgentRouter} from "../../src/AgentRouter.sol";
import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {IAgentStaking} from "../../src/interfaces/IAgentStaking.sol";
import {TeeRegistry} from "../../src/TeeRegistry.sol";
import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";
import {EnclaveToken} from "../../src/token/EnclaveToken.sol";
import {
    AgentResult,
    SignedAgentResult,
    AgentStatus,
    Currency,
    RequestCommitment
} from "../../src/libraries/AgentTypes.sol";

/// @notice A TeeRegistry with one gatekeeper and epoch 1 published.
contract TeeSetup is Test {
    address internal constant OWNER = address(0xA11CE);
    address internal constant GATEKEEPER = address(0x6A7E);
    uint256 internal constant CLUSTER_KEY_1 = 0xC1;
    uint256 internal constant CLUSTER_KEY_2 = 0xC2;
    uint256 internal constant CLUSTER_KEY_3 = 0xC3;
    bytes32 internal constant ENCRYPTION_KEY = bytes32(uint256(0xE1));

    TeeRegistry internal tee;

    function setUp() public virtual {
        vm.roll(100);
        vm.warp(1_800_000_000);
        tee = new TeeRegistry(OWNER);
        vm.prank(OWNER);
        tee.addGatekeeper(GATEKEEPER);
        vm.prank(GATEKEEPER);
        tee.publishEpoch(1, vm.addr(CLUSTER_KEY_1), ENCRYPTION_KEY);
    }

    /// @dev Requests a rotation and publishes the next epoch under `key`, one block later.
    function _rotate(uint256 key) internal {
        vm.roll(block.number + 1);
        vm.prank(OWNER);
        tee.requestRotation();
        uint64 next = tee.currentEpoch() + 1;
        vm.prank(GATEKEEPER);
        tee.publishEpoch(next, vm.addr(key), bytes32(uint256(next)));
    }
}

/// @notice A router with one open agent and an EchoConsumer, taking fees in wei and in a token,
///         plus helpers to request and sign.
contract RouterSetup is TeeSetup {
    address internal constant AGENT_OWNER = address(0xA6E7);
    address internal constant TRANSMITTER = address(0x7A45);
    uint96 internal constant PRICE = 0.001 ether;
    uint32 internal constant CALLBACK_GAS = 200_000;
    uint96 internal constant OPERATOR_FEE = 0.0002 ether;
    uint32 internal constant OVERHEAD = 60_000;
    /// @dev One ether is worth 2,500 tokens of 18 decimals.
    uint256 internal constant TOKENS_PER_ETH = 2_500 ether;
    bytes internal constant AGENT_CODE = "export default async function main(input) { return input; }";

    AgentRouter internal router;
    EnclaveToken internal feeToken;
    EchoConsumer internal consumer;
    uint256 internal agentId;

    function setUp() public virtual override {
        super.setUp();
        feeToken = new EnclaveToken(OWNER);
        router = new AgentRouter(OWNER, tee, IAgentStaking(address(0)), feeToken);
        vm.prank(OWNER);
        router.setTokenRate(TOKENS_PER_ETH);
        vm.prank(AGENT_OWNER);
        agentId = router.registerAgent(AGENT_CODE, PRICE, false);
        consumer = new EchoConsumer(address(router));
        vm.deal(address(this), 1_000 ether);
    }

    /// @dev Turns on an operator's fee (`OPERATOR_FEE`), so that every part of a charge is in play.
    function _chargeAnOperatorFee() internal {
        vm.prank(OWNER);
        router.setConfig(IAgentRouter.Config(2_500_000, 4096, 32 * 1024, 15 minutes, OPERATOR_FEE, OVERHEAD));
    }

    /// @dev Has the EchoConsumer request the agent; returns the id and the event's fields.
    function _request(bytes memory input) internal returns (uint256 requestId, RequestCommitment memory commitment) {
        return _requestFrom(address(consumer), input, CALLBACK_GAS);
    }

    function _requestFrom(address from, bytes memory input, uint32 callbackGas)
        internal
        returns (uint256 requestId, RequestCommitment memory commitment)
    {
        vm.deal(from, from.balance + PRICE);
        vm.prank(from);
        requestId = router.request{value: PRICE}(agentId, input, callbackGas);
        commitment = _commitmentOf(requestId, from, input, callbackGas);
    }

    /// @dev The fields of a request just made: the id is their hash, so the nonce is the one
    ///      that makes the hash match.
    function _commitmentOf(uint256 requestId, address from, bytes memory input, uint32 callbackGas)
        internal
        view
        returns (RequestCommitment memory commitment)
    {
        return _commitmentOf(requestId, agentId, keccak256(AGENT_CODE), from, input, callbackGas);
    }

    function _commitmentOf(
        uint256 requestId,
        uint256 agentId_,
        bytes32 codeHash,
        address from,
        bytes memory input,
        uint32 callbackGas
    ) internal view returns (RequestCommitment memory commitment) {
        return _commitmentOf(requestId, agentId_, codeHash, from, input, callbackGas, PRICE, 0);
    }

    /// @dev The fields of a request that paid `fee` wei (or whose subscription holds it).
    function _commitmentOf(
        uint256 requestId,
        uint256 agentId_,
        bytes32 codeHash,
        address from,
        bytes memory input,
        uint32 callbackGas,
        uint256 fee,
        uint64 subscriptionId
    ) internal view returns (RequestCommitment memory commitment) {
        return _commitmentOf(requestId, agentId_, codeHash, from, input, callbackGas, fee, subscriptionId, Currency.ETH);
    }

    /// @dev Has `from` request the agent paying in the token, which this mints and `from`
    ///      approves; returns the id and the event's fields.
    function _requestWithToken(address from, bytes memory input)
        internal
        returns (uint256 requestId, RequestCommitment memory commitment)
    {
        uint256 cost = router.estimateTokenCost(agentId, CALLBACK_GAS, tx.gasprice);
        vm.prank(OWNER);
        feeToken.mint(from, cost);
        vm.startPrank(from);
        feeToken.approve(address(router), cost);
        requestId = router.requestWithToken(agentId, input, CALLBACK_GAS);
        vm.stopPrank();
        commitment = _commitmentOf(
            requestId, agentId, keccak256(AGENT_CODE), from, input, CALLBACK_GAS, cost, 0, Currency.TOKEN
        );
    }

    /// @dev A token subscription of `owner`, funded with `funds` tokens minted to it, that
    ///      `consumer_` may charge.
    function _tokenSubscription(address owner, address consumer_, uint256 funds)
        internal
        returns (uint64 subscriptionId)
    {
        vm.prank(OWNER);
        feeToken.mint(owner, funds);
        vm.startPrank(owner);
        subscriptionId = router.createTokenSubscription();
        feeToken.approve(address(router), funds);
        router.fundSubscriptionWithToken(subscriptionId, funds);
        router.addConsumer(subscriptionId, consumer_);
        vm.stopPrank();
    }

    /// @dev The EIP-2612 permit of the holder of `holderKey` for the router to take `amount` of
    ///      the fee token until `deadline`.
    function _permit(uint256 holderKey, uint256 amount, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        address holder = vm.addr(holderKey);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                holder,
                address(router),
                amount,
                feeToken.nonces(holder),
                deadline
            )
        );
        return vm.sign(holderKey, keccak256(abi.encodePacked("\x19\x01", feeToken.DOMAIN_SEPARATOR(), structHash)));
    }

    /// @dev A charge's part in wei, in tokens at the router's rate: rounded up, as a request's
    ///      price and operator's fee are.
    function _inTokens(uint256 amount) internal view returns (uint256) {
        return (amount * router.tokensPerEth() + 1 ether - 1) / 1 ether;
    }

    /// @dev The fields of a request that paid `fee` in `currency` (or whose subscription holds it).
    function _commitmentOf(
        uint256 requestId,
        uint256 agentId_,
        bytes32 codeHash,
        address from,
        bytes memory input,
        uint32 callbackGas,
        uint256 fee,
        uint64 subscriptionId,
        Currency currency
    ) internal view returns (RequestCommitment memory commitment) {
        uint256 price = router.getAgent(agentId_).price;
        uint256 operatorFee = router.getConfig().operatorFee;
        if (currency == Currency.TOKEN) (price, operatorFee) = (_inTokens(price), _inTokens(operatorFee));
        commitment = RequestCommitment({
            agentId: agentId_,
            codeHash: codeHash,
            inputHash: keccak256(input),
            consumer: from,
            fee: uint96(fee),
            callbackGasLimit: callbackGas,
            createdAt: uint48(block.number),
            deadline: uint48(block.timestamp + router.getConfig().requestTimeout),
            nonce: 0,
            price: uint96(price),
            operatorFee: uint96(operatorFee),
            subscriptionId: subscriptionId,
            assignee: address(0),
            assignedUntil: 0,
            currency: currency
        });
        while (!_assignedAsRequested(commitment, requestId)) {
            require(commitment.nonce < 4096, "no nonce gives the request's id");
            ++commitment.nonce;
        }
    }

    /// @dev Fills in the assignment the router made from the other fields (in this block, from
    ///      the operators active now), and says whether the fields then hash to `requestId`.
    function _assignedAsRequested(RequestCommitment memory commitment, uint256 requestId) internal view returns (bool) {
        (commitment.assignee, commitment.assignedUntil) = (address(0), 0);
        IAgentStaking staking = router.STAKING();
        if (address(staking) != address(0)) {
            (commitment.assignee, commitment.assignedUntil) = staking.assign(uint256(keccak256(abi.encode(commitment))));
        }
        return router.requestIdOf(commitment) == requestId;
    }

    /// @dev A result signed by `key` for `epoch` on this router.
    function _signed(
        uint256 key,
        uint64 epoch,
        RequestCommitment memory commitment,
        AgentStatus status,
        bytes memory output
    ) internal view returns (SignedAgentResult memory signed) {
        AgentResult memory result = AgentResult({commitment: commitment, status: status, output: output});
        (bytes32 r, bytes32 vs) = vm.signCompact(key, router.resultDigest(result, epoch));
        signed = SignedAgentResult({result: result, epoch: epoch, r: r, vs: vs});
    }

    function _ok(RequestCommitment memory commitment, bytes memory output)
        internal
        view
        returns (SignedAgentResult memory)
    {
        return _signed(CLUSTER_KEY_1, 1, commitment, AgentStatus.OK, output);
    }

    function _one(SignedAgentResult memory result) internal pure returns (SignedAgentResult[] memory batch) {
        batch = new SignedAgentResult[](1);
        batch[0] = result;
    }

    function _fulfill(SignedAgentResult[] memory batch) internal returns (uint256 fulfilled) {
        vm.prank(TRANSMITTER);
        return router.fulfill{gas: 20_000_000}(batch);
    }
}
