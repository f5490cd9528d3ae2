// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {AgentRouter} from "../../src/AgentRouter.sol";
import {IAgentRouter} from "../../src/interfaces/IAgentRouter.sol";
import {IAgentConsumer} from "../../src/interfaces/IAgentConsumer.sol";
import {IAgentStaking} from "../../src/interfaces/IAgentStaking.sol";
import {IAgentSubscriptions} from "../../src/interfaces/IAgentSubscriptions.sol";
import {EchoConsumer} from "../../src/examples/EchoConsumer.sol";
import {
    AgentResult,
    AgentStatus,
    Currency,
    NotProcessedReason,
    RequestCommitment,
    SignedAgentResult
} from "../../src/libraries/AgentTypes.sol";
import {TokenRouterSetup} from "../utils/TokenRouterSetup.sol";

// =====================================================================================================
// Mocks
// =====================================================================================================

/// @notice A consumer that pays its requests in the fee token, the way a contract usually does it:
///         it approves the router once, for good, and requests whenever it is asked to. Its
///         callback keeps the result and may chain a follow-up request (in tokens or in wei), or
///         try the token paths that a callback may want (withdrawToken, funding a subscription).
contract TokenPayingConsumer is IAgentConsumer {
    AgentRouter public immutable ROUTER;
    IERC20 public immutable TOKEN;
    uint256 public immutable AGENT;

    uint8 public mode; // 0: keep the result; 1: chain a token request; 2: chain a wei request; 3: top up subscriptions
    uint256 public resultCount;
    bytes public lastOutput;
    uint256 public chainedId;
    uint64 public tokenSubscription;
    uint64 public weiSubscription;
    bool public toppedUpInTokens;
    bool public toppedUpInWei;

    constructor(AgentRouter router, uint256 agentId) payable {
        ROUTER = router;
        TOKEN = router.FEE_TOKEN();
        AGENT = agentId;
        TOKEN.approve(address(router), type(uint256).max);
    }

    receive() external payable {}

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    function setSubscriptions(uint64 inTokens, uint64 inWei) external {
        (tokenSubscription, weiSubscription) = (inTokens, inWei);
    }

    function ask(bytes calldata input, uint32 callbackGasLimit) external returns (uint256) {
        return ROUTER.requestWithToken(AGENT, input, callbackGasLimit);
    }

    function onAgentResult(uint256, AgentStatus, bytes calldata output) external {
        require(msg.sender == address(ROUTER), "only the router");
        ++resultCount;
        lastOutput = output;
        if (mode == 1) {
            // A recurring job: the next run, paid like this one, in tokens.
            chainedId = ROUTER.requestWithToken(AGENT, "next", 100_000);
        } else if (mode == 2) {
            uint256 cost = ROUTER.estimateCost(AGENT, 100_000, tx.gasprice);
            chainedId = ROUTER.request{value: cost}(AGENT, "next", 100_000);
        } else if (mode == 3) {
            try ROUTER.fundSubscriptionWithToken(tokenSubscription, 1 ether) {
                toppedUpInTokens = true;
            } catch {}
            try ROUTER.fundSubscription{value: 1 ether}(weiSubscription) {
                toppedUpInWei = true;
            } catch {}
        }
    }
}

/// @notice An ERC-20 that takes 1% of every transfer (as PAXG, STA, or USDT with its fee switched on).
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee On Transfer", "FOT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}

/// @notice A consumer whose callback burns all the gas it is given.
contract GasBurner is IAgentConsumer {
    function onAgentResult(uint256, AgentStatus, bytes calldata) external view {
        while (gasleft() > 2_000) {}
    }
}

// =====================================================================================================
// Attacks
// =====================================================================================================

