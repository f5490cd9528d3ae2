// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {AgentRouter} from "../../src/AgentRouter.sol";
import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {IAgentConsumer} from "../../src/interfaces/IAgentConsumer.sol";
import {IAgentSubscriptions} from "../../src/interfaces/IAgentSubscriptions.sol";
import {
    AgentResult,
    AgentStatus,
    BatchSignature,
    RequestCommitment,
    SignedAgentResult
} from "../../src/libraries/AgentTypes.sol";
import {RouterSetup} from "../utils/RouterSetup.sol";
import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";

/// @notice A consumer that owns and consumes its own subscription and, in its callback, re-enters
///         the router in every way it can; it records which re-entries went through.
contract EvilConsumer is IAgentConsumer {
    AgentRouter public immutable ROUTER;
    uint64 public sub;
    uint256 public agentId;
    RequestCommitment internal expired;
    bool internal hasExpired;
    mapping(bytes32 => bool) public ok;
    uint256 public nestedId;

    constructor(AgentRouter router, uint256 agentId_) payable {
        ROUTER = router;
        agentId = agentId_;
        sub = router.createSubscription();
        router.addConsumer(sub, address(this));
    }

    receive() external payable {}

    function fund() external payable {
        ROUTER.fundSubscription{value: msg.value}(sub);
    }

    function setExpired(RequestCommitment calldata c) external {
        expired = c;
        hasExpired = true;
    }

    function ask(uint32 gasLimit) external returns (uint256) {
        return ROUTER.requestWithSubscription(sub, agentId, "evil", gasLimit);
    }

    function askPaying(uint32 gasLimit) external payable returns (uint256) {
        return ROUTER.request{value: msg.value}(agentId, "evil-v", gasLimit);
    }

    function onAgentResult(uint256, AgentStatus, bytes calldata) external {
        IAgentSubscriptions.SubscriptionInfo memory info = ROUTER.getSubscription(sub);
        uint256 free = info.balance - info.held;
        try ROUTER.withdrawFromSubscription(sub, payable(address(this)), free) {
            ok["withdrawFromSubscription"] = true;
        } catch {}
        try ROUTER.cancelSubscription(sub, payable(address(this))) {
            ok["cancelSubscription"] = true;
        } catch {}
        try ROUTER.withdraw(payable(address(this))) {
            ok["withdraw"] = true;
        } catch {}
        if (hasExpired) {
            try ROUTER.cancel(expired) {
                ok["cancel"] = true;
            } catch {}
        }
        try ROUTER.fundSubscription{value: 1 wei}(sub) {
            ok["fundSubscription"] = true;
        } catch {}
        try ROUTER.requestWithSubscription(sub, agentId, "nested", 50_000) returns (uint256 id) {
            ok["requestWithSubscription"] = true;
            nestedId = id;
        } catch {}
    }
}

/// @notice Stands for a marketplace that takes over an agent on anyone's `finalize()` (the seller
///         proposed it as the pending owner).
contract AgentMarket {
    AgentRouter public immutable ROUTER;

    constructor(AgentRouter router) {
        ROUTER = router;
    }

    function finalize(uint256 agentId) external {
        ROUTER.acceptAgentOwnership(agentId);
    }
}

/// @notice A consumer whose callback calls `market.finalize(agentId)`.
contract FinalizingConsumer is IAgentConsumer {
    AgentMarket public immutable MARKET;
    uint256 public immutable AGENT;

    constructor(AgentMarket market, uint256 agentId) {
        MARKET = market;
        AGENT = agentId;
    }

    function onAgentResult(uint256, AgentStatus, bytes calldata) external {
        MARKET.finalize(AGENT);
    }
}

