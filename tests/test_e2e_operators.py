"""Two operators, each a bridge with its own transmitter key and stake, over one set of workers.
Each request is assigned to one of them; while both run, each delivers its own. When one stops,
the other delivers its assignments once their window has passed, and takes a slice of its
stake. Ground truth is the chain's events: every request fulfilled exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account

from enclave import cli
from enclave.deploy import StakingRules
from enclave.stack import FREE_DEV_KEYS, OPERATOR_KEYS, Stack
from enclave.usage import register, request_ids, send_asks, wait_for
from tests.state import fresh_state_dir

pytestmark = pytest.mark.chain

ECHO = "export default async (input) => input.bytes;"
RULES = StakingRules(assignment_window_s=4)
FIRST, SECOND = (Account.from_key(key).address for key in OPERATOR_KEYS)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(state_dir=fresh_state_dir("e2e-operators"), workers=1, operators=2, staking=RULES, web_port=None) as s:
        yield s


def _deliveries(stack: Stack, ids: list[int]) -> tuple[Counter[int], dict[int, str], dict[int, str]]:
    """How often each request was fulfilled on-chain, who delivered it, and whom it was assigned to."""
    assert stack.deployment is not None
    w3 = stack.web3()
    router = stack.deployment.contract(w3, "AgentRouter")
    wanted = set(ids)
    fulfilled = [e for e in router.events.RequestFulfilled().get_logs(from_block=0) if e["args"]["requestId"] in wanted]
    counts = Counter(int(e["args"]["requestId"]) for e in fulfilled)
    by = {int(e["args"]["requestId"]): str(w3.eth.get_transaction(e["transactionHash"])["from"]) for e in fulfilled}
    assigned = {
        int(e["args"]["requestId"]): e["args"]["assignee"]
        for e in router.events.AgentRequested().get_logs(from_block=0)
        if e["args"]["requestId"] in wanted
    }
    return counts, by, assigned


def test_both_running_each_delivers_its_own(stack: Stack) -> None:
    agent = register(stack, ECHO)
    ids = request_ids(stack, send_asks(stack, agent, [b"both %d" % i for i in range(12)]))
    wait_for(stack, ids)
    counts, by, assigned = _deliveries(stack, ids)
    assert set(counts.values()) == {1}, "every request fulfilled once"
    assert set(assigned.values()) == {FIRST, SECOND}, "the requests are shared between the two"
    assert all(by[i] == assigned[i] for i in ids), "each delivered by its assignee"


def test_a_stopped_operators_requests_are_delivered_by_the_other_which_slashes_it(stack: Stack) -> None:
    assert stack.deployment is not None
    staking = stack.deployment.contract(stack.web3(), "OperatorStaking")
    staked_before = staking.functions.getOperator(SECOND).call()[0]
    stack.services["bridge-2"].stop()
    try:
        agent = register(stack, ECHO)
        started = time.monotonic()
        ids: list[int] = []
        # Each request goes to either operator by its hash: a round all of whose requests went
        # to the running one (1 in 256) would test nothing, so there are more until one did not.
        for round_ in range(5):
            ids += request_ids(stack, send_asks(stack, agent, [b"one down %d.%d" % (round_, i) for i in range(8)]))
            if SECOND in _deliveries(stack, ids)[2].values():
                break
        wait_for(stack, ids, timeout=90)
        counts, by, assigned = _deliveries(stack, ids)
        missed = [i for i in ids if assigned[i] == SECOND]
        assert missed, "some requests were the stopped operator's"
        assert set(counts.values()) == {1}, "nothing lost, nothing delivered twice"
        assert {by[i] for i in ids} == {FIRST}, "the running operator delivered them all"
        assert time.monotonic() - started >= RULES.assignment_window_s, "the missed ones after their window"

        slashed = [
            e["args"]
            for e in staking.events.OperatorSlashed().get_logs(from_block=0)
            if e["args"]["requestId"] in set(missed)
        ]
        assert len(slashed) == len(missed), "a slash for every missed assignment"
        assert all((s["assignee"], s["deliverer"]) == (SECOND, FIRST) for s in slashed)
        taken = sum(s["amount"] for s in slashed)
        assert taken == min(staked_before, len(missed) * RULES.slash_amount)
        assert staking.functions.getOperator(SECOND).call()[0] == staked_before - taken
        assert staking.functions.slashRewardsOf(FIRST).call() >= taken
    finally:
        stack.start_bridge(2)


def test_the_cli_shows_the_operators_and_their_stakes(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stake", "status", "--state-dir", str(stack.state_dir)]) == 0
    out = capsys.readouterr().out
    assert f"min stake {RULES.min_stake}" in out
    assert f"{FIRST}  active  staked" in out
    code = cli.main(["stake", "withdraw", "--state-dir", str(stack.state_dir), "--private-key", OPERATOR_KEYS[1]])
    assert code != 0, "the stopped operator's stake is still staked, and it won nothing"
    assert "nothing to withdraw" in capsys.readouterr().err


def test_an_inactive_operators_bridge_sends_nothing_and_says_why(stack: Stack) -> None:
    """The stopped operator came back slashed below the minimum: it may not transmit, so its
    bridge holds its fulfilments instead of sending transactions that would revert."""
    assert stack.deployment is not None
    staking = stack.deployment.contract(stack.web3(), "OperatorStaking")
    assert not staking.functions.isActive(SECOND).call(), "left below the minimum by the test before"
    nonce = stack.web3().eth.get_transaction_count(SECOND)
    agent = register(stack, ECHO)
    ids = request_ids(stack, send_asks(stack, agent, [b"after %d" % i for i in range(3)]))
    wait_for(stack, ids)
    status = httpx.get(f"{stack.url('bridge-2')}/v1/status", timeout=10).json()
    assert "is not an active operator" in status["submitHeld"]
    assert "stake" in status["errors"]
    assert stack.web3().eth.get_transaction_count(SECOND) == nonce, "it sent no transaction"


def test_a_fleet_needs_both_its_lead_and_its_member(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """`enclave stake fleet`: the lead admits, the member joins; either alone makes no fleet."""
    assert stack.deployment is not None
    staking = stack.deployment.contract(stack.web3(), "OperatorStaking")
    lead, member = (Account.from_key(key) for key in FREE_DEV_KEYS[:2])
    state = ["--state-dir", str(stack.state_dir)]
    assert cli.main(["stake", "fleet", "admit", member.address, *state, "--private-key", lead.key.hex()]) == 0
    assert staking.functions.fleetOf(member.address).call() == member.address, "admitted, not yet joined"
    assert cli.main(["stake", "fleet", "join", lead.address, *state, "--private-key", member.key.hex()]) == 0
    shown = capsys.readouterr().out
    assert f"{member.address}  inactive  staked 0, slash rewards 0, in {lead.address}'s fleet" in shown
    assert staking.functions.fleetOf(member.address).call() == lead.address
    assert cli.main(["stake", "fleet", "join", *state, "--private-key", member.key.hex()]) == 0
    assert staking.functions.fleetOf(member.address).call() == member.address, "it left"