contract TokenAttacks is TokenRouterSetup {
    // -- helpers ---------------------------------------------------------------------------------

    function _config(uint96 operatorFee) internal pure returns (IAgentRouter.Config memory) {
        return IAgentRouter.Config(2_500_000, 4096, 32 * 1024, 15 minutes, operatorFee, OVERHEAD);
    }

    // =================================================================================================
    // FINDING 1 (High, fixed): the agent's owner (anyone can register an agent) front-ran a request
    // with setPrice and took the consumer's whole allowance, or a subscription's whole balance.
    // A price rise now waits PRICE_RISE_DELAY: the request pays the price it could see.
    // =================================================================================================

    /// @dev The greedy price that would make a request cost `budget` tokens at 1 gwei.
    function _greedyPrice(uint256 budget) internal pure returns (uint96) {
        uint256 budgetInWei = budget * 1 ether / TOKENS_PER_ETH;
        return uint96(budgetInWei - OPERATOR_FEE - (uint256(CALLBACK_GAS) + OVERHEAD) * 1 gwei);
    }

    function test_Fixed_AFrontRunPriceRiseIsNotPaidByTheTokenRequestItFrontRuns() public {
        TokenPayingConsumer victim = new TokenPayingConsumer(router, agentId);
        _mint(address(victim), 1_000 ether); // its budget for many requests
        vm.txGasPrice(1 gwei);
        uint256 expected = router.estimateTokenCost(agentId, CALLBACK_GAS, 1 gwei);
        assertLt(expected, 4 ether, "one request is expected to cost about 3.2 tokens");

        // The agent's owner sees victim.ask(...) in the mempool and lands setPrice first.
        vm.prank(AGENT_OWNER);
        router.setPrice(agentId, _greedyPrice(1_000 ether));
        victim.ask("x", CALLBACK_GAS);
        assertEq(1_000 ether - feeToken.balanceOf(address(victim)), expected, "it paid what it could see");
        assertEq(router.getAgent(agentId).price, PRICE, "the rise waits");

        vm.warp(block.timestamp + router.PRICE_RISE_DELAY());
        assertGt(router.estimateTokenCost(agentId, CALLBACK_GAS, 1 gwei), 999 ether, "then, for all to see");
    }

    function test_Fixed_AWeiRequestFrontRunByAPriceRisePaysThePriceItSaw() public {
        vm.txGasPrice(1 gwei);
        uint256 expected = router.estimateCost(agentId, CALLBACK_GAS, 1 gwei);
        vm.prank(AGENT_OWNER);
        router.setPrice(agentId, 0.399 ether);
        vm.deal(address(consumer), expected);
        vm.prank(address(consumer));
        uint256 requestId = router.request{value: expected}(agentId, "x", CALLBACK_GAS);
        assertTrue(router.isOpen(requestId), "neither drained nor refused");
    }

    function test_Fixed_ASubscriptionIsNotDrainedByAFrontRunPriceRise() public {
        uint64 subscriptionId = _tokenSubscription(subscriber, address(consumer), 500 ether);
        vm.txGasPrice(1 gwei);
        uint256 expected = router.estimateTokenCost(agentId, CALLBACK_GAS, 1 gwei);
        vm.prank(AGENT_OWNER);
        router.setPrice(agentId, _greedyPrice(500 ether));
        vm.prank(address(consumer));
        router.requestWithSubscription(subscriptionId, agentId, "x", CALLBACK_GAS);
        assertEq(router.getSubscription(subscriptionId).held, expected, "it holds the price it could see");
    }

    // =================================================================================================
    // FINDING 2 (Low, fixed): each part was converted with a floor, so with a fee token of few
    // decimals (2, as GUSD: one unit is 4e12 wei) a cheap agent's price, the operator's fee and
    // the gas of a cheap-gas chain came to 0, and a priced agent ran for free. Each part is now
    // rounded up on its own.
    // =================================================================================================

    function test_Fixed_APricedAgentIsNeverFreeInALowDecimalToken() public {
        // 1 ETH = 2,500 tokens of 2 decimals.
        vm.prank(OWNER);
        router.setTokenRate(250_000);
        vm.prank(OWNER);
        router.setConfig(_config(0)); // no operator's fee, as the router deploys
        address cheapOwner = address(0xC4EA9);
        vm.prank(cheapOwner);
        uint256 cheapAgent = router.registerAgent(AGENT_CODE, 3e12, false); // 0.000003 ETH, ~$0.0075
        vm.txGasPrice(0.001 gwei); // an L2's gas price

        // One unit for the price, one for the gas: each part at least one unit.
        assertEq(router.estimateTokenCost(cheapAgent, CALLBACK_GAS, tx.gasprice), 2);

        // No tokens, no approval: no request.
        address freeloader = address(0xF4EE);
        vm.prank(freeloader);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(router), 0, 2));
        router.requestWithToken(cheapAgent, "x", CALLBACK_GAS);

        // An empty token subscription pays for nothing.
        vm.prank(subscriber);
        uint64 emptySubscription = router.createTokenSubscription();
        vm.prank(subscriber);
        router.addConsumer(emptySubscription, address(consumer));
        vm.prank(address(consumer));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentSubscriptions.InsufficientSubscriptionBalance.selector, emptySubscription, 0, 2
            )
        );
        router.requestWithSubscription(emptySubscription, cheapAgent, "y", CALLBACK_GAS);

        // Paid, the run pays its owner one unit.
        _mint(freeloader, 2);
        vm.startPrank(freeloader);
        feeToken.approve(address(router), 2);
        uint256 requestId = router.requestWithToken(cheapAgent, "x", CALLBACK_GAS);
        vm.stopPrank();
        RequestCommitment memory c = _commitmentOf(
            requestId, cheapAgent, keccak256(AGENT_CODE), freeloader, "x", CALLBACK_GAS, 2, 0, Currency.TOKEN
        );
        assertEq(c.price, 1);
        vm.roll(block.number + 1);
        _fulfilAt(_one(_ok(c, "pong")), 0.001 gwei);
        assertEq(router.tokenBalanceOf(cheapOwner), 1, "the agent's owner earned its price");
    }

    // =================================================================================================
    // FINDING 3 (Low, fixed): requestWithToken, fundSubscriptionWithToken and
    // fundSubscriptionWithPermit were nonReentrant, and fulfil holds the same lock while it calls
    // the consumer: a consumer could not chain its next run, paid in tokens, from its callback.
    // They are no longer guarded: each writes its state before it calls the token.
    // =================================================================================================

    /// @dev `job` asks (paying 1 gwei gas in tokens), and the answer is delivered a block later;
    ///      whether its callback ran.
    function _askAndFulfil(TokenPayingConsumer job) internal returns (bool) {
        vm.txGasPrice(1 gwei);
        uint256 requestId = job.ask("x", 500_000);
        uint256 paid = 100 ether - feeToken.balanceOf(address(job));
        RequestCommitment memory c = _commitmentOf(
            requestId, agentId, keccak256(AGENT_CODE), address(job), "x", 500_000, paid, 0, Currency.TOKEN
        );
        vm.roll(block.number + 1);
        (,, bool[] memory ok) = _fulfilAt(_one(_ok(c, "pong")), 1 gwei);
        return ok[0];
    }

    function test_Fixed_ATokenConsumerChainsATokenRequestFromItsCallback() public {
        TokenPayingConsumer job = new TokenPayingConsumer(router, agentId);
        _mint(address(job), 100 ether);
        job.setMode(1);
        assertTrue(_askAndFulfil(job), "the callback ran");
        assertEq(job.resultCount(), 1);
        assertTrue(router.isOpen(job.chainedId()), "its follow-up request is open");
    }

    /// @dev Control: the same consumer chaining its next run in wei works.
    function test_Control_ChainingAWeiRequestFromTheCallbackWorks() public {
        TokenPayingConsumer job = new TokenPayingConsumer(router, agentId);
        vm.deal(address(job), 1 ether);
        _mint(address(job), 100 ether);
        job.setMode(2);
        assertTrue(_askAndFulfil(job));
        assertEq(job.resultCount(), 1);
        assertTrue(router.isOpen(job.chainedId()));
    }

    function test_Fixed_ACallbackTopsUpATokenSubscriptionAsAWeiOne() public {
        TokenPayingConsumer job = new TokenPayingConsumer(router, agentId);
        vm.deal(address(job), 1 ether);
        _mint(address(job), 100 ether);
        vm.startPrank(subscriber);
        uint64 inTokens = router.createTokenSubscription();
        uint64 inWei = router.createSubscription();
        vm.stopPrank();
        job.setSubscriptions(inTokens, inWei);
        job.setMode(3);
        _askAndFulfil(job);
        assertEq(job.resultCount(), 1);
        assertTrue(job.toppedUpInWei());
        assertTrue(job.toppedUpInTokens());
        assertEq(router.getSubscription(inTokens).balance, 1 ether);
        assertEq(router.getSubscription(inWei).balance, 1 ether);
    }

    // =================================================================================================
    // FINDING 4 (Low, deployment; documented, not supported): the router credits what it asked
    // transferFrom for, not what it received. With a fee-on-transfer token the router owes more
    // tokens than it holds and the last to withdraw cannot: FEE_TOKEN must be a plain ERC-20.
    // =================================================================================================

    function test_Unsupported_AFeeOnTransferTokenLeavesTheRouterShort() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        AgentRouter fotRouter = new AgentRouter(OWNER, tee, IAgentStaking(address(0)), IERC20(address(fot)));
        vm.prank(OWNER);
        fotRouter.setTokenRate(TOKENS_PER_ETH);

        address alice = address(0xA1);
        address bob = address(0xB0);
        uint64[2] memory subs;
        address[2] memory who = [alice, bob];
        for (uint256 i; i < 2; ++i) {
            fot.mint(who[i], 100 ether);
            vm.startPrank(who[i]);
            subs[i] = fotRouter.createTokenSubscription();
            fot.approve(address(fotRouter), 100 ether);
            fotRouter.fundSubscriptionWithToken(subs[i], 100 ether);
            vm.stopPrank();
        }
        assertEq(fotRouter.getSubscription(subs[0]).balance + fotRouter.getSubscription(subs[1]).balance, 200 ether);
        assertEq(fot.balanceOf(address(fotRouter)), 198 ether, "owes 200, holds 198");

        vm.prank(alice);
        fotRouter.cancelSubscription(subs[0], payable(alice));
        vm.prank(bob);
        vm.expectRevert(); // ERC20InsufficientBalance(router, 98 ether, 100 ether)
        fotRouter.cancelSubscription(subs[1], payable(bob));
    }

    // =================================================================================================
    // NOTE (Informational): the rate is an owner-set oracle. A rise of tokensPerEth (the token lost
    // value) while requests are open, or a request that front-runs the owner's setTokenRate, leaves
    // the escrow at the old rate: the agent's owner gets its price in tokens worth a quarter of it,
    // and the transmitter's gas is reimbursed up to an escrow now worth a quarter of it.
    // =================================================================================================

    function test_Note_ARateRiseWhileOpenLeavesTheTransmitterUnderpaid() public {
        GasBurner burner = new GasBurner();
        vm.txGasPrice(1 gwei);
        (uint256 requestId, RequestCommitment memory c) = _requestWithToken(address(burner), "x");
        assertTrue(router.isOpen(requestId));
        // The owner's setTokenRate: the token lost three quarters of its value. The requester saw
        // it pending and requested first (at the old rate).
        vm.prank(OWNER);
        router.setTokenRate(4 * TOKENS_PER_ETH);

        vm.roll(block.number + 1);
        (uint96[] memory gasReimbursed,,) = _fulfilAt(_one(_ok(c, "pong")), 1 gwei);
        uint256 forGas = c.fee - c.price - c.operatorFee;
        assertEq(gasReimbursed[0], forGas, "capped by the escrow");
        // The callback alone burnt ~200k gas: at the new rate that is worth far more than was paid.
        assertLt(gasReimbursed[0], _inTokens((uint256(CALLBACK_GAS) * 9 / 10 + OVERHEAD) * 1 gwei) / 3);
        assertEq(router.tokenBalanceOf(AGENT_OWNER), _inTokens(PRICE) / 4, "the price, worth a quarter");
    }

    // =================================================================================================
    // DEFENDED: attempts that did not work, kept as regression tests.
    // =================================================================================================

    /// @dev A batch alternating currencies (token, wei, token, wei, token-subscription), one
    ///      consumer and one agent owner for all: each part lands in its own currency, once.
    function test_Defended_AlternatingCurrenciesInOneBatch() public {
        uint64 subscriptionId = _tokenSubscription(subscriber, address(consumer), 100 ether);
        vm.txGasPrice(2 gwei);
        RequestCommitment[] memory cs = new RequestCommitment[](5);
        uint256 weiCost = router.estimateCost(agentId, CALLBACK_GAS, 2 gwei) + 0.01 ether; // with change
        for (uint256 i; i < 4; ++i) {
            bytes memory input = abi.encode(i);
            if (i % 2 == 0) {
                (, cs[i]) = _requestWithToken(address(consumer), input);
            } else {
                vm.deal(address(consumer), weiCost);
                vm.prank(address(consumer));
                uint256 id = router.request{value: weiCost}(agentId, input, CALLBACK_GAS);
                cs[i] = _commitmentOf(
                    id, agentId, keccak256(AGENT_CODE), address(consumer), input, CALLBACK_GAS, weiCost, 0
                );
            }
        }
        uint256 held = router.estimateTokenCost(agentId, CALLBACK_GAS, 2 gwei);
        vm.prank(address(consumer));
        uint256 subId = router.requestWithSubscription(subscriptionId, agentId, "sub", CALLBACK_GAS);
        cs[4] = _commitmentOf(
            subId,
            agentId,
            keccak256(AGENT_CODE),
            address(consumer),
            "sub",
            CALLBACK_GAS,
            held,
            subscriptionId,
            Currency.TOKEN
        );

        SignedAgentResult[] memory batch = new SignedAgentResult[](5);
        for (uint256 i; i < 5; ++i) {
            batch[i] = _ok(cs[i], "pong");
        }
        uint256 routerWei = address(router).balance;
        uint256 routerTokens = feeToken.balanceOf(address(router));
        vm.roll(block.number + 1);
        (uint96[] memory gas, uint96[] memory back,) = _fulfilAt(batch, 3 gwei);

        uint256[2] memory earned; // [wei, tokens]
        uint256[2] memory owed;
        uint256[2] memory change;
        for (uint256 i; i < 5; ++i) {
            uint256 k = uint8(cs[i].currency);
            earned[k] += cs[i].operatorFee + gas[i];
            owed[k] += cs[i].price;
            if (cs[i].subscriptionId == 0) change[k] += back[i];
        }
        assertEq(router.balanceOf(TRANSMITTER), earned[0]);
        assertEq(router.tokenBalanceOf(TRANSMITTER), earned[1]);
        assertEq(router.balanceOf(AGENT_OWNER), owed[0]);
        assertEq(router.tokenBalanceOf(AGENT_OWNER), owed[1]);
        assertEq(router.balanceOf(address(consumer)), change[0]);
        assertEq(router.tokenBalanceOf(address(consumer)), change[1]);
        assertEq(address(router).balance, routerWei, "no wei left the router");
        assertEq(feeToken.balanceOf(address(router)), routerTokens, "no token left the router");
        _assertConserved(subscriptionId);
    }

    /// @dev Flipping a request's currency (to be paid/refunded in the other) names another request.
    function test_Defended_AFlippedCurrencyNamesNoRequest() public {
        (uint256 requestId, RequestCommitment memory c) = _requestWithToken(address(consumer), "x");
        RequestCommitment memory flipped = abi.decode(abi.encode(c), (RequestCommitment)); // a copy
        flipped.currency = Currency.ETH;
        uint256 flippedId = router.requestIdOf(flipped);
        assertTrue(flippedId != requestId);
        vm.roll(block.number + 1);
        vm.expectEmit(address(router));
        emit IAgentRouter.RequestNotProcessed(flippedId, NotProcessedReason.UNKNOWN_REQUEST);
        assertEq(_fulfill(_one(_ok(flipped, "pong"))), 0);
        vm.warp(c.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IAgentRouter.UnknownRequest.selector, flippedId));
        router.cancel(flipped);
        router.cancel(c);
        assertEq(router.tokenBalanceOf(address(consumer)), c.fee);
        assertEq(router.balanceOf(address(consumer)), 0);
    }

    /// @dev A used permit cannot be replayed; a front-run permit still funds the signer's own
    ///      subscription only; nobody else can spend the allowance it gave.
    function test_Defended_PermitReplayAndTheftMoveNothing() public {
        _mint(subscriber, 10 ether);
        vm.prank(subscriber);
        uint64 subscriptionId = router.createTokenSubscription();
        uint256 deadline = block.timestamp + 600;
        (uint8 v, bytes32 r, bytes32 s) = _permit(SUBSCRIBER_KEY, 5 ether, deadline);
        // The mempool watcher uses the permit first, then tries to use the allowance itself.
        feeToken.permit(subscriber, address(router), 5 ether, deadline, v, r, s);
        vm.prank(address(0xBAD));
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(router), 0, 5 ether)
        );
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
        vm.prank(subscriber);
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
        assertEq(router.getSubscription(subscriptionId).balance, 5 ether);
        // Replayed: the permit's nonce is spent and the allowance is 0.
        vm.prank(subscriber);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(router), 0, 5 ether)
        );
        router.fundSubscriptionWithPermit(subscriptionId, 5 ether, deadline, v, r, s);
    }

    /// @dev Whatever the rate does between the request and the delivery, and whatever the gas
    ///      prices: each request's parts add up to its fee and the router holds exactly what it owes,
    ///      in each currency.
    function testFuzz_Defended_ARateChangeWhileOpenConservesBothCurrencies(
        uint256 rate1,
        uint256 rate2,
        uint64 requestGasPrice,
        uint64 fulfilGasPrice
    ) public {
        vm.prank(OWNER);
        router.setTokenRate(bound(rate1, 1, 1e27));
        uint64 subscriptionId = _tokenSubscription(subscriber, address(consumer), 1e28);
        vm.txGasPrice(bound(requestGasPrice, 0, 300 gwei));
        RequestCommitment[] memory cs = new RequestCommitment[](3);
        (, cs[0]) = _requestWithToken(address(consumer), "t");
        uint256 weiCost = router.estimateCost(agentId, CALLBACK_GAS, tx.gasprice);
        vm.deal(address(consumer), weiCost);
        vm.prank(address(consumer));
        uint256 id = router.request{value: weiCost}(agentId, "w", CALLBACK_GAS);
        cs[1] = _commitmentOf(id, agentId, keccak256(AGENT_CODE), address(consumer), "w", CALLBACK_GAS, weiCost, 0);
        uint256 held = router.estimateTokenCost(agentId, CALLBACK_GAS, tx.gasprice);
        vm.prank(address(consumer));
        id = router.requestWithSubscription(subscriptionId, agentId, "s", CALLBACK_GAS);
        cs[2] = _commitmentOf(
            id,
            agentId,
            keccak256(AGENT_CODE),
            address(consumer),
            "s",
            CALLBACK_GAS,
            held,
            subscriptionId,
            Currency.TOKEN
        );

        vm.prank(OWNER);
        router.setTokenRate(bound(rate2, 1, 1e27));
        SignedAgentResult[] memory batch = new SignedAgentResult[](3);
        for (uint256 i; i < 3; ++i) {
            batch[i] = _ok(cs[i], "pong");
        }
        vm.roll(block.number + 1);
        (uint96[] memory gas, uint96[] memory back,) = _fulfilAt(batch, bound(fulfilGasPrice, 0, 3000 gwei));
        for (uint256 i; i < 3; ++i) {
            assertEq(uint256(cs[i].price) + cs[i].operatorFee + gas[i] + back[i], cs[i].fee);
        }
        _assertConserved(subscriptionId);
    }

    /// @dev The router holds exactly what its accounts and the subscription are owed, in each currency.
    function _assertConserved(uint64 subscriptionId) internal view {
        assertEq(
            address(router).balance,
            router.balanceOf(TRANSMITTER) + router.balanceOf(AGENT_OWNER) + router.balanceOf(address(consumer)),
            "wei conserved"
        );
        uint256 owed = router.tokenBalanceOf(TRANSMITTER) + router.tokenBalanceOf(AGENT_OWNER);
        owed += router.tokenBalanceOf(address(consumer)) + router.getSubscription(subscriptionId).balance;
        assertEq(feeToken.balanceOf(address(router)), owed, "tokens conserved");
    }
}