contract RouterAttacks is RouterSetup {
    function setUp() public override {
        super.setUp();
        _chargeAnOperatorFee();
    }

    // -- helpers ---------------------------------------------------------------------------------

    function _batch(AgentResult[] memory results) internal view returns (BatchSignature memory s) {
        (bytes32 r, bytes32 vs) = vm.signCompact(CLUSTER_KEY_1, router.batchDigest(results, 1));
        s = BatchSignature({epoch: 1, r: r, vs: vs});
    }

    function _res(RequestCommitment memory c, bytes memory out) internal pure returns (AgentResult memory) {
        return AgentResult({commitment: c, status: AgentStatus.OK, output: out});
    }

    /// @dev A request from `from`, paid with `value` (subscription 0) or by `sub`, at gas price `gp`.
    function _req(
        address from,
        uint256 agent,
        bytes memory input,
        uint32 gasLimit,
        uint256 value,
        uint64 sub,
        uint256 gp
    ) internal returns (RequestCommitment memory c) {
        vm.txGasPrice(gp);
        uint256 id;
        uint256 fee;
        if (sub == 0) {
            vm.deal(from, value);
            vm.prank(from);
            id = router.request{value: value}(agent, input, gasLimit);
            fee = value;
        } else {
            vm.prank(from);
            id = router.requestWithSubscription(sub, agent, input, gasLimit);
            fee = router.estimateCost(agent, gasLimit, gp);
        }
        c = _commitmentOf(id, agent, router.getAgent(agent).codeHash, from, input, gasLimit, fee, sub);
    }

    // -- 1. a callback re-entering the router ----------------------------------------------------

    function test_Attack_CallbackReentersEverything() public {
        EvilConsumer evil = new EvilConsumer(router, agentId);
        vm.deal(address(evil), 10 ether);
        evil.fund{value: 1 ether}();

        // an expired request of the same consumer, to try `cancel` from inside the callback
        vm.txGasPrice(1 gwei);
        RequestCommitment memory old = _req(address(evil), agentId, "evil", 1_000_000, 0, evil.sub(), 1 gwei);
        vm.warp(block.timestamp + 16 minutes);
        evil.setExpired(old);
        vm.roll(block.number + 1);
        RequestCommitment memory c = _req(address(evil), agentId, "evil", 1_000_000, 0, evil.sub(), 1 gwei);
        vm.roll(block.number + 1);

        uint256 routerBefore = address(router).balance;
        vm.txGasPrice(1 gwei);
        SignedAgentResult[] memory b = _one(_ok(c, "pong"));
        vm.prank(TRANSMITTER);
        router.fulfill{gas: 5_000_000}(b);

        assertFalse(evil.ok("withdrawFromSubscription"), "withdrawFromSubscription re-entered");
        assertFalse(evil.ok("cancelSubscription"), "cancelSubscription re-entered");
        assertFalse(evil.ok("withdraw"), "withdraw re-entered");
        assertFalse(evil.ok("cancel"), "cancel re-entered");
        assertTrue(evil.ok("fundSubscription"), "fund is allowed");
        assertTrue(evil.ok("requestWithSubscription"), "a nested request is allowed");

        // accounting after a nested request was opened mid-delivery
        IAgentSubscriptions.SubscriptionInfo memory info = router.getSubscription(evil.sub());
        uint256 nestedFee = router.estimateCost(agentId, 50_000, 1 gwei);
        assertEq(info.held, old.fee + nestedFee, "holds: the expired one and the nested one");
        assertEq(address(router).balance, routerBefore + 1, "only the 1 wei fund entered the router");
        assertEq(
            address(router).balance,
            uint256(info.balance) + router.balanceOf(AGENT_OWNER) + router.balanceOf(TRANSMITTER)
                + router.balanceOf(address(evil)),
            "conservation"
        );
    }

    // -- 2. a batch mixing agents, consumers, payers ---------------------------------------------

    address internal constant OWNER_B = address(0xB0B);
    uint256 internal agentB;
    EchoConsumer internal c2;
    uint64 internal mixSub;
    RequestCommitment[] internal mixed;

    function _mixedSetup() internal {
        vm.prank(OWNER_B);
        agentB = router.registerAgent("export default async function main(i){return i}", 0.003 ether, false);
        c2 = new EchoConsumer(address(router));
        address subOwner = address(0x50B);
        vm.startPrank(subOwner);
        mixSub = router.createSubscription();
        router.addConsumer(mixSub, address(consumer));
        router.addConsumer(mixSub, address(c2));
        vm.stopPrank();
        router.fundSubscription{value: 1 ether}(mixSub);
        uint256 gp = 2 gwei;
        uint256 costA = router.estimateCost(agentId, CALLBACK_GAS, gp);
        uint256 costB = router.estimateCost(agentB, CALLBACK_GAS, gp);
        mixed.push(_req(address(consumer), agentId, "a", CALLBACK_GAS, costA + 1 ether, 0, gp));
        mixed.push(_req(address(consumer), agentB, "b", CALLBACK_GAS, 0, mixSub, gp));
        mixed.push(_req(address(c2), agentId, "c", CALLBACK_GAS, 0, mixSub, gp));
        mixed.push(_req(address(consumer), agentId, "d", CALLBACK_GAS, costA + 3, 0, gp));
        mixed.push(_req(address(c2), agentB, "e", CALLBACK_GAS, costB + 7, 0, gp));
        mixed.push(_req(address(consumer), agentB, "f", CALLBACK_GAS, costB, 0, gp));
        vm.roll(block.number + 1);
    }

    function test_Attack_MixedBatchTally() public {
        _mixedSetup();
        AgentResult[] memory rs = new AgentResult[](7);
        for (uint256 i; i < 6; ++i) {
            rs[i] = _res(mixed[i], "pong");
        }
        rs[6] = rs[0]; // a duplicate: paid twice?
        BatchSignature memory s = _batch(rs);

        uint256 routerBefore = address(router).balance;
        vm.txGasPrice(5 gwei);
        vm.recordLogs();
        vm.prank(TRANSMITTER);
        assertEq(router.fulfillBatch{gas: 20_000_000}(rs, s), 6, "the duplicate is not delivered twice");

        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 gasSum;
        uint256[6] memory refunded;
        uint256 k;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] != IAgentRouter.RequestFulfilled.selector) continue;
            (,, uint96 g, uint96 back) = abi.decode(logs[i].data, (AgentStatus, bool, uint96, uint96));
            gasSum += g;
            refunded[k++] = back;
        }
        assertEq(router.balanceOf(AGENT_OWNER), 3 * uint256(PRICE), "owner A: three prices");
        assertEq(router.balanceOf(OWNER_B), 3 * 0.003 ether, "owner B: three prices");
        assertEq(router.balanceOf(TRANSMITTER), 6 * uint256(OPERATOR_FEE) + gasSum, "transmitter");
        assertEq(router.balanceOf(address(consumer)), refunded[0] + refunded[3] + refunded[5], "consumer 1 change");
        assertEq(router.balanceOf(address(c2)), refunded[4], "consumer 2 change");
        assertEq(router.getSubscription(mixSub).held, 0);
        assertEq(address(router).balance, routerBefore, "nothing left the router");
        assertEq(
            address(router).balance,
            uint256(router.getSubscription(mixSub).balance) + router.balanceOf(AGENT_OWNER) + router.balanceOf(OWNER_B)
                + router.balanceOf(TRANSMITTER) + router.balanceOf(address(consumer)) + router.balanceOf(address(c2)),
            "conservation"
        );
    }

    // -- 3. the agent changes owner in the middle of a batch --------------------------------------

    /// @dev Seller S (AGENT_OWNER) proposed its agent to a market; anyone may finalize the sale.
    ///      A batch [plain, trigger, plain2] of S's agent: the trigger's callback finalizes the sale.
    ///      Delivered one per transaction, trigger's and plain2's prices go to the market (the owner
    ///      is read after each callback). Delivered in one batch, the Tally cached S as the owner at
    ///      the first result, so S gets all three: the buyer loses prices of deliveries made while
    ///      it owned the agent. S only has to make sure its requests share a batch with the trigger.
    AgentMarket internal market;
    FinalizingConsumer internal trigger;
    RequestCommitment[3] internal sale;

    function _saleSetup() internal {
        market = new AgentMarket(router);
        vm.prank(AGENT_OWNER);
        router.transferAgentOwnership(agentId, address(market));
        trigger = new FinalizingConsumer(market, agentId);
        uint256 cost = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei);
        sale[0] = _req(address(consumer), agentId, "v0", CALLBACK_GAS, cost, 0, 1 gwei);
        sale[1] = _req(address(trigger), agentId, "t", CALLBACK_GAS, cost, 0, 1 gwei);
        sale[2] = _req(address(consumer), agentId, "v2", CALLBACK_GAS, cost, 0, 1 gwei);
        vm.roll(block.number + 1);
    }

    /// @dev Was: the batch's tally read the agent's owner once, so the old owner was paid for
    ///      deliveries after a callback moved the agent. The owner is read for every result now.
    function test_AnOwnerChangeMidBatchPaysTheNewOwnerForWhatFollows() public {
        _saleSetup();
        AgentResult[] memory rs = new AgentResult[](3);
        for (uint256 i; i < 3; ++i) {
            rs[i] = _res(sale[i], "x");
        }
        BatchSignature memory s = _batch(rs);
        vm.prank(TRANSMITTER);
        router.fulfillBatch{gas: 5_000_000}(rs, s);
        assertEq(router.getAgent(agentId).owner, address(market), "the market owns the agent after result 1");
        assertEq(router.balanceOf(AGENT_OWNER), PRICE, "the old owner: the delivery before the sale");
        assertEq(router.balanceOf(address(market)), 2 * uint256(PRICE), "the new owner: those after it");
    }

    function test_Control_OwnerChangeSeparateTxs() public {
        _saleSetup();
        for (uint256 i; i < 3; ++i) {
            _fulfill(_one(_ok(sale[i], "x")));
        }
        assertEq(router.balanceOf(AGENT_OWNER), PRICE);
        assertEq(router.balanceOf(address(market)), 2 * uint256(PRICE));
    }

    // -- 4. charging someone else's subscription ---------------------------------------------------

    function test_Attack_ChargeAnotherSubscription() public {
        address victim = address(0x71C);
        vm.prank(victim);
        uint64 sub = router.createSubscription();
        router.fundSubscription{value: 1 ether}(sub);
        vm.prank(address(0xBAD));
        vm.expectRevert(
            abi.encodeWithSelector(IAgentSubscriptions.NotSubscriptionConsumer.selector, sub, address(0xBAD))
        );
        router.requestWithSubscription(sub, agentId, "x", 100_000);
        // the attacker cannot add itself either
        vm.prank(address(0xBAD));
        vm.expectRevert();
        router.addConsumer(sub, address(0xBAD));
    }

    // -- 5. the transmitter picks the payer's change -----------------------------------------------

    /// @dev Not a theft (the charge stays <= fee, and the transmitter paid that gas price), but the
    ///      change is entirely the transmitter's choice: at a high enough fulfil gas price the whole
    ///      gas escrow, including any overpayment, goes to it. A builder/sequencer transmitter that
    ///      gets its priority fees back keeps it.
    function test_Note_TransmitterGasPriceTakesTheWholeEscrow() public {
        uint256 value = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei) + 0.5 ether; // a cautious overpayment
        RequestCommitment memory c = _req(address(consumer), agentId, "x", CALLBACK_GAS, value, 0, 1 gwei);
        vm.roll(block.number + 1);
        vm.txGasPrice(100_000 gwei);
        _fulfill(_one(_ok(c, "pong")));
        assertEq(router.balanceOf(address(consumer)), 0, "no change at all");
        assertEq(router.balanceOf(TRANSMITTER), value - PRICE, "the transmitter took the overpayment");
    }

    // -- 6. copying the bridge's pending fulfil transaction ------------------------------------------

    /// @dev On a router without staking (this one), `fulfill` pays whoever sends it: a mempool
    ///      watcher copies the bridge's pending calldata, lands first, and collects the operator's
    ///      fee and the gas reimbursement for work (the run, the signature) it never did. With
    ///      OperatorStaking only staked operators transmit, and within a request's window only its
    ///      assignee (solidity/test/OperatorStaking.t.sol): deployments that pay operators stake.
    function test_Note_WithoutStakingWhoeverLandsAFulfilFirstIsPaid() public {
        uint256 cost = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei);
        RequestCommitment memory c = _req(address(consumer), agentId, "x", CALLBACK_GAS, cost, 0, 1 gwei);
        vm.roll(block.number + 1);
        bytes memory pending = abi.encodeCall(router.fulfill, (_one(_ok(c, "pong")))); // seen in the mempool

        address bot = address(0xB07);
        vm.txGasPrice(1 gwei);
        vm.prank(bot);
        (bool ok,) = address(router).call{gas: 2_000_000}(pending);
        assertTrue(ok);
        vm.prank(TRANSMITTER);
        (ok,) = address(router).call{gas: 2_000_000}(pending);
        assertTrue(ok, "the bridge's own transaction does not even revert: it pays for nothing");
        assertGt(router.balanceOf(bot), OPERATOR_FEE, "the bot has the operator's fee and the gas");
        assertEq(router.balanceOf(TRANSMITTER), 0, "the operator's bridge earned nothing");
    }
}
